package config

import (
	"strings"
	"testing"
)

func TestFinalize(t *testing.T) {
	multi := "authentication:\n  providers: [{provider: toy, authenticator: dummy}]\n"
	keys := "  secret_keys: [k1]\n"
	str := func(s string) *string { return &s }
	yes := true
	tests := []struct {
		name     string
		doc      string
		env      map[string]string
		flags    Flags
		problems []string
		warnings []string
	}{
		{name: "single user, not scalable: fine", doc: minimalTrees},
		{name: "scalable single user needs a fixed key", doc: minimalTrees, flags: Flags{Scalable: &yes},
			problems: []string{"authentication.single_user_api_key: required under --scalable: in single-user mode a fixed API key is required"}},
		{name: "scalable single user with the key from the environment", doc: minimalTrees, flags: Flags{Scalable: &yes},
			env: map[string]string{"TILED_SINGLE_USER_API_KEY": "abc"}},
		{name: "scalable with providers needs keys and a database", doc: multi + minimalTrees, flags: Flags{Scalable: &yes},
			problems: []string{
				"authentication.secret_keys: required under --scalable: with authentication providers, secret keys are required",
				"database.uri: required under --scalable: with authentication providers, a persistent database",
			}},
		{name: "scalable refuses an in-memory database, pointing at it", doc: multi + keys + "database: {uri: 'sqlite://'}\n" + minimalTrees, flags: Flags{Scalable: &yes},
			problems: []string{"config.yml:4: database.uri: required under --scalable: an in-memory database is not shared between replicas"}},
		{name: "scalable from the server block, keys from the environment", doc: multi + "database: {uri: 'postgresql://db/x'}\nserver: {scalable: true}\n" + minimalTrees,
			env: map[string]string{"TILED_SECRET_KEYS": "k"}},
		{name: "scalable with SQLite warns", doc: multi + keys + "database: {uri: 'sqlite:///a.db'}\n" + minimalTrees, flags: Flags{Scalable: &yes},
			warnings: []string{"database.uri: SQLite under --scalable"}},
		{name: "providers without keys or database warn", doc: multi + minimalTrees,
			warnings: []string{"database: none configured", "authentication.secret_keys: none configured"}},
		{name: "api key from a flag must be alphanumeric", doc: minimalTrees, flags: Flags{APIKey: str("not-ok")},
			problems: []string{"flags: --api-key: must contain only letters and digits"}},
		{name: "api key from the file", doc: "authentication: {single_user_api_key: 'a b'}\n" + minimalTrees,
			problems: []string{"config.yml:1: authentication.single_user_api_key: must contain only letters and digits"}},
		{name: "empty secret key from the environment", doc: minimalTrees, env: map[string]string{"TILED_SECRET_KEYS": `["a", ""]`},
			problems: []string{"environment: TILED_SECRET_KEYS: key 1 is empty"}},
		{name: "bad log flags", doc: minimalTrees, flags: Flags{LogLevel: str("loud"), LogFormat: str("xml")},
			problems: []string{"flags: --log-format: must be one of text, json", "flags: --log-level: must be one of debug, info, warn, error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.doc, nil)
			if err := c.ApplyEnv(mapEnv(tt.env)); err != nil {
				t.Fatal(err)
			}
			c.ApplyFlags(tt.flags)
			err := c.Finalize()
			if len(tt.problems) == 0 {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				got := asErrors(t, err).Problems
				if len(got) != len(tt.problems) {
					t.Fatalf("got %d problems:\n%v", len(got), err)
				}
				for i, w := range tt.problems {
					if !strings.HasPrefix(got[i].String(), w) {
						t.Errorf("problem %d: %s\nwant %s...", i, got[i], w)
					}
				}
			}
			if len(c.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q", c.Warnings)
			}
			for i, w := range tt.warnings {
				if !strings.HasPrefix(c.Warnings[i], w) {
					t.Errorf("warning %d: %s\nwant %s...", i, c.Warnings[i], w)
				}
			}
		})
	}
}

func TestFinalizeFillsTiledsInMemoryDatabase(t *testing.T) {
	c := mustLoad(t, "authentication:\n  providers: [{provider: toy, authenticator: dummy}]\n"+minimalTrees, nil)
	if c.Database.Driver != DriverNone {
		t.Fatal("Load must not decide the database before the environment is read")
	}
	if err := c.Finalize(); err != nil {
		t.Fatal(err)
	}
	if !c.Database.InMemory || c.Database.Driver != DriverSQLite {
		t.Errorf("%+v", c.Database)
	}
}
