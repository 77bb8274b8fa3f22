package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// secretsIn are the values exampleEnv gives to secrets.
var secretsIn = []string{"secret1", "secret2", "secret3", "oidc-shh", "pg-shh", "peerkey", "k0", "k1", "k2", "abc123"}

func loadAllExamples(t *testing.T) []*Config {
	t.Helper()
	var out []*Config
	for _, f := range []string{"oidc_config.yml", "multiuser-config.yml", "scalable.yml", "single_user.yml", "access_lists.yml"} {
		c, err := Build([]string{filepath.Join(examplesDir, f)}, mapEnv(exampleEnv), Flags{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestSecretsNeverPrint(t *testing.T) {
	for _, c := range loadAllExamples(t) {
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
			l := slog.New(h)
			l.Info("config", "config", c, "auth", c.Authentication, "db", c.Database)
			for _, p := range c.Authentication.Providers {
				l.Info("provider", "provider", p, "oidc", p.OIDC, "dict", p.Dictionary)
			}
		}
		fmt.Fprintf(&buf, "%v %+v %#v %s", c, c.Authentication, c.Authentication, c.Database.URI)
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(js)
		buf.WriteString(c.Redacted())
		for _, s := range secretsIn {
			if strings.Contains(buf.String(), s) {
				t.Errorf("%v: secret %q printed", c.Sources, s)
			}
		}
	}
}

func TestRedacted(t *testing.T) {
	cs := loadAllExamples(t)
	out := cs[0].Redacted() // oidc_config.yml
	for _, want := range []string{
		"client_secret: REDACTED",
		"uri: postgresql://tiled:REDACTED@localhost:5432/tiled_auth",
		"- REDACTED", // secret_keys
		"access_token_max_age: 15m0s",
		"session_max_age: null",
		"kind: oidc",
		"token_uri: https://orcid.org/oauth/token",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted() lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(cs[3].Redacted(), "abc123") || !strings.Contains(cs[3].Redacted(), "single_user_api_key: REDACTED") {
		t.Errorf("single user key:\n%s", cs[3].Redacted())
	}
	// Free-form arguments: credentials by key name, passwords in URLs.
	c := mustLoad(t, "trees:\n  - path: /\n    tree: catalog\n    args:\n      uri: postgresql://u:hunter2@db/cat\n      storage: [{provider: s3, config: {secret_access_key: hunter3, bucket: b}}]\n", nil)
	out = c.Redacted()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "hunter3") || !strings.Contains(out, "bucket: b") || !strings.Contains(out, "postgresql://u:REDACTED@db/cat") {
		t.Errorf("tree args not redacted:\n%s", out)
	}
}

func TestSecretTypes(t *testing.T) {
	s := Secret("hunter2")
	if s.String() != "REDACTED" || Secret("").String() != "" || s.Reveal() != "hunter2" || fmt.Sprintf("%v|%s|%#v", s, s, s) != `REDACTED|REDACTED|config.Secret("REDACTED")` {
		t.Errorf("Secret prints %v %#v", s, s)
	}
	for in, want := range map[string]string{
		"postgresql://u:pw@db/x":  "postgresql://u:REDACTED@db/x",
		"postgresql://u@db/x":     "postgresql://u@db/x",
		"sqlite:///a.db":          "sqlite:///a.db",
		"post gres://u:p@w@d b/x": "REDACTED",
	} {
		if got := DSN(in).String(); got != want {
			t.Errorf("DSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecretTypesInLogs: a Secret or a DSN logged as an attribute of its
// own (slog then calls LogValue, not String), alone or in a group, never
// prints the value, with the text and the JSON handler.
func TestSecretTypesInLogs(t *testing.T) {
	secret, dsn := Secret("hunter2"), DSN("postgresql://tiled:pg-hunter3@db:5432/auth")
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		l := slog.New(h(&buf))
		l.Info("direct", "secret", secret, "database", dsn)
		l.Info("grouped", slog.Group("db", "uri", dsn, "password", secret))
		l.With("key", secret).Info("with")
		l.Info("any", slog.Any("secret", secret), slog.Any("uri", dsn))
		out := buf.String()
		for _, s := range []string{"hunter2", "pg-hunter3"} {
			if strings.Contains(out, s) {
				t.Errorf("%s handler printed %q:\n%s", name, s, out)
			}
		}
		if !strings.Contains(out, "postgresql://tiled:REDACTED@db:5432/auth") || !strings.Contains(out, "REDACTED") {
			t.Errorf("%s handler lost the redacted forms:\n%s", name, out)
		}
	}
}
