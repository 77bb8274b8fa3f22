package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"secret keys as a JSON list (Tiled's documented form)", map[string]string{"TILED_SECRET_KEYS": `["new", "old"]`},
			func(t *testing.T, c *Config) { wantKeys(t, c, "new", "old") }},
		{"secret keys separated by semicolons (older Tiled)", map[string]string{"TILED_SECRET_KEYS": "new;old;"},
			func(t *testing.T, c *Config) { wantKeys(t, c, "new", "old") }},
		{"single user key", map[string]string{"TILED_SINGLE_USER_API_KEY": "abc"},
			func(t *testing.T, c *Config) {
				if c.Authentication.SingleUserAPIKey.Reveal() != "abc" {
					t.Error(c.Authentication.SingleUserAPIKey.Reveal())
				}
			}},
		{"anonymous access", map[string]string{"TILED_ALLOW_ANONYMOUS_ACCESS": "1"},
			func(t *testing.T, c *Config) {
				if !c.Authentication.AllowAnonymousAccess {
					t.Error("not public")
				}
			}},
		{"token lifetimes", map[string]string{"TILED_ACCESS_TOKEN_MAX_AGE": "300", "TILED_REFRESH_TOKEN_MAX_AGE": "48h", "TILED_SESSION_MAX_AGE": "P30D"},
			func(t *testing.T, c *Config) {
				a := c.Authentication
				if a.AccessTokenMaxAge != 5*time.Minute || a.RefreshTokenMaxAge != 48*time.Hour || a.SessionMaxAge != 30*24*time.Hour {
					t.Errorf("%v %v %v", a.AccessTokenMaxAge, a.RefreshTokenMaxAge, a.SessionMaxAge)
				}
			}},
		{"unlimited session", map[string]string{"TILED_SESSION_MAX_AGE": "none"},
			func(t *testing.T, c *Config) {
				if c.Authentication.SessionMaxAge != 0 {
					t.Error(c.Authentication.SessionMaxAge)
				}
			}},
		{"database URI", map[string]string{"TILED_DATABASE_URI": "postgresql+asyncpg://u:p@db/tiled", "TILED_DATABASE_POOL_SIZE": "12", "TILED_DATABASE_INIT_IF_NOT_EXISTS": "true"},
			func(t *testing.T, c *Config) {
				db := c.Database
				if db.Driver != DriverPostgres || db.URI.Reveal() != "postgresql://u:p@db/tiled" || db.PoolSize != 12 || !db.InitIfNotExists {
					t.Errorf("%+v", db)
				}
			}},
		{"database as pydantic's JSON object", map[string]string{"TILED_DATABASE": `{"uri": "sqlite:///a.db", "pool_size": 3, "pool_pre_ping": false}`},
			func(t *testing.T, c *Config) {
				db := c.Database
				if db.SQLitePath != "a.db" || db.PoolSize != 3 || db.PoolPrePing {
					t.Errorf("%+v", db)
				}
			}},
		{"TILED_DATABASE_URI wins over TILED_DATABASE", map[string]string{"TILED_DATABASE": "sqlite:///a.db", "TILED_DATABASE_URI": "sqlite:///b.db"},
			func(t *testing.T, c *Config) {
				if c.Database.SQLitePath != "b.db" {
					t.Errorf("%+v", c.Database)
				}
			}},
		{"origins and limits", map[string]string{"TILED_ALLOW_ORIGINS": `["https://a"]`, "TILED_RESPONSE_BYTESIZE_LIMIT": "1000", "TILED_EXACT_COUNT_LIMIT": "0", "TILED_REJECT_UNDECLARED_SPECS": "yes"},
			func(t *testing.T, c *Config) {
				if !reflect.DeepEqual(c.AllowOrigins, []string{"https://a"}) || c.ResponseBytesizeLimit != 1000 || c.ExactCountLimit != 0 || !c.RejectUndeclaredSpecs {
					t.Errorf("%v %d %d %v", c.AllowOrigins, c.ResponseBytesizeLimit, c.ExactCountLimit, c.RejectUndeclaredSpecs)
				}
			}},
		{"comma-separated origins", map[string]string{"TILED_ALLOW_ORIGINS": "https://a, https://b"},
			func(t *testing.T, c *Config) {
				if !reflect.DeepEqual(c.AllowOrigins, []string{"https://a", "https://b"}) {
					t.Error(c.AllowOrigins)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, minimalTrees, nil)
			if err := c.ApplyEnv(mapEnv(tt.env)); err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func wantKeys(t *testing.T, c *Config, want ...string) {
	t.Helper()
	var got []string
	for _, k := range c.Authentication.SecretKeys {
		got = append(got, k.Reveal())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("secret keys %q, want %q", got, want)
	}
}

func TestApplyEnvProblems(t *testing.T) {
	env := map[string]string{
		"TILED_SINGLE_USER_API_KEY":    "",
		"TILED_SECRET_KEYS":            `["unterminated`,
		"TILED_ALLOW_ANONYMOUS_ACCESS": "sometimes",
		"TILED_ACCESS_TOKEN_MAX_AGE":   "0",
		"TILED_REFRESH_TOKEN_MAX_AGE":  "a week",
		"TILED_DATABASE":               `{"uri": "sqlite://", "pool": 3}`,
		"TILED_DATABASE_URI":           "mysql://u:hunter2@db/x",
		"TILED_DATABASE_POOL_SIZE":     "0",
	}
	c := mustLoad(t, minimalTrees, nil)
	err := c.ApplyEnv(mapEnv(env))
	errs := asErrors(t, err)
	want := []string{
		"environment: TILED_SINGLE_USER_API_KEY: is set but empty",
		"environment: TILED_SECRET_KEYS: expected a JSON list of strings",
		"environment: TILED_ALLOW_ANONYMOUS_ACCESS: expected a boolean",
		"environment: TILED_ACCESS_TOKEN_MAX_AGE: must be positive",
		"environment: TILED_REFRESH_TOKEN_MAX_AGE: expected a duration",
		"environment: TILED_DATABASE: expected a JSON object",
		"environment: TILED_DATABASE_URI: unsupported database URI",
		"environment: TILED_DATABASE_POOL_SIZE: expected an integer of at least 1",
	}
	if len(errs.Problems) != len(want) {
		t.Fatalf("got %d problems:\n%v", len(errs.Problems), err)
	}
	for i, w := range want {
		if s := errs.Problems[i].String(); !strings.HasPrefix(s, w) {
			t.Errorf("problem %d: %s; want %s...", i, s, w)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("a password from the environment was echoed")
	}
}

// Precedence: defaults < file < environment < flags.
func TestPrecedence(t *testing.T) {
	file := "authentication:\n  single_user_api_key: fromfile\n  allow_anonymous_access: false\nuvicorn: {host: 10.0.0.1, port: 9000}\n" + minimalTrees
	str := func(s string) *string { return &s }
	yes, no := true, false
	port := 7000
	tests := []struct {
		name       string
		env        map[string]string
		flags      Flags
		key, host  string
		port       int
		anonymous  bool
		withoutDoc bool
	}{
		{"file over defaults", nil, Flags{}, "fromfile", "10.0.0.1", 9000, false, false},
		{"defaults without a file", nil, Flags{}, "", "127.0.0.1", 8000, false, true},
		{"environment over file", map[string]string{"TILED_SINGLE_USER_API_KEY": "fromenv", "TILED_ALLOW_ANONYMOUS_ACCESS": "true"}, Flags{}, "fromenv", "10.0.0.1", 9000, true, false},
		{"flags over environment", map[string]string{"TILED_SINGLE_USER_API_KEY": "fromenv", "TILED_ALLOW_ANONYMOUS_ACCESS": "true"},
			Flags{APIKey: str("fromflag"), Public: &no, Host: str("::"), Port: &port}, "fromflag", "::", 7000, false, false},
		{"--public over file", nil, Flags{Public: &yes}, "fromfile", "10.0.0.1", 9000, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *Config
			if tt.withoutDoc {
				c = Default()
			} else {
				c = mustLoad(t, file, nil)
			}
			if err := c.ApplyEnv(mapEnv(tt.env)); err != nil {
				t.Fatal(err)
			}
			c.ApplyFlags(tt.flags)
			if err := c.Finalize(); err != nil {
				t.Fatal(err)
			}
			a := c.Authentication
			if a.SingleUserAPIKey.Reveal() != tt.key || c.Uvicorn.Host != tt.host || c.Uvicorn.Port != tt.port || a.AllowAnonymousAccess != tt.anonymous {
				t.Errorf("key %q host %q port %d anonymous %v", a.SingleUserAPIKey.Reveal(), c.Uvicorn.Host, c.Uvicorn.Port, a.AllowAnonymousAccess)
			}
		})
	}
}
