package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "null", "[]", "- a", "a: b", "trees: *x", "&a [*a]", "a: &a {b: *a}",
		"<<: {trees: []}", "trees:\n  - <<: [{path: /}, {tree: x}]\n", "authentication: {providers: [{provider: x, authenticator: oidc, args: {public_keys: [&k {kty: RSA, self: *k}]}}]}",
		"? [a]\n: b\n", "!!binary aGk=: x", "a: !!set {x}", "a: 0x_1", "authentication: {session_max_age: .inf}",
		"uvicorn: {port: 99999999999999999999}", "server: {refresh_grace_period: P}", "a: ${X", "a: '${}'",
		"--- 1\n--- 2\n", "%YAML 1.1\n---\na: b",
	} {
		f.Add([]byte(s))
	}
	env := mapEnv(map[string]string{"X": "1", "ALICE_PASSWORD": "a", "OIDC_CLIENT_SECRET": "s"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadBytes("fuzz.yml", data, env)
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) == 0 {
				t.Fatalf("error is not a non-empty *Errors: %T %v", err, err)
			}
			for _, p := range errs.Problems {
				if p.Msg == "" || (p.File != "fuzz.yml" && p.File != "") {
					t.Fatalf("bad problem %+v", p)
				}
			}
			if c != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		if len(c.Trees) == 0 {
			t.Fatal("accepted a config without trees")
		}
		_ = c.Finalize()
		if !strings.HasSuffix(c.Redacted(), "\n") {
			t.Fatal("Redacted() is not a YAML document")
		}
	})
}

// FuzzExpand: without variables, expansion never changes a string that has
// no braced reference, and reports each braced reference once.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "$", "$$", "${A}", "$A", "${", "a${b}c${d}", "${}", "$${A}"} {
		f.Add(s)
	}
	none := mapEnv(nil)
	f.Fuzz(func(t *testing.T, s string) {
		out, missing := expand(s, none)
		if out != s {
			t.Fatalf("expand(%q) = %q with no variables set", s, out)
		}
		if len(missing) > strings.Count(s, "${") {
			t.Fatalf("expand(%q) reported %d missing", s, len(missing))
		}
	})
}

// FuzzLoadTOML: the TOML path never panics, and reports problems as the
// YAML path does.
func FuzzLoadTOML(f *testing.F) {
	for _, s := range []string{
		seed001, "", "[auth]\n", "a = 1\na = 2", "[[trees]]\npath='/'\ntree='x'\n[trees.args]\nk = {a = [1, 2.5, inf]}",
		"x = 1979-05-27T07:32:00Z", "[a.b]\n[a]\nc = 1", "auth.enabled = true", "[[a]]\n[a.b]\nc = 'x'",
		"v = 0x7FFFFFFFFFFFFFFF", "v = [[1], ['a']]", "'quoted key' = \"${X}\"",
	} {
		f.Add([]byte(s))
	}
	env := mapEnv(map[string]string{"X": "1"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadBytes("fuzz.toml", data, env)
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Problems) == 0 {
				t.Fatalf("error is not a non-empty *Errors: %T %v", err, err)
			}
			return
		}
		_ = c.Finalize()
	})
}
