package bearerauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/bearerjwt"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
)

// openPrefixes are the API routes that are not reads of the served data:
// the about document, the docs and the authentication routes.
var openRoutes = []string{links.APIPrefix, links.APIPrefix + "/", links.APIPrefix + "/docs", links.APIPrefix + "/openapi.json"}

// IsReadRoute reports whether the matched route reads the served data:
// GET or HEAD under the API prefix, except the about document, the docs,
// the OpenAPI document and /auth/... (seed 001: "read endpoints (GET /api/...)").
func IsReadRoute(c echo.Context) bool {
	m := c.Request().Method
	if m != http.MethodGet && m != http.MethodHead {
		return false
	}
	path := c.Path()
	for _, p := range openRoutes {
		if path == p {
			return false
		}
	}
	return strings.HasPrefix(path, links.APIPrefix+"/") && !strings.HasPrefix(path, links.APIPrefix+"/auth/")
}

// IsScopedRoute reports whether a route checks scopes in Tiled (where a
// ProxiedOIDCAuthenticator's scopes apply): every API route except the
// about document, the docs and the authentication routes.
func IsScopedRoute(c echo.Context) bool {
	path := c.Path()
	for _, p := range openRoutes {
		if path == p {
			return false
		}
	}
	return strings.HasPrefix(path, links.APIPrefix+"/") && !strings.HasPrefix(path, links.APIPrefix+"/auth/")
}

// Gate is the middleware of the route-dependent rules. It runs after the
// authentication middleware has resolved the caller.
type Gate struct {
	Verifier *Verifier
	// IsRead reports whether a route (method, Echo path template) reads
	// the served data; IsReadRoute when nil.
	IsRead func(method, path string) bool
	// ProxiedScopes is Tiled's ProxiedOIDCAuthenticator.scopes: with one
	// configured, every scoped request must hold them all (check_scopes).
	ProxiedScopes []string
}

// Middleware applies read_scopes to bearer callers of a Resource issuer on
// read routes (403 insufficient_scope, RFC 6750 section 3.1) and Tiled's
// proxied-authenticator check on scoped routes.
func (g *Gate) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		caller, err := authn.Current(c.Request().Context())
		if err != nil {
			// The refusal is answered by the route if it needs a caller.
			return next(c)
		}
		if caller.Kind == authn.Bearer && g.isRead(c) {
			if iss := g.issuerOf(caller); iss != nil && iss.Mode == Resource && !bearerjwt.HasAll(caller.TokenScopes, iss.ReadScopes) {
				return Challenge(http.StatusForbidden, bearerjwt.CodeInsufficientScope,
					"The access token lacks the scopes this read needs.", iss.ReadScopes)
			}
		}
		if len(g.ProxiedScopes) > 0 && IsScopedRoute(c) && !caller.Scopes.Has(g.ProxiedScopes...) {
			e := httperr.New(http.StatusUnauthorized, fmt.Sprintf(
				"Authenticator has scopes that the request does not have. Authenticator has scopes %s. Request had scopes %s",
				authn.PyList(g.ProxiedScopes), authn.PyList(caller.Scopes.Sorted())))
			e.WithHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s", error="%s", error_description="%s", scope="%s"`,
				Realm, bearerjwt.CodeInsufficientScope, "The request lacks the scopes every request to this server needs.",
				strings.Join(g.ProxiedScopes, " ")))
			e.WithHeader("X-Tiled-Root", links.API(c.Request()))
			return e
		}
		return next(c)
	}
}

func (g *Gate) isRead(c echo.Context) bool {
	if g.IsRead != nil {
		return g.IsRead(c.Request().Method, c.Path())
	}
	return IsReadRoute(c)
}

func (g *Gate) issuerOf(c *authn.Caller) *Issuer {
	if g.Verifier == nil {
		return nil
	}
	for i := range g.Verifier.Issuers {
		if m, ok := g.Verifier.Issuers[i].Validator.Metadata(); ok && m.Issuer == c.Issuer {
			return &g.Verifier.Issuers[i]
		}
	}
	return nil
}

// AdminTokenHeader is seed 001's legacy reload guard.
const AdminTokenHeader = "X-Admin-Token"

// ReloadPolicy decides who may POST /api/v1/reload.
type ReloadPolicy struct {
	// AdminToken is X-Admin-Token's secret ("" disables the header).
	AdminToken string
	// ReloadScopes are needed from a Resource issuer's bearer token.
	ReloadScopes []string
	Gate         *Gate
}

// Authorize allows the admin token (compared in constant time), the
// single-user key, an admin principal, or a bearer token of the auth
// block's issuer holding reload_scopes. Refusals are RFC 6750 answers:
// 401 without credentials or with a wrong admin token, 403 with a caller
// that lacks the right.
func (p *ReloadPolicy) Authorize(c echo.Context) (string, error) {
	r := c.Request()
	if given := r.Header.Get(AdminTokenHeader); given != "" {
		if p.AdminToken != "" && equalSecret(given, p.AdminToken) {
			return "admin-token", nil
		}
		return "", Challenge(http.StatusUnauthorized, bearerjwt.CodeInvalidToken, "The admin token is not valid.", nil)
	}
	caller, err := authn.Current(r.Context())
	if err != nil {
		return "", err
	}
	switch {
	case caller.Kind == authn.SingleUser:
		return "single-user", nil
	case caller.Admin:
		return caller.Name(), nil
	case caller.Kind == authn.Bearer:
		if iss := p.Gate.issuerOf(caller); iss != nil && iss.Mode == Resource && bearerjwt.HasAll(caller.TokenScopes, p.ReloadScopes) {
			return caller.Name(), nil
		}
		return "", Challenge(http.StatusForbidden, bearerjwt.CodeInsufficientScope, "The access token lacks the scopes a reload needs.", p.ReloadScopes)
	case caller.Kind == authn.Anonymous:
		h := fmt.Sprintf(`Bearer realm="%s"`, Realm)
		if len(p.ReloadScopes) > 0 {
			h += fmt.Sprintf(`, scope="%s"`, quotable(strings.Join(p.ReloadScopes, " ")))
		}
		return "", httperr.New(http.StatusUnauthorized, "A reload needs a bearer token with the reload scopes, an admin, or the admin token.").
			WithHeader("WWW-Authenticate", h)
	}
	return "", Challenge(http.StatusForbidden, bearerjwt.CodeInsufficientScope, "Only an admin may reload.", p.ReloadScopes)
}

// equalSecret compares in constant time, hashing first so that the
// comparison does not reveal the secret's length either.
func equalSecret(given, want string) bool {
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
