package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFiles creates files (name -> content) under a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const authFile = "authentication:\n  providers:\n    - {provider: toy, authenticator: dummy}\n"

func TestMerge(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yml": authFile + "trees:\n  - {path: /a, tree: m:a}\nallow_origins: [https://one]\nspecs: [{spec: s1}]\n",
		"b.yml": "trees:\n  - {path: /b, tree: m:b}\nallow_origins: [https://two]\nspecs: [{spec: s2}]\ndatabase: {uri: sqlite:///x.db}\n",
	})
	c, err := Load([]string{filepath.Join(dir, "a.yml"), filepath.Join(dir, "b.yml")}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, tr := range c.Trees {
		paths = append(paths, tr.Path)
	}
	if !reflect.DeepEqual(paths, []string{"/a", "/b"}) || !reflect.DeepEqual(c.AllowOrigins, []string{"https://one", "https://two"}) ||
		!reflect.DeepEqual(c.Specs, []string{"s1", "s2"}) {
		t.Errorf("trees %v origins %v specs %v", paths, c.AllowOrigins, c.Specs)
	}
	if len(c.Authentication.Providers) != 1 || c.Database.SQLitePath != "x.db" || len(c.Sources) != 2 {
		t.Errorf("authentication %+v database %+v sources %v", c.Authentication, c.Database, c.Sources)
	}
}

func TestMergeConflicts(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of Error() lines, in order
	}{
		{"a key given twice",
			map[string]string{"a.yml": authFile + minimalTrees, "b.yml": "authentication:\n  allow_anonymous_access: true\n"},
			[]string{"a.yml:1; only trees, specs and allow_origins may appear in several files"}},
		{"several keys given twice are each reported",
			map[string]string{"a.yml": "uvicorn: {port: 1}\nmetrics: {prometheus: false}\n" + minimalTrees, "b.yml": "metrics: {prometheus: true}\nuvicorn: {port: 2}\n"},
			[]string{"b.yml:1: metrics: also given in", "b.yml:2: uvicorn: also given in"}},
		{"catalog in one file, trees in another",
			map[string]string{"a.yml": "catalog: {uri: sqlite:///c.db}\n", "b.yml": minimalTrees},
			[]string{"a.yml:1: catalog: 'catalog' specifies a single catalog, 'trees' several"}},
		{"trees overlapping across files",
			map[string]string{"a.yml": "trees: [{path: /data, tree: m:a}]\n", "b.yml": "trees: [{path: /data/x, tree: m:b}]\n"},
			[]string{"b.yml:1: trees: tree paths cannot be subpaths of each other"}},
		{"files with different keys merge cleanly",
			map[string]string{"a.yml": authFile + minimalTrees, "b.yml": "database: {uri: sqlite://}\n"},
			nil},
		{"problems of both files together",
			map[string]string{"a.yml": "bogus: 1\n" + minimalTrees, "b.yml": "uvicorn: {port: x}\n"},
			[]string{"a.yml:1: bogus: unknown key", "b.yml:1: uvicorn.port: expected an integer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			_, err := Load([]string{filepath.Join(dir, "a.yml"), filepath.Join(dir, "b.yml")}, mapEnv(nil))
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			errs := asErrors(t, err)
			if tt.name == "a key given twice" && !strings.HasSuffix(errs.Problems[0].File, "b.yml") {
				t.Errorf("the second file is the one in error: %v", errs.Problems[0])
			}
			if len(errs.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(errs.Problems), len(tt.want), err)
			}
			for i, w := range tt.want {
				if s := errs.Problems[i].String(); !strings.Contains(s, w) {
					t.Errorf("problem %d: %s; want ...%s...", i, s, w)
				}
			}
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"conf.d/20-trees.yaml":  minimalTrees,
		"conf.d/10-auth.yml":    authFile,
		"conf.d/README.md":      "not: yaml: at all: [",
		"conf.d/sub/other.yml":  "bogus: 1\n",
		"conf.d/30-notes.txt":   "bogus: 1\n",
		"extra/server.yml":      "server: {log_format: json}\n",
		"empty/readme.md":       "",
		"conf.d/40-empty.yml":   "# nothing here yet\n",
		"conf.d/.50-hidden.yml": "uvicorn: {port: 9000}\n",
	})
	c, err := Load([]string{filepath.Join(dir, "conf.d"), filepath.Join(dir, "extra", "server.yml")}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range c.Sources {
		names = append(names, filepath.Base(s))
	}
	// Tiled reads every regular *.yml/*.yaml directly in the directory,
	// hidden ones included; here in name order.
	if want := []string{".50-hidden.yml", "10-auth.yml", "20-trees.yaml", "40-empty.yml", "server.yml"}; !reflect.DeepEqual(names, want) {
		t.Errorf("sources %v, want %v", names, want)
	}
	if c.Uvicorn.Port != 9000 || c.Server.LogFormat != "json" || len(c.Authentication.Providers) != 1 || len(c.Trees) != 1 {
		t.Errorf("merged config %+v", c)
	}

	_, err = Load([]string{filepath.Join(dir, "empty")}, mapEnv(nil))
	if p := asErrors(t, err).Problems; len(p) != 1 || !strings.Contains(p[0].String(), "empty: directory has no *.yml, *.yaml or *.toml files") {
		t.Errorf("empty directory: %v", err)
	}
}

func TestLoadMissingFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := Load([]string{filepath.Join(dir, "nope.yml"), filepath.Join(dir, "nada.yml")}, mapEnv(nil))
	errs := asErrors(t, err)
	if len(errs.Problems) != 2 || !strings.HasSuffix(errs.Problems[0].File, "nope.yml") || !strings.Contains(errs.Problems[0].Msg, "no such file") {
		t.Errorf("got %v", err)
	}
	if _, err := Load(nil, mapEnv(nil)); err == nil || !strings.Contains(err.Error(), "no configuration file given") {
		t.Errorf("no paths: %v", err)
	}
}

func TestDefaultPaths(t *testing.T) {
	if got := DefaultPaths([]string{"a.yml"}, mapEnv(map[string]string{"TILED_CONFIG": "b.yml"})); !reflect.DeepEqual(got, []string{"a.yml"}) {
		t.Error(got)
	}
	if got := DefaultPaths(nil, mapEnv(map[string]string{"TILED_CONFIG": "/etc/tiled"})); !reflect.DeepEqual(got, []string{"/etc/tiled"}) {
		t.Error(got)
	}
	if got := DefaultPaths(nil, mapEnv(nil)); !reflect.DeepEqual(got, []string{"config.yml"}) {
		t.Error(got)
	}
}
