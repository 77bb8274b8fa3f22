package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const examplesDir = "../../examples/configs"

// mapEnv is an environment made of a map.
func mapEnv(m map[string]string) Env {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// exampleEnv holds every variable the example files reference.
var exampleEnv = map[string]string{
	"ALICE_PASSWORD": "secret1", "BOB_PASSWORD": "secret2", "CARA_PASSWORD": "secret3",
	"OIDC_CLIENT_ID": "tiled-client", "OIDC_CLIENT_SECRET": "oidc-shh",
	"TILED_SECRET_KEY": "k0", "TILED_SECRET_KEY_NEW": "k1", "TILED_SECRET_KEY_OLD": "k2",
	"PEER_TILED_SECRET_KEY": "peerkey", "POSTGRES_PASSWORD": "pg-shh",
	"STATE_DIR": "/var/lib/tiled", "SINGLE_USER_API_KEY": "abc123",
	"ENTRA_CLIENT_ID": "entra-client", "ENTRA_TENANT_ID": "tenant-1",
}

func asErrors(t *testing.T, err error) *Errors {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *config.Errors, got %T: %v", err, err)
	}
	return errs
}

func TestExamples(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, c *Config)
	}{
		{"public.yml", func(t *testing.T, c *Config) {
			a := c.Authentication
			if !a.AllowAnonymousAccess || !a.SingleUser() || c.Trees[0].Tree != "tiled.examples.generated_minimal:tree" {
				t.Errorf("public: %+v trees %+v", a, c.Trees)
			}
		}},
		{"single_user.yml", func(t *testing.T, c *Config) {
			if c.Authentication.SingleUserAPIKey.Reveal() != "abc123" {
				t.Errorf("api key %q", c.Authentication.SingleUserAPIKey.Reveal())
			}
		}},
		{"pam_config.yml", func(t *testing.T, c *Config) {
			p := c.Authentication.Providers[0]
			if p.Name != "local" || p.Kind != KindPAM || p.PAM == nil || p.PAM.Service != "login" {
				t.Errorf("pam provider %+v", p)
			}
		}},
		{"oidc_config.yml", func(t *testing.T, c *Config) {
			p := c.Authentication.Providers[0]
			o := p.OIDC
			if p.Kind != KindOIDC || !p.Kind.External() || o == nil {
				t.Fatalf("oidc provider %+v", p)
			}
			if o.Discovery() || o.TokenURI != "https://orcid.org/oauth/token" || o.ClientSecret.Reveal() != "oidc-shh" ||
				o.Audience != "tiled-client" || len(o.PublicKeys) != 1 || o.PublicKeys[0]["kty"] != "RSA" || o.UserIDClaim != "sub" {
				t.Errorf("oidc args %+v", o)
			}
			if p.ConfirmationMessage != "You have logged in with ORCID as {id}." {
				t.Errorf("confirmation %q", p.ConfirmationMessage)
			}
			if c.Database.Driver != DriverPostgres || c.Database.URI.Reveal() != "postgresql://tiled:pg-shh@localhost:5432/tiled_auth" {
				t.Errorf("database %+v", c.Database)
			}
		}},
		{"oidc_wellknown.yml", func(t *testing.T, c *Config) {
			o := c.Authentication.Providers[0].OIDC
			if !o.Discovery() || o.WellKnownURI != "https://accounts.google.com/.well-known/openid-configuration" ||
				o.RedirectOnSuccess != "https://tiled.example.com/ui/auth-callback" {
				t.Errorf("oidc args %+v", o)
			}
		}},
		{"dictionary_config.yml", func(t *testing.T, c *Config) {
			p := c.Authentication.Providers[0]
			want := map[string]string{"alice": "secret1", "bob": "secret2", "cara": "secret3"}
			got := p.Dictionary.Passwords()
			if p.Kind != KindDictionary || len(got) != 3 || got["alice"] != want["alice"] || got["cara"] != want["cara"] {
				t.Errorf("dictionary %+v", got)
			}
			if !c.Database.InMemory || c.Database.Driver != DriverSQLite {
				t.Errorf("providers without a database get Tiled's in-memory SQLite, got %+v", c.Database)
			}
		}},
		{"dummy_config.yml", func(t *testing.T, c *Config) {
			if p := c.Authentication.Providers[0]; p.Kind != KindDummy || p.Name != "toy" {
				t.Errorf("dummy %+v", p)
			}
		}},
		{"multiuser-config.yml", func(t *testing.T, c *Config) {
			a := c.Authentication
			if len(a.SecretKeys) != 1 || a.SecretKeys[0].Reveal() != "peerkey" {
				t.Errorf("secret keys %v", a.SecretKeys)
			}
			if len(a.TiledAdmins) != 1 || a.TiledAdmins[0].Provider != "toy" || a.TiledAdmins[0].ID != "alice" {
				t.Errorf("admins %+v", a.TiledAdmins)
			}
			if c.Database.SQLitePath != "/var/lib/tiled/auth.db" || !c.Database.InitIfNotExists {
				t.Errorf("database %+v", c.Database)
			}
		}},
		{"access_control.yml", func(t *testing.T, c *Config) {
			ac := c.AccessControl
			if ac == nil || ac.Policy != "tiled.access_control.access_policies:TagBasedAccessPolicy" || ac.Args["provider"] != "toy" {
				t.Fatalf("access control %+v", ac)
			}
			if scopes, _ := ac.Args["scopes"].([]any); len(scopes) != 2 {
				t.Errorf("scopes %v", ac.Args["scopes"])
			}
		}},
		{"access_lists.yml", func(t *testing.T, c *Config) {
			lists, _ := c.AccessControl.Args["access_lists"].(map[string]any)
			if alice, _ := lists["alice"].([]any); len(alice) != 2 || lists["cara"] != "tiled.access_policies:ALL_ACCESS" {
				t.Errorf("access lists %v", lists)
			}
			if c.Authentication.Providers[0].Kind != KindDictionary {
				t.Error("short name dictionary not resolved")
			}
		}},
		{"scalable.yml", func(t *testing.T, c *Config) {
			a := c.Authentication
			if !c.Server.Scalable || c.Server.LogFormat != "json" || len(a.SecretKeys) != 2 {
				t.Errorf("server %+v", c.Server)
			}
			if a.AccessTokenMaxAge != 15*time.Minute || a.RefreshTokenMaxAge != 168*time.Hour || a.SessionMaxAge != 0 {
				t.Errorf("durations %v %v %v", a.AccessTokenMaxAge, a.RefreshTokenMaxAge, a.SessionMaxAge)
			}
			if c.Database.URI.Reveal() != "postgresql://tiled:pg-shh@postgres:5432/tiled" || c.Database.PoolSize != 10 {
				t.Errorf("asyncpg URI not normalised: %+v", c.Database)
			}
			if c.Uvicorn.Host != "0.0.0.0" || c.Uvicorn.Port != 8000 {
				t.Errorf("uvicorn %+v", c.Uvicorn)
			}
		}},
		{"datapress.toml", func(t *testing.T, c *Config) {
			a := c.Auth
			if !a.Enabled || a.Audience != "datapress-api" || a.UserIDClaim != "preferred_username" ||
				c.Swagger.OAuth2 == nil || c.SingleUser() || len(c.Authentication.TiledAdmins) != 1 {
				t.Errorf("datapress: %+v %+v", a, c.Swagger.OAuth2)
			}
		}},
		{"entra.yml", func(t *testing.T, c *Config) {
			p := c.Authentication.Providers[0]
			if p.Kind != KindEntra || p.Proxied.ClientID != "entra-client" ||
				p.Proxied.WellKnownURI != "https://login.microsoftonline.com/tenant-1/v2.0/.well-known/openid-configuration" {
				t.Errorf("entra %+v", p.Proxied)
			}
		}},
	}
	covered := map[string]bool{"broken.yml": true}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			c, err := Build([]string{filepath.Join(examplesDir, tt.file)}, mapEnv(exampleEnv), Flags{})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Ignored) != 0 {
				t.Errorf("ignored: %v", c.Ignored)
			}
			tt.check(t, c)
		})
	}
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tomls, _ := filepath.Glob(filepath.Join(examplesDir, "*.toml"))
	files = append(files, tomls...)
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("example %s has no test case", f)
		}
	}
}

// Each example names the variables it needs: without them, Load says which.
func TestExamplesNeedTheirVariables(t *testing.T) {
	c, err := Load([]string{filepath.Join(examplesDir, "dictionary_config.yml")}, mapEnv(nil))
	if c != nil {
		t.Fatal("config returned with errors")
	}
	errs := asErrors(t, err)
	if len(errs.Problems) != 3 {
		t.Fatalf("want one problem per password, got:\n%v", err)
	}
	for i, user := range []string{"alice", "bob", "cara"} {
		p := errs.Problems[i]
		if !strings.HasSuffix(p.Path, "users_to_passwords."+user) || !strings.Contains(p.Msg, strings.ToUpper(user)+"_PASSWORD") {
			t.Errorf("problem %d: %v", i, p)
		}
	}
}

func TestBrokenReportsEverything(t *testing.T) {
	_, err := Build([]string{filepath.Join(examplesDir, "broken.yml")}, mapEnv(exampleEnv), Flags{})
	errs := asErrors(t, err)
	file := filepath.Join(examplesDir, "broken.yml")
	want := []struct {
		line int
		path string
		msg  string
	}{
		{8, "authentication.providers[0].args.users_to_passwords", "expected a mapping, got a list"},
		{9, "authentication.providers[1].provider", `provider name "toy" is used twice`},
		{10, "authentication.providers[1].authenticator", "unsupported authenticator"},
		{11, "authentication.secret_key", `did you mean "secret_keys"`},
		{13, "authentication.access_token_max_age", "expected a duration"},
		{15, "authentication.tiled_admins", `provider "nobody" is not among`},
		{18, "database.uri", "unsupported database URI"},
		{19, "database.pool_size", "between 1 and"},
		{24, "trees[0].args.password", "BROKEN_UNSET_VARIABLE is not set"},
		{26, "uvicorn.port", "expected an integer"},
		{27, "validation", "unknown key"},
	}
	if len(errs.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs.Problems), len(want), err)
	}
	for i, w := range want {
		p := errs.Problems[i]
		if p.File != file || p.Line != w.line || p.Path != w.path || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d = %v; want line %d %s: ...%s...", i, p, w.line, w.path, w.msg)
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) || !strings.HasPrefix(lines[0], file+":8: authentication.providers[0]") {
		t.Errorf("Error() should print one problem per line:\n%s", err)
	}
	if strings.Contains(err.Error(), "mysql://localhost") {
		t.Error("database URIs (which may hold passwords) must not be echoed")
	}
}

func TestExamplesAreWhatTheSeedShows(t *testing.T) {
	// The seed lost parent keys; the restored files must keep the seed's
	// distinctive lines.
	for file, lines := range map[string][]string{
		"public.yml":            {"allow_anonymous_access: true", "tree: tiled.examples.generated_minimal:tree"},
		"pam_config.yml":        {"authenticator: tiled.authenticators:PAMAuthenticator", "provider: local"},
		"dictionary_config.yml": {"alice: ${ALICE_PASSWORD}", "cara: ${CARA_PASSWORD}"},
		"dummy_config.yml":      {"authenticator: tiled.authenticators:DummyAuthenticator"},
		"oidc_config.yml":       {"client_secret: ${OIDC_CLIENT_SECRET}", "token_uri:", "authorization_endpoint:", "public_keys:", "kty: RSA"},
	} {
		data, err := os.ReadFile(filepath.Join(examplesDir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if !strings.Contains(string(data), l) {
				t.Errorf("%s lacks %q", file, l)
			}
		}
	}
}
