package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, doc string, env map[string]string) *Config {
	t.Helper()
	c, err := loadYAML(t, doc, env)
	if err != nil {
		t.Fatalf("unexpected problems:\n%v", err)
	}
	return c
}

func TestDurations(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"900", 15 * time.Minute},
		{"1.5", 1500 * time.Millisecond},
		{"15m", 15 * time.Minute},
		{"168h", 7 * 24 * time.Hour},
		{`"900"`, 15 * time.Minute},
		{"PT15M", 15 * time.Minute},
		{"P1DT2H", 26 * time.Hour},
		{"P1W", 7 * 24 * time.Hour},
		{"1h30m", 90 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c := mustLoad(t, "authentication:\n  access_token_max_age: "+tt.value+"\n"+minimalTrees, nil)
			if got := c.Authentication.AccessTokenMaxAge; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, minimalTrees, nil)
	a := c.Authentication
	if a.AccessTokenMaxAge != 15*time.Minute || a.RefreshTokenMaxAge != 7*24*time.Hour || a.SessionMaxAge != 0 {
		t.Errorf("token lifetimes %v %v %v", a.AccessTokenMaxAge, a.RefreshTokenMaxAge, a.SessionMaxAge)
	}
	if !a.SingleUser() || a.AllowAnonymousAccess || a.SingleUserAPIKey != "" {
		t.Errorf("authentication %+v", a)
	}
	if c.Uvicorn.Host != "127.0.0.1" || c.Uvicorn.Port != 8000 || !c.Metrics.Prometheus {
		t.Errorf("uvicorn %+v metrics %+v", c.Uvicorn, c.Metrics)
	}
	if c.Server.RefreshGracePeriod != 10*time.Second || c.Server.LogFormat != "text" || c.Server.LogLevel != "info" {
		t.Errorf("server %+v", c.Server)
	}
	if c.Database.Driver != DriverNone || c.Database.PoolSize != 5 || c.ResponseBytesizeLimit != 300_000_000 {
		t.Errorf("database %+v", c.Database)
	}
	if got := Default(); got.Trees != nil || got.Authentication.AccessTokenMaxAge != 15*time.Minute {
		t.Errorf("Default() %+v", got)
	}
}

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"session_max_age null is unlimited", "authentication:\n  session_max_age: null\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if c.Authentication.SessionMaxAge != 0 {
					t.Error(c.Authentication.SessionMaxAge)
				}
			}},
		{"session_max_age in seconds", "authentication:\n  session_max_age: 31536000\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if c.Authentication.SessionMaxAge != 365*24*time.Hour {
					t.Error(c.Authentication.SessionMaxAge)
				}
			}},
		{"YAML 1.1 booleans, as PyYAML reads them", "authentication:\n  allow_anonymous_access: yes\nreject_undeclared_specs: On\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if !c.Authentication.AllowAnonymousAccess || !c.RejectUndeclaredSpecs {
					t.Error("yes/On not read as true")
				}
			}},
		{"empty authentication block (config.example.yml)", "authentication:\n  # all commented out\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if !c.Authentication.SingleUser() {
					t.Error("providers appeared")
				}
			}},
		{"catalog becomes a tree at the root", "catalog:\n  uri: sqlite:///c.db\n  writable_storage: ./data\n  init_if_not_exists: true\n", nil,
			func(t *testing.T, c *Config) {
				want := Tree{Path: "/", Tree: TreeCatalog, Args: map[string]any{"uri": "sqlite:///c.db", "writable_storage": "./data", "init_if_not_exists": true}}
				if len(c.Trees) != 1 || c.Trees[0].Path != want.Path || c.Trees[0].Tree != want.Tree || !reflect.DeepEqual(c.Trees[0].Args, want.Args) {
					t.Errorf("trees %+v", c.Trees)
				}
			}},
		{"tree alias and path normalisation", "trees:\n  - {path: a/b/, tree: catalog, args: {uri: x}}\n  - {path: /c, tree: m:t}\n", nil,
			func(t *testing.T, c *Config) {
				if c.Trees[0].Path != "/a/b" || c.Trees[0].Tree != TreeCatalog || c.Trees[1].Path != "/c" || c.Trees[0].Args["uri"] != "x" {
					t.Errorf("trees %+v", c.Trees)
				}
			}},
		{"per-tree access control (older Tiled)", "trees:\n  - path: /a\n    tree: m:t\n    access_control:\n      access_policy: tiled.access_policies:SimpleAccessPolicy\n      args: {access_lists: {alice: [x]}, public: [y]}\n", nil,
			func(t *testing.T, c *Config) {
				ac := c.Trees[0].AccessControl
				if ac == nil || ac.Policy != "tiled.access_policies:SimpleAccessPolicy" || !reflect.DeepEqual(ac.Args["public"], []any{"y"}) {
					t.Errorf("access control %+v", ac)
				}
			}},
		{"null access_policy means none", "access_control:\n  access_policy: null\n  args: {}\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if c.AccessControl != nil {
					t.Errorf("%+v", c.AccessControl)
				}
			}},
		{"merge keys in args", "authentication:\n  providers:\n    - provider: a\n      authenticator: oidc\n      args: &common\n        client_id: c\n        client_secret: s\n        well_known_uri: https://idp/.well-known/openid-configuration\n    - provider: b\n      authenticator: oidc\n      args:\n        <<: *common\n        client_id: other\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				b := c.Authentication.Providers[1].OIDC
				if b.ClientID != "other" || b.ClientSecret.Reveal() != "s" || !b.Discovery() {
					t.Errorf("merged args %+v", b)
				}
			}},
		{"ignored keys are listed with their line", "uvicorn:\n  host: 0.0.0.0\n  workers: 4\nmedia_types:\n  array: {application/x-a: m:f}\nobject_cache:\n  available_bytes: 1e9\nspecs:\n  - {spec: xdi, validator: m:v}\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				want := []string{"config.yml:3: uvicorn.workers", "config.yml:4: media_types", "config.yml:6: object_cache", "config.yml:9: specs[0].validator"}
				if !reflect.DeepEqual(c.Ignored, want) {
					t.Errorf("ignored %q", c.Ignored)
				}
				if c.Uvicorn.Host != "0.0.0.0" || !reflect.DeepEqual(c.Specs, []string{"xdi"}) {
					t.Errorf("uvicorn %+v specs %v", c.Uvicorn, c.Specs)
				}
			}},
		{"values from variables are converted", "uvicorn:\n  port: ${PORT}\nauthentication:\n  allow_anonymous_access: ${PUBLIC}\n  access_token_max_age: ${AGE}\ndatabase:\n  uri: sqlite://\n  pool_size: ${POOL}\n" + minimalTrees,
			map[string]string{"PORT": "9000", "PUBLIC": "true", "AGE": "60", "POOL": " 7 "},
			func(t *testing.T, c *Config) {
				if c.Uvicorn.Port != 9000 || !c.Authentication.AllowAnonymousAccess || c.Authentication.AccessTokenMaxAge != time.Minute || c.Database.PoolSize != 7 {
					t.Errorf("port %d public %v age %v pool %d", c.Uvicorn.Port, c.Authentication.AllowAnonymousAccess, c.Authentication.AccessTokenMaxAge, c.Database.PoolSize)
				}
			}},
		{"a variable holding a number stays a string where a string is wanted", "authentication:\n  single_user_api_key: ${KEY}\n" + minimalTrees,
			map[string]string{"KEY": "12345"},
			func(t *testing.T, c *Config) {
				if c.Authentication.SingleUserAPIKey.Reveal() != "12345" {
					t.Error(c.Authentication.SingleUserAPIKey.Reveal())
				}
			}},
		{"empty dictionary password warns", "authentication:\n  providers:\n    - provider: toy\n      authenticator: dictionary\n      args:\n        users_to_passwords:\n          alice: ${ALICE}\n" + minimalTrees,
			map[string]string{"ALICE": ""},
			func(t *testing.T, c *Config) {
				if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "users_to_passwords.alice: empty password") {
					t.Errorf("warnings %q", c.Warnings)
				}
			}},
		{"PAM service", "authentication:\n  providers: [{provider: local, authenticator: pam, args: {service: tiled, confirmation_message: hi}}]\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				p := c.Authentication.Providers[0]
				if p.PAM.Service != "tiled" || p.ConfirmationMessage != "hi" {
					t.Errorf("%+v", p)
				}
			}},
		{"OIDC public client", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n        token_endpoint_auth_method: none\n        well_known_uri: https://idp/.well-known/openid-configuration\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				o := c.Authentication.Providers[0].OIDC
				if o.TokenEndpointAuthMethod != "none" || o.ClientSecret != "" {
					t.Errorf("%+v", o)
				}
			}},
		{"OIDC client_secret_basic", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n        client_secret: s\n        token_endpoint_auth_method: client_secret_basic\n        well_known_uri: https://idp/.well-known/openid-configuration\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if o := c.Authentication.Providers[0].OIDC; o.TokenEndpointAuthMethod != "client_secret_basic" {
					t.Errorf("%+v", o)
				}
			}},
		{"OIDC options", "authentication:\n  providers:\n    - provider: o\n      authenticator: OIDC\n      args:\n        audience: aud\n        client_id: c\n        client_secret: s\n        well_known_uri: https://idp/.well-known/openid-configuration\n        user_id_claim: email\n        extra_scopes: [email, profile]\n        redirect_on_failure: https://ui/failed\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				o := c.Authentication.Providers[0].OIDC
				if o.Audience != "aud" || o.UserIDClaim != "email" || !reflect.DeepEqual(o.ExtraScopes, []string{"email", "profile"}) || o.RedirectOnFailure != "https://ui/failed" {
					t.Errorf("%+v", o)
				}
			}},
		{"file extensions and origins", "file_extensions: {tif: image/tiff}\nallow_origins: [https://a.example]\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if c.FileExtensions["tif"] != "image/tiff" || !reflect.DeepEqual(c.AllowOrigins, []string{"https://a.example"}) {
					t.Errorf("%v %v", c.FileExtensions, c.AllowOrigins)
				}
			}},
		{"integers with underscores", "response_bytesize_limit: 1_000_000\n" + minimalTrees, nil,
			func(t *testing.T, c *Config) {
				if c.ResponseBytesizeLimit != 1_000_000 {
					t.Error(c.ResponseBytesizeLimit)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustLoad(t, tt.doc, tt.env))
		})
	}
}

func TestShortAuthenticatorNames(t *testing.T) {
	for name, want := range map[string]Kind{
		"dictionary": KindDictionary, "PAM": KindPAM, "oidc": KindOIDC, "Dummy": KindDummy,
		"tiled.authenticators:DictionaryAuthenticator":  KindDictionary,
		"tiled.authenticators:PAMAuthenticator":         KindPAM,
		"tiled.authenticators:OIDCAuthenticator":        KindOIDC,
		"tiled.authenticators:DummyAuthenticator":       KindDummy,
		"tiled.authenticators:ProxiedOIDCAuthenticator": KindProxiedOIDC,
		"tiled.authenticators:EntraAuthenticator":       KindEntra,
		"proxied_oidc": KindProxiedOIDC, "entra": KindEntra,
	} {
		if got, ok := ParseKind(name); !ok || got != want {
			t.Errorf("ParseKind(%q) = %v, %v", name, got, ok)
		}
	}
	for _, bad := range []string{"tiled.authenticators:dummyauthenticator", "tiled.authenticators:SAMLAuthenticator", "ldap", ""} {
		if _, ok := ParseKind(bad); ok {
			t.Errorf("ParseKind(%q) accepted", bad)
		}
	}
}

// An alias bomb must be refused quickly, not expanded.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("trees:\n  - path: /\n    tree: m:t\n    args:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		prev := "*l" + string(rune('0'+i-1))
		b.WriteString("      l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n")
	}
	got := problemsOf(t, b.String(), nil)
	if len(got) != 1 || !strings.Contains(got[0], "document too large after expanding aliases") {
		t.Fatalf("got %q", got)
	}
}

func TestSelfReferentialAnchor(t *testing.T) {
	got := problemsOf(t, "trees:\n  - path: /\n    tree: m:t\n    args: &a\n      self: *a\n", nil)
	if len(got) != 1 || got[0] != "config.yml:4: trees[0].args.self: value contains itself (through an alias)" {
		t.Fatalf("a mapping containing itself: %q", got)
	}
}

// The hardening keys of the server block (issue 19): defaults, values in
// every accepted form, and each refusal with its key path.
func TestServerHardeningKeys(t *testing.T) {
	c := mustLoad(t, minimalTrees, nil)
	s := c.Server
	if len(s.TrustedProxies) != 0 || s.ForwardedHeader != "x-forwarded-for" {
		t.Errorf("proxies %v header %q: by default no proxy is trusted", s.TrustedProxies, s.ForwardedHeader)
	}
	if s.LoginFailuresPerUserAddress != 10 || s.LoginFailuresPerAddress != 100 ||
		s.LoginFailureWindow != 15*time.Minute || s.LoginFailureMaxDelay != 5*time.Second {
		t.Errorf("login limits %d %d %v %v", s.LoginFailuresPerUserAddress, s.LoginFailuresPerAddress, s.LoginFailureWindow, s.LoginFailureMaxDelay)
	}
	if s.AuditRetention != 90*24*time.Hour || s.RequestTimeout != time.Minute || s.MaxInFlight != 1000 {
		t.Errorf("audit %v request %v in flight %d", s.AuditRetention, s.RequestTimeout, s.MaxInFlight)
	}
	if d := Default().Server; d.LoginFailuresPerAddress != 100 || d.MaxInFlight != 1000 || d.ForwardedHeader != "x-forwarded-for" {
		t.Errorf("Default() server %+v", d)
	}

	c = mustLoad(t, `server:
  trusted_proxies: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32", "::ffff:172.16.0.0/108", 10.1.2.3/8]
  forwarded_header: Forwarded
  login_failures_per_user_address: 3
  login_failures_per_address: 0
  login_failure_window: 600
  login_failure_max_delay: 0
  audit_retention: P30D
  request_timeout: 30s
  max_in_flight: 0
`+minimalTrees, nil)
	s = c.Server
	var got []string
	for _, p := range s.TrustedProxies {
		got = append(got, p.String())
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "172.16.0.0/12", "10.0.0.0/8"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trusted proxies %v, want %v", got, want)
	}
	if dump := c.Redacted(); !strings.Contains(dump, "trusted_proxies:\n    - 10.0.0.0/8\n    - 192.0.2.7/32") ||
		!strings.Contains(dump, "login_failures_per_user_address: 3") || !strings.Contains(dump, "audit_retention: 720h0m0s") {
		t.Errorf("check-config --print shows:\n%s", dump)
	}
	if s.ForwardedHeader != "forwarded" || s.LoginFailuresPerUserAddress != 3 || s.LoginFailuresPerAddress != 0 ||
		s.LoginFailureWindow != 10*time.Minute || s.LoginFailureMaxDelay != 0 || s.AuditRetention != 30*24*time.Hour ||
		s.RequestTimeout != 30*time.Second || s.MaxInFlight != 0 {
		t.Errorf("server %+v", s)
	}

	for _, tt := range []struct{ doc, want string }{
		{"server:\n  trusted_proxies: [10.0.0.0/33]\n", `config.yml:2: server.trusted_proxies[0]: not a CIDR such as 10.0.0.0/8: "10.0.0.0/33"`},
		{"server:\n  trusted_proxies: [proxy.example]\n", `server.trusted_proxies[0]: not an address or CIDR`},
		{"server:\n  trusted_proxies: [\"fe80::1%eth0\"]\n", `server.trusted_proxies[0]: not an address or CIDR`},
		{"server:\n  trusted_proxies: [\"::ffff:0.0.0.0/8\"]\n", `server.trusted_proxies[0]: an IPv4-mapped CIDR needs at least 96 bits`},
		{"server:\n  trusted_proxies: 10.0.0.0/8\n", `server.trusted_proxies: expected a list`},
		{"server:\n  forwarded_header: x-real-ip\n", `server.forwarded_header: must be one of x-forwarded-for, forwarded`},
		{"server:\n  login_failures_per_user_address: -1\n", `server.login_failures_per_user_address: must be between 0 and 1000000`},
		{"server:\n  login_failures_per_address: 1000001\n", `server.login_failures_per_address: must be between 0 and 1000000`},
		{"server:\n  login_failure_window: 0\n", `server.login_failure_window: must be positive`},
		{"server:\n  login_failure_max_delay: -1s\n", `server.login_failure_max_delay: must not be negative`},
		{"server:\n  audit_retention: -1\n", `server.audit_retention: must not be negative`},
		{"server:\n  request_timeout: -1\n", `server.request_timeout: must not be negative`},
		{"server:\n  max_in_flight: -1\n", `server.max_in_flight: must be between 0 and 1000000`},
	} {
		problems := problemsOf(t, tt.doc+minimalTrees, nil)
		if len(problems) != 1 || !strings.Contains(problems[0], tt.want) {
			t.Errorf("%q: problems %q, want one containing %q", tt.doc, problems, tt.want)
		}
	}
}
