// Package authn resolves the credentials a request carries (bearer access
// token, API key in header, query or cookie) into a Caller: who is asking and
// with which scopes. It does not decide what a caller may see; that is
// internal/access.
package authn

import (
	"context"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
)

// Kind says how a caller was authenticated.
type Kind int

const (
	// Anonymous: no credentials (allowed only where anonymous access is on).
	Anonymous Kind = iota
	// SingleUser: the single-user API key of a server with no providers.
	SingleUser
	// Session: a bearer access token from a login session.
	Session
	// APIKey: a principal's API key.
	APIKey
	// Bearer: a JWT minted by an external OIDC issuer (resource-server
	// mode, Tiled's ProxiedOIDCAuthenticator), mapped to a principal.
	Bearer
)

func (k Kind) String() string {
	switch k {
	case SingleUser:
		return "singleuser"
	case Session:
		return "session"
	case APIKey:
		return "apikey"
	case Bearer:
		return "bearer"
	default:
		return "anonymous"
	}
}

// Caller is the authenticated party of one request. It is read-only once
// resolved: verifiers may share its maps and slices between requests
// (sessions' remembered tokens do), so code that narrows scopes makes a
// new set rather than writing into Scopes.
type Caller struct {
	Kind Kind
	// PrincipalID is set for Session and APIKey callers.
	PrincipalID uuid.UUID
	// PrincipalType is user or service (Session and APIKey callers).
	PrincipalType identity.PrincipalType
	// Identities are (provider, id) pairs, as carried in the access token.
	Identities []identity.Identity
	// Scopes are the effective scopes of this request.
	Scopes identity.ScopeSet
	// SessionID is set for Session callers.
	SessionID uuid.UUID
	// APIKeyFirstEight is set for APIKey callers.
	APIKeyFirstEight string
	// AccessTags restricts an API key to nodes with these tags (nil: none).
	AccessTags []string
	// Admin is true when the request may act on other principals' sessions
	// and keys: it holds write:principals (the admin role's scope).
	Admin bool
	// TokenScopes are the scopes an external issuer's token carries (its
	// scope and scp claims, untranslated), for Bearer callers.
	TokenScopes []string
	// Issuer is the external token's iss, for Bearer callers.
	Issuer string
}

// IsPrincipal reports whether the caller is a principal of the identity
// store (a session, an API key or an external bearer token), as opposed to
// anonymous or the single-user key.
func (c *Caller) IsPrincipal() bool {
	return c != nil && (c.Kind == Session || c.Kind == APIKey || c.Kind == Bearer)
}

// Name is a short label for logs ("anon", "singleuser", or the first identity).
func (c *Caller) Name() string {
	switch {
	case c == nil || c.Kind == Anonymous:
		return "anon"
	case c.Kind == SingleUser:
		return "singleuser"
	case len(c.Identities) > 0:
		return c.Identities[0].ID
	default:
		return c.PrincipalID.String()
	}
}

type ctxKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the caller set by the authentication middleware, or an
// anonymous caller with no scopes.
func FromContext(ctx context.Context) *Caller {
	if c, ok := ctx.Value(ctxKey{}).(*Caller); ok && c != nil {
		return c
	}
	return &Caller{Kind: Anonymous, Scopes: identity.ScopeSet{}}
}

type errKey struct{}

// WithError records that the request's credentials were rejected. The
// middleware does not fail the request at once, because open routes (about,
// login, probes) must answer even when a stale cookie or token is sent; routes
// that need a caller get the error from Current or RequireScopes.
func WithError(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, errKey{}, err)
}

// Current returns the caller of the request, or the error its credentials
// were rejected with.
func Current(ctx context.Context) (*Caller, error) {
	if err, ok := ctx.Value(errKey{}).(error); ok && err != nil {
		return nil, err
	}
	return FromContext(ctx), nil
}
