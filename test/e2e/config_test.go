package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// minimalEnv is the environment check-config runs with: enough to run a
// program, and nothing that a config could interpolate by accident.
func minimalEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return withGORACE(append(env, extra...))
}

var varRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// referencedVars lists the ${NAME} references in a config file.
func referencedVars(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var names []string
	for _, m := range varRefRE.FindAllStringSubmatch(string(raw), -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	return names
}

func examplesDir(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "examples", "configs")
}

// TestCheckConfigExamples: every example config is valid once the
// variables it references are set (a directory for *_DIR, else a secret).
func TestCheckConfigExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(examplesDir(t), "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("expected example configs in %s, found %v", examplesDir(t), files)
	}
	for _, f := range files {
		if filepath.Base(f) == "broken.yml" {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			var env []string
			for _, name := range referencedVars(t, f) {
				v := randomHex(t, 32)
				if strings.HasSuffix(name, "_DIR") {
					v = t.TempDir()
				}
				env = append(env, name+"="+v)
			}
			code, stdout, stderr := runCLI(t, minimalEnv(env...), "check-config", f)
			if filepath.Base(f) == "pam_config.yml" && suite.noPAM != "" {
				// A binary that cannot use PAM here says so, and why.
				if code != 1 || !strings.Contains(stderr, suite.noPAM) {
					t.Errorf("check-config %s without PAM: exit %d, want 1 with %q:\n%s", filepath.Base(f), code, suite.noPAM, stderr)
				}
				return
			}
			if code != 0 {
				t.Errorf("check-config %s: exit %d, want 0\nenv: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(f), code, env, stdout, stderr)
			}
		})
	}
}

// brokenLine is a line of broken.yml that its author marked with a comment
// as wrong, and the key written on it.
type brokenLine struct {
	line int
	key  string
	text string
}

var yamlKeyRE = regexp.MustCompile(`^\s*(?:-\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:`)

// markedLines reads broken.yml's trailing comments: each commented line
// holds one independent mistake.
func markedLines(t *testing.T, path string) []brokenLine {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []brokenLine
	for i, l := range strings.Split(string(raw), "\n") {
		code, comment, ok := strings.Cut(l, "#")
		if !ok || strings.TrimSpace(code) == "" || strings.TrimSpace(comment) == "" {
			continue
		}
		m := yamlKeyRE.FindStringSubmatch(code)
		if m == nil {
			t.Fatalf("broken.yml:%d: cannot find the key in %q", i+1, l)
		}
		out = append(out, brokenLine{line: i + 1, key: m[1], text: strings.TrimSpace(l)})
	}
	return out
}

// TestCheckConfigBroken: examples/configs/broken.yml is wrong in several
// independent ways, each marked by a comment on its line; check-config
// must exit 1 and report every one on its own line, naming the line and
// the key.
func TestCheckConfigBroken(t *testing.T) {
	t.Parallel()
	path := filepath.Join(examplesDir(t), "broken.yml")
	marked := markedLines(t, path)
	if len(marked) < 2 {
		t.Fatalf("broken.yml marks %d problems; expected several", len(marked))
	}
	code, stdout, stderr := runCLI(t, minimalEnv(), "check-config", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	lines := nonEmptyLines(stderr)
	if len(lines) < len(marked) {
		t.Errorf("%d lines on stderr for %d marked problems", len(lines), len(marked))
	}
	for _, m := range marked {
		loc := "broken.yml:" + strconv.Itoa(m.line) + ":"
		found := false
		for _, l := range lines {
			if strings.Contains(l, loc) && strings.Contains(l, m.key) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no line names %q and key %q for: %s", loc, m.key, m.text)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

const validTrees = "trees:\n  - path: /\n    tree: tiled.examples.generated_minimal:tree\n"

// TestCheckConfigProblems: small configs with known mistakes; each mistake
// is reported on its own line with its key path, all of them at once.
func TestCheckConfigProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		yaml  string
		paths []string // key paths that must each appear on a distinct line
	}{
		{"valid", "authentication:\n  allow_anonymous_access: true\n" + validTrees, nil},
		{"unknown top-level key", validTrees + "bogus_top: 1\n", []string{"bogus_top"}},
		{"unknown nested key", "authentication:\n  bogus_nested: 1\n" + validTrees, []string{"authentication.bogus_nested"}},
		{"unknown key in a list item", "authentication:\n  providers:\n    - provider: toy\n" +
			"      authenticator: tiled.authenticators:DummyAuthenticator\n      bogus_item: 1\n" + validTrees,
			[]string{"authentication.providers[0].bogus_item"}},
		{"wrong type", "uvicorn:\n  port: eighty\n" + validTrees, []string{"uvicorn.port"}},
		{"two errors in one file", "authentication:\n  allow_anonymous_access: maybe\nuvicorn:\n  port: [1, 2]\n" + validTrees,
			[]string{"authentication.allow_anonymous_access", "uvicorn.port"}},
		{"unset variable", "authentication:\n  single_user_api_key: ${E2E_SURELY_UNSET}\n" + validTrees,
			[]string{"authentication.single_user_api_key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "config.yml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, minimalEnv(), "check-config", path)
			if len(tc.paths) == 0 {
				if code != 0 {
					t.Errorf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
				}
				return
			}
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			lines := nonEmptyLines(stderr)
			used := map[int]bool{}
			for _, p := range tc.paths {
				found := false
				for i, l := range lines {
					if !used[i] && containsPath(l, p) {
						used[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("no line of its own names key path %q", p)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
		})
	}
}

// containsPath reports whether line names the key path p as a whole path
// (so "uvicorn.port" does not match "uvicorn.portx").
func containsPath(line, p string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9_.\[\]])` + regexp.QuoteMeta(p) + `($|[^A-Za-z0-9_\[])`)
	return re.MatchString(line)
}
