package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tiledgo/server/internal/bearerjwt"
)

// Auth is seed 001's resource-server block: [auth] in TOML, auth: in YAML.
// When Enabled, bearer JWTs minted by Issuer are accepted on every route
// (next to this server's own session tokens and API keys).
type Auth struct {
	Enabled  bool   `yaml:"enabled"`
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Algorithms is the allow-list: RS*, PS* and ES* only.
	Algorithms []string      `yaml:"algorithms"`
	Leeway     time.Duration `yaml:"leeway_secs"`
	// JWKSRefresh is clamped to at least a minute.
	JWKSRefresh time.Duration `yaml:"jwks_refresh_secs"`
	// ReadScopes are needed (from the token's scope/scp) on every read
	// route unless AnonymousRead; ReloadScopes on POST /api/v1/reload.
	ReadScopes    []string `yaml:"read_scopes"`
	ReloadScopes  []string `yaml:"reload_scopes"`
	AnonymousRead bool     `yaml:"anonymous_read"`
	// TenantClaim is an RFC 6901 JSON pointer into the claims ("/tid").
	TenantClaim    string   `yaml:"tenant_claim"`
	AllowedTenants []string `yaml:"allowed_tenants"`
	// AdminTokenFallback keeps X-Admin-Token working for reload.
	AdminTokenFallback bool `yaml:"admin_token_fallback"`
	// StartDegraded: an unreachable issuer at start is a warning (bearer
	// requests answer 503 until keys load) rather than a failed start.
	StartDegraded bool `yaml:"start_degraded"`
	// UserIDClaim names the claim that becomes the identity id of the
	// principal (provider = the issuer). An extension of seed 001.
	UserIDClaim string `yaml:"user_id_claim"`
	// AdminToken is X-Admin-Token's secret, from TILED_ADMIN_TOKEN or the
	// file TILED_ADMIN_TOKEN_FILE names: never from a config file, which
	// tends to end up in a repository.
	AdminToken Secret `yaml:"admin_token"`
}

// Swagger configures the Swagger UI at /docs.
type Swagger struct {
	// OAuth2 makes the "Authorize" button run authorization code + PKCE
	// against an OIDC issuer; nil when not configured.
	OAuth2 *SwaggerOAuth2 `yaml:"oauth2"`
}

// SwaggerOAuth2 is [swagger.oauth2]: a public (SPA) client at the issuer.
type SwaggerOAuth2 struct {
	Issuer   string   `yaml:"issuer"`
	ClientID string   `yaml:"client_id"`
	Scopes   []string `yaml:"scopes"`
}

// Seed 001's defaults.
const (
	DefaultAuthLeeway      = 60 * time.Second
	DefaultAuthJWKSRefresh = time.Hour
	MinAuthJWKSRefresh     = time.Minute
	// MinAdminTokenLength refuses guessable admin tokens.
	MinAdminTokenLength = 16
)

func defaultAuth() Auth {
	return Auth{
		Algorithms: []string{"RS256"}, Leeway: DefaultAuthLeeway, JWKSRefresh: DefaultAuthJWKSRefresh,
		ReadScopes: []string{}, ReloadScopes: []string{}, AllowedTenants: []string{},
		AdminTokenFallback: true, StartDegraded: true, UserIDClaim: "sub",
	}
}

var authKeys = []string{
	"enabled", "issuer", "audience", "algorithms", "leeway_secs", "jwks_refresh_secs",
	"read_scopes", "reload_scopes", "anonymous_read", "tenant_claim", "allowed_tenants",
	"admin_token_fallback", "start_degraded", "user_id_claim", "admin_token",
}

func (d *decoder) auth(c *Config, n *yaml.Node, path string) {
	f, ok := d.object(n, path, authKeys)
	if !ok {
		return
	}
	a := &c.Auth
	d.setBool(f, "enabled", &a.Enabled)
	if v, p := f.get("admin_token"); v != nil {
		d.add(v, p, "the admin token is never read from a file; set TILED_ADMIN_TOKEN, or TILED_ADMIN_TOKEN_FILE to a file holding it")
	}
	if v, p := f.get("issuer"); v != nil {
		if s, ok := d.str(v, p); ok && d.absoluteURL(v, p, s) {
			a.Issuer = s
		}
	} else if a.Enabled {
		d.add(f.node, join(path, "issuer"), "is required when enabled = true (the OIDC issuer URL; discovery is {issuer}/.well-known/openid-configuration)")
	}
	d.setStr(f, "audience", &a.Audience)
	if v, p := f.get("algorithms"); v != nil {
		if algs, ok := d.strList(v, p); ok {
			good := true
			for i, alg := range algs {
				if !slices.Contains(bearerjwt.Asymmetric, alg) {
					d.add(d.peek(v).Content[i], index(p, i), "%q is not accepted: only RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 and ES512 "+
						"(\"none\" proves nothing, and HS* with a public key as the secret is the classic forgery)", alg)
					good = false
				}
			}
			if len(algs) == 0 {
				d.add(v, p, "must list at least one algorithm")
				good = false
			}
			if good {
				a.Algorithms = algs
			}
		}
	}
	d.setSeconds(f, "leeway_secs", 0, int64(bearerjwt.MaxLeeway/time.Second), &a.Leeway)
	if v, p := f.get("jwks_refresh_secs"); v != nil {
		if secs, ok := d.integer(v, p); ok {
			switch {
			case secs <= 0:
				d.add(v, p, "must be positive")
			case secs < int64(MinAuthJWKSRefresh/time.Second):
				d.warn(v, p, fmt.Sprintf("%d s is below the minimum; clamped to %d s", secs, int64(MinAuthJWKSRefresh/time.Second)))
				a.JWKSRefresh = MinAuthJWKSRefresh
			case secs > int64(30*24*time.Hour/time.Second):
				d.add(v, p, "must be at most 30 days")
			default:
				a.JWKSRefresh = time.Duration(secs) * time.Second
			}
		}
	}
	d.setStrList(f, "read_scopes", &a.ReadScopes)
	d.setStrList(f, "reload_scopes", &a.ReloadScopes)
	d.setBool(f, "anonymous_read", &a.AnonymousRead)
	if v, p := f.get("tenant_claim"); v != nil {
		if s, ok := d.str(v, p); ok {
			if _, err := bearerjwt.ParsePointer(s); err != nil {
				d.add(v, p, "%v", err)
			} else {
				a.TenantClaim = s
			}
		}
	}
	d.setStrList(f, "allowed_tenants", &a.AllowedTenants)
	if len(a.AllowedTenants) > 0 && a.TenantClaim == "" && f.vals["tenant_claim"] == nil {
		v, p := f.get("allowed_tenants")
		d.add(v, p, "needs tenant_claim, the JSON pointer to read the tenant from (such as \"/tid\")")
	}
	d.setBool(f, "admin_token_fallback", &a.AdminTokenFallback)
	d.setBool(f, "start_degraded", &a.StartDegraded)
	d.setStr(f, "user_id_claim", &a.UserIDClaim)
	if a.UserIDClaim == "" {
		v, p := f.get("user_id_claim")
		d.add(v, p, "must not be empty")
	}
}

func (d *decoder) setStrList(f fields, key string, dst *[]string) {
	if v, p := f.get(key); v != nil {
		if list, ok := d.strList(v, p); ok {
			*dst = list
		}
	}
}

// setSeconds reads whole seconds between lo and hi.
func (d *decoder) setSeconds(f fields, key string, lo, hi int64, dst *time.Duration) {
	v, p := f.get(key)
	if v == nil {
		return
	}
	secs, ok := d.integer(v, p)
	if !ok {
		return
	}
	if secs < lo || secs > hi {
		d.add(v, p, "must be between %d and %d seconds", lo, hi)
		return
	}
	*dst = time.Duration(secs) * time.Second
}

func (d *decoder) swagger(c *Config, n *yaml.Node, path string) {
	f, ok := d.object(n, path, []string{"oauth2"})
	if !ok {
		return
	}
	v, p := f.get("oauth2")
	if v == nil {
		return
	}
	of, ok := d.object(v, p, []string{"issuer", "client_id", "scopes"})
	if !ok {
		return
	}
	o := &SwaggerOAuth2{Scopes: []string{"openid"}}
	good := d.require(of, "issuer", "client_id")
	if iv, ip := of.get("issuer"); iv != nil {
		if s, ok := d.str(iv, ip); ok && d.absoluteURL(iv, ip, s) {
			o.Issuer = s
		} else {
			good = false
		}
	}
	d.setStr(of, "client_id", &o.ClientID)
	d.setStrList(of, "scopes", &o.Scopes)
	if good {
		c.Swagger.OAuth2 = o
	}
}

// checkAuth applies the rules of the auth block that span sources (after
// the environment has had its say on the admin token).
func (c *Config) checkAuth(probs *collector) {
	a := &c.Auth
	if t := a.AdminToken.Reveal(); t != "" && len(t) < MinAdminTokenLength {
		probs.add(c.problem("auth.admin_token", "must be at least %d characters (generate one with: openssl rand -hex 32)", MinAdminTokenLength))
	}
	if !a.Enabled {
		return
	}
	if a.Issuer == "" {
		probs.add(c.problem("auth.issuer", "is required when auth.enabled is true"))
	}
	for _, p := range c.Authentication.Providers {
		if p.Proxied != nil && strings.TrimSuffix(p.Proxied.issuerHint(), "/") != "" &&
			strings.TrimSuffix(p.Proxied.issuerHint(), "/") == strings.TrimSuffix(a.Issuer, "/") {
			probs.add(c.problem("auth.issuer", "is also the issuer of provider %q; a token must map to one identity provider", p.Name))
		}
	}
	if len(a.ReloadScopes) == 0 {
		c.Warnings = append(c.Warnings, "auth.reload_scopes: empty, so any valid bearer token may call POST /api/v1/reload")
	}
}
