// Package bearerauth turns a bearer JWT of an external OIDC issuer into a
// caller of this server (authn.Caller): it picks the issuer's validator
// (package bearerjwt), maps the validated token to a principal through the
// identity store, so access control, tiled_admins and API keys work for
// bearer users as for anyone, and derives the caller's Tiled scopes. It
// also owns the resource server's HTTP rules: RFC 6750 refusals, 503 while
// an issuer's keys are not loaded, read_scopes on read routes, and Tiled's
// check that every request holds a ProxiedOIDCAuthenticator's scopes.
//
// Two kinds of issuer are served: seed 001's [auth] block (Mode Resource:
// the identity provider is the issuer URL, the id user_id_claim) and Tiled's
// ProxiedOIDCAuthenticator and EntraAuthenticator (Mode Proxied: the
// identity provider is the provider's name, as Tiled's app.state.provider).
package bearerauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/bearerjwt"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
)

// Mode says how an issuer's tokens become scopes and identities.
type Mode int

const (
	// Resource is seed 001's [auth] block.
	Resource Mode = iota
	// Proxied is Tiled's ProxiedOIDCAuthenticator (and, with Entra set,
	// its EntraAuthenticator).
	Proxied
)

// Issuer is one external issuer whose tokens are accepted.
type Issuer struct {
	Validator *bearerjwt.Validator
	Mode      Mode
	// Provider is the identity provider name of its principals' identities.
	Provider string
	// UserIDClaim names the claim that is the identity id ("sub").
	UserIDClaim string
	// ReadScopes (Resource) are the token scopes that grant reading.
	ReadScopes []string
	// ScopesMap (Proxied) translates the provider's scp into Tiled scopes.
	ScopesMap map[string][]string
	// Entra (Proxied) applies EntraAuthenticator's identity rules.
	Entra bool
	// RetryAfter is what a 503 asks clients to wait while the keys are not
	// loaded.
	RetryAfter time.Duration
}

// Admin names an identity that gets the admin role (tiled_admins).
type Admin struct{ Provider, ID string }

// Verifier implements authn.TokenVerifier for external issuers.
type Verifier struct {
	Issuers    []Issuer
	Identities identity.Store
	Admins     []Admin
	Now        func() time.Time
	Logger     *slog.Logger
	// Cache remembers principals per replica, so a request with a cached
	// key and a cached principal makes no database round trip.
	Cache *Cache
}

// Realm names this server in WWW-Authenticate challenges.
const Realm = "tiled"

// VerifyAccessToken implements authn.TokenVerifier. Its errors are
// *httperr.Error carrying the HTTP answer.
func (v *Verifier) VerifyAccessToken(ctx context.Context, token string) (*authn.Caller, error) {
	iss, err := v.issuerFor(token)
	if err != nil {
		return nil, v.refuse(ctx, err)
	}
	tok, err := iss.Validator.Validate(ctx, token)
	switch {
	case errors.Is(err, bearerjwt.ErrUnavailable):
		retry := int(iss.RetryAfter / time.Second)
		if retry <= 0 {
			retry = 5
		}
		return nil, httperr.Unavailable("The identity provider's signing keys are not loaded yet, so bearer tokens "+
			"cannot be checked. Please retry.", retry).Wrap(err)
	case err != nil:
		return nil, v.refuse(ctx, err)
	}
	return v.caller(ctx, iss, tok)
}

// issuerFor picks the issuer by the token's unverified iss when there are
// several; the chosen validator then checks iss like every other claim.
func (v *Verifier) issuerFor(token string) (*Issuer, error) {
	if len(v.Issuers) == 1 {
		return &v.Issuers[0], nil
	}
	iss := unverifiedIssuer(token)
	for i := range v.Issuers {
		if m, ok := v.Issuers[i].Validator.Metadata(); ok && m.Issuer == iss {
			return &v.Issuers[i], nil
		}
	}
	// Not loaded yet, or a stranger: the first issuer that is not loaded
	// answers 503; otherwise the token is refused.
	for i := range v.Issuers {
		if !v.Issuers[i].Validator.Ready() {
			return &v.Issuers[i], nil
		}
	}
	return nil, &bearerjwt.Error{Code: bearerjwt.CodeInvalidToken, Description: "The access token was issued by an issuer this server does not trust."}
}

func unverifiedIssuer(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > bearerjwt.MaxTokenBytes {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Iss
}

// refuse answers 401 with RFC 6750's challenge and logs why at info,
// never the token.
func (v *Verifier) refuse(ctx context.Context, err error) error {
	var e *bearerjwt.Error
	if !errors.As(err, &e) {
		e = &bearerjwt.Error{Code: bearerjwt.CodeInvalidToken, Description: "The access token is invalid.", Err: err}
	}
	v.Logger.InfoContext(ctx, "bearer token refused", "error_code", e.Code, "reason", e.Error())
	return Challenge(401, e.Code, e.Description, nil).Wrap(err)
}

// Challenge is an RFC 6750 refusal: the status, a JSON body {"detail":
// description} and WWW-Authenticate: Bearer realm, error,
// error_description (and scope, for insufficient_scope).
func Challenge(status int, code, description string, scopes []string) *httperr.Error {
	h := fmt.Sprintf(`Bearer realm="%s", error="%s", error_description="%s"`, Realm, code, quotable(description))
	if len(scopes) > 0 {
		h += fmt.Sprintf(`, scope="%s"`, quotable(strings.Join(scopes, " ")))
	}
	return httperr.New(status, description).WithHeader("WWW-Authenticate", h)
}

// quotable keeps what RFC 6750 section 3 allows in its quoted values
// (%x20-21 / %x23-5B / %x5D-7E): no quote, no backslash, no control or
// non-ASCII character.
func quotable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// caller maps a validated token to the principal and scopes of a caller.
func (v *Verifier) caller(ctx context.Context, iss *Issuer, tok *bearerjwt.Token) (*authn.Caller, error) {
	id, principalID, err := identityOf(iss, tok)
	if err != nil {
		return nil, v.refuse(ctx, err)
	}
	p, err := v.principal(ctx, iss.Provider, id, principalID)
	if err != nil {
		return nil, err
	}
	scopes := v.scopes(iss, tok, p)
	c := &authn.Caller{
		Kind: authn.Bearer, PrincipalID: p.ID, PrincipalType: p.Type, Identities: p.Identities,
		Scopes: scopes, TokenScopes: tok.Scopes, Issuer: tok.Issuer,
	}
	c.Admin = scopes.Has(identity.ScopeWritePrincipals)
	return c, nil
}

// identityOf reads the identity id (and, for Entra, the stable principal
// id) from the claims.
func identityOf(iss *Issuer, tok *bearerjwt.Token) (string, uuid.UUID, error) {
	if iss.Entra {
		id, stable := EntraIdentity(tok.Claims)
		if id == "" {
			return "", uuid.Nil, &bearerjwt.Error{Code: bearerjwt.CodeInvalidToken, Description: "The access token has no subject."}
		}
		return id, stable, nil
	}
	claim := iss.UserIDClaim
	if claim == "" {
		claim = "sub"
	}
	id, ok := tok.Claims[claim].(string)
	if !ok || id == "" {
		return "", uuid.Nil, &bearerjwt.Error{Code: bearerjwt.CodeInvalidToken,
			Description: fmt.Sprintf("The access token has no string claim %q to identify the user by.", claim)}
	}
	return id, uuid.Nil, nil
}

// EntraIdentity applies EntraAuthenticator.decode_token (Tiled 0.2.16):
// the principal id is uuid5(NAMESPACE_URL, "iss|sub"), stable across
// replicas and databases; the identity id is a readable user name, from
// nameID, preferred_username, upn or email (the part before "@", or after
// a "\"), else the original sub.
func EntraIdentity(claims map[string]any) (id string, principal uuid.UUID) {
	sub, _ := claims["sub"].(string)
	iss, _ := claims["iss"].(string)
	if sub == "" {
		return "", uuid.Nil
	}
	principal = uuid.NewSHA1(uuid.NameSpaceURL, []byte(iss+"|"+sub))
	for _, k := range []string{"nameID", "preferred_username", "upn", "email"} {
		if s, ok := claims[k].(string); ok && strings.TrimSpace(s) != "" {
			user := strings.TrimSpace(s)
			if i := strings.LastIndex(user, `\`); i >= 0 {
				user = user[i+1:]
			} else if i := strings.Index(user, "@"); i >= 0 {
				user = user[:i]
			}
			if user != "" {
				return user, principal
			}
		}
	}
	return sub, principal
}

// principal finds or creates the principal of (provider, id), from the
// per-replica cache when it is there.
func (v *Verifier) principal(ctx context.Context, provider, id string, stable uuid.UUID) (identity.Principal, error) {
	load := func(ctx context.Context) (identity.Principal, error) {
		now := v.Now().UTC()
		var (
			p       identity.Principal
			created bool
			err     error
		)
		roles := []string{identity.RoleUser}
		if stable != uuid.Nil {
			p, created, err = v.Identities.LoginIdentityAs(ctx, provider, id, stable, roles, now)
		} else {
			p, created, err = v.Identities.LoginIdentity(ctx, provider, id, roles, now)
		}
		if err != nil {
			return identity.Principal{}, fmt.Errorf("bearer principal: %w", err)
		}
		if created {
			v.Logger.InfoContext(ctx, "new principal", "provider", provider, "principal", p.ID)
		}
		if v.isAdmin(provider, id) && !hasRole(p, identity.RoleAdmin) {
			if err := v.Identities.GrantRole(ctx, p.ID, identity.RoleAdmin); err != nil {
				return identity.Principal{}, fmt.Errorf("grant admin: %w", err)
			}
			if p, err = v.Identities.GetPrincipal(ctx, p.ID); err != nil {
				return identity.Principal{}, fmt.Errorf("reload principal: %w", err)
			}
		}
		return p, nil
	}
	if v.Cache == nil {
		return load(ctx)
	}
	return v.Cache.Get(ctx, provider+"\x00"+id, load)
}

func (v *Verifier) isAdmin(provider, id string) bool {
	return slices.Contains(v.Admins, Admin{Provider: provider, ID: id})
}

func hasRole(p identity.Principal, role string) bool {
	for _, r := range p.Roles {
		if r.Name == role {
			return true
		}
	}
	return false
}

// scopes derives the caller's Tiled scopes.
//
// Resource (seed 001): the issuer decides. A token holding every
// read_scopes scope may read (read:metadata, read:data); Tiled scopes it
// names directly (write:data, create:apikeys...) are granted as named;
// an admin principal (tiled_admins) adds the admin role's scopes.
//
// Proxied (ProxiedOIDCAuthenticator): the token's scopes, translated by
// scopes_map when there is one (with no scp claim, every mapped scope); an
// admin principal adds the admin role's scopes. Tiled's get_current_scopes
// means to join every role scope of the principal, which would give each
// user the whole user role whatever its token says; a lookup of the
// principal by the wrong id keeps that join from ever happening in Tiled
// 0.2.16, so its users get the token's scopes, as they do here: the
// identity provider's scopes bound what a token can do.
func (v *Verifier) scopes(iss *Issuer, tok *bearerjwt.Token, p identity.Principal) identity.ScopeSet {
	out := identity.NewScopeSet()
	addAdmin := func() {
		for _, r := range p.Roles {
			if r.Name == identity.RoleAdmin {
				add(out, r.Scopes...)
			}
		}
	}
	switch iss.Mode {
	case Resource:
		if bearerjwt.HasAll(tok.Scopes, iss.ReadScopes) {
			add(out, identity.ScopeReadMetadata, identity.ScopeReadData)
		}
		all := identity.AllScopes()
		for _, s := range tok.Scopes {
			if slices.Contains(all, s) {
				add(out, s)
			}
		}
		addAdmin()
	case Proxied:
		add(out, mapScopes(iss.ScopesMap, tok, v.Logger)...)
		addAdmin()
	}
	return out
}

// mapScopes is ProxiedOIDCAuthenticator.decode_token's translation.
func add(set identity.ScopeSet, scopes ...string) {
	for _, s := range scopes {
		set[s] = struct{}{}
	}
}

func mapScopes(m map[string][]string, tok *bearerjwt.Token, logger *slog.Logger) []string {
	if len(m) == 0 {
		return tok.Scopes
	}
	var provider []string
	switch scp := tok.Claims["scp"].(type) {
	case string:
		provider = strings.Fields(scp)
	case []any:
		for _, s := range scp {
			if str, ok := s.(string); ok {
				provider = append(provider, str)
			}
		}
	}
	var out []string
	if len(provider) == 0 {
		for _, list := range m {
			out = append(out, list...)
		}
		return out
	}
	for _, s := range provider {
		list, ok := m[s]
		if !ok {
			logger.Warn("unmapped scope in scp", "scope", s)
			continue
		}
		out = append(out, list...)
	}
	return out
}
