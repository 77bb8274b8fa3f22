package authn

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
)

// Tiled's messages for rejected credentials.
const (
	MsgInvalidAPIKey    = "Invalid API key"
	MsgBadCredentials   = "Could not validate credentials"
	MsgExpiredAccess    = "Access token has expired. Refresh token."
	msgSessionEnded     = "Session has expired. Please re-authenticate."
	MsgNoAPIKeyProvided = "No API key was provided with this request."
)

// Errors a verifier returns; the resolver turns them into Tiled's 401s.
var (
	ErrInvalidAPIKey = errors.New("invalid API key")
	ErrInvalidToken  = errors.New("invalid access token")
	ErrExpiredToken  = errors.New("expired access token")
	// ErrSessionEnded: the token is well formed but its session was revoked.
	ErrSessionEnded = errors.New("session revoked or expired")
)

// TokenVerifier turns a bearer access token into a caller.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, token string) (*Caller, error)
}

// APIKeyVerifier turns a principal's API key into a caller.
type APIKeyVerifier interface {
	VerifyAPIKey(ctx context.Context, secret string) (*Caller, error)
}

// Resolver decides who the caller of a request is.
//
// A server is in single-user mode when SingleUserKey is set (Tiled: no
// authentication providers); then Tokens and APIKeys are nil and the one key
// grants every scope. Otherwise it is multi-user: bearer tokens and API keys
// are checked by the verifiers.
type Resolver struct {
	SingleUserKey string
	// AllowAnonymous gives callers without credentials read:metadata and
	// read:data (Tiled's PUBLIC_SCOPES).
	AllowAnonymous bool
	Tokens         TokenVerifier
	APIKeys        APIKeyVerifier
	// External verifies bearer JWTs of external issuers (resource-server
	// mode). Tokens signed with HS256 are this server's own and go to
	// Tokens; any other algorithm goes here. Its errors carry their HTTP
	// answer (RFC 6750 WWW-Authenticate, or 503 while its keys are not
	// loaded) and are returned as they are.
	External TokenVerifier
}

// SingleUserScopes are what the single-user key grants (Tiled's SINGLE_USER_SCOPES: all).
func SingleUserScopes() identity.ScopeSet { return identity.NewScopeSet(identity.AllScopes()...) }

// PublicScopes are what anonymous callers get on a public server.
func PublicScopes() identity.ScopeSet {
	return identity.NewScopeSet(identity.ScopeReadMetadata, identity.ScopeReadData)
}

// Resolve authenticates creds. No credentials give an anonymous caller (with
// public scopes if allowed); wrong credentials are an error, never a silent
// downgrade to anonymous, so a typo in a key is reported as such.
func (r *Resolver) Resolve(ctx context.Context, creds Credentials) (*Caller, error) {
	switch {
	case creds.APIKey != "":
		return r.resolveAPIKey(ctx, creds.APIKey)
	case creds.Bearer != "":
		if r.External != nil && (r.Tokens == nil || !ownToken(creds.Bearer)) {
			return r.External.VerifyAccessToken(ctx, creds.Bearer)
		}
		if r.Tokens == nil {
			return nil, httperr.Unauthorized(MsgBadCredentials)
		}
		c, err := r.Tokens.VerifyAccessToken(ctx, creds.Bearer)
		var he *httperr.Error
		switch {
		case errors.Is(err, ErrExpiredToken):
			he = httperr.Unauthorized(MsgExpiredAccess).Wrap(err)
		case errors.Is(err, ErrInvalidToken):
			he = httperr.Unauthorized(MsgBadCredentials).Wrap(err)
		case errors.Is(err, ErrSessionEnded):
			he = httperr.Unauthorized(msgSessionEnded).Wrap(err)
		case err != nil:
			return nil, fmt.Errorf("verify access token: %w", err)
		default:
			return c, nil
		}
		if r.External != nil {
			// A resource server names the error (RFC 6750 section 3.1) on
			// every refusal, whichever verifier refused; Tiled's messages stay.
			he.Header.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="tiled", error="invalid_token", error_description="%s"`, he.Detail))
		}
		return nil, he
	case r.AllowAnonymous:
		return &Caller{Kind: Anonymous, Scopes: PublicScopes()}, nil
	default:
		return &Caller{Kind: Anonymous, Scopes: identity.ScopeSet{}}, nil
	}
}

// ownHeader is the JOSE header of this server's access tokens,
// {"alg":"HS256","typ":"JWT"}, as golang-jwt encodes it.
const ownHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// ownToken reports whether a bearer token's header names HS256, the
// algorithm of this server's own access tokens (as Tiled's decode_token
// tries its own keys first, then the proxied authenticator). External
// issuers' tokens are asymmetric, and the external verifier refuses HS*
// anyway, so reading the unverified header only routes, never trusts.
//
// The header this server signs its own tokens with is recognised as it is,
// without decoding: it is on every authenticated request's path.
func ownToken(token string) bool {
	h, _, ok := strings.Cut(token, ".")
	if !ok || len(h) > 1024 {
		return false
	}
	if h == ownHeader {
		return true
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return false
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(b, &hdr) == nil && hdr.Alg == "HS256"
}

func (r *Resolver) resolveAPIKey(ctx context.Context, key string) (*Caller, error) {
	if r.SingleUserKey != "" {
		if subtle.ConstantTimeCompare([]byte(key), []byte(r.SingleUserKey)) != 1 {
			return nil, httperr.New(401, MsgInvalidAPIKey)
		}
		return &Caller{Kind: SingleUser, Scopes: SingleUserScopes(), Admin: true}, nil
	}
	if r.APIKeys == nil {
		return nil, httperr.New(401, MsgInvalidAPIKey)
	}
	c, err := r.APIKeys.VerifyAPIKey(ctx, key)
	switch {
	case errors.Is(err, ErrInvalidAPIKey):
		return nil, httperr.Unauthorized(MsgInvalidAPIKey).Wrap(err)
	case err != nil:
		return nil, fmt.Errorf("verify API key: %w", err)
	}
	return c, nil
}
