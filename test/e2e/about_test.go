package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkAbout compares GET /api/v1/ (always open) with the captured about
// documents: the same members, the values that do not depend on the
// installation, and required = !allow_anonymous_access.
func checkAbout(t *testing.T, s *server, required bool) {
	tiled := loadJSONCapture(t, "public-about-full.json") // Tiled --public
	single := loadJSONCapture(t, "single-about.json")     // Tiled single-user, formats elided
	wantAuth := tiled["authentication"]
	if required {
		wantAuth = single["authentication"]
	}

	r := s.client(t).get("/api/v1/", nil)
	if !expectStatus(t, r, http.StatusOK) {
		return
	}
	if mt := mediaType(r.Header); mt != "application/json" {
		t.Errorf("Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	got := object(t, r)
	if g, w := sortedKeys(got), sortedKeys(tiled); !slices.Equal(g, w) {
		t.Errorf("about members %v, Tiled's %v", g, w)
	}
	expectAt(t, got, tiled["api_version"], "api_version")
	expectAt(t, got, tiled["library_version"], "library_version")
	expectAt(t, got, wantAuth, "authentication")
	expectAt(t, got, required, "authentication", "required")
	expectAt(t, got, map[string]any{"self": s.base + "/api/v1", "documentation": s.base + "/api/v1/docs"}, "links")
	expectAt(t, got, tiled["meta"], "meta")

	// The formats the Python client relies on (spec section 11).
	for family, want := range map[string][]string{
		"array":     {"application/octet-stream", "application/json", "text/csv"},
		"table":     {"application/vnd.apache.arrow.file", "text/csv", "application/json"},
		"container": {"application/json"},
	} {
		v, _ := at(got, "formats", family)
		list, _ := v.([]any)
		for _, mt := range want {
			if !slices.Contains(list, any(mt)) {
				t.Errorf("formats.%s = %s lacks %q", family, compact(v), mt)
			}
		}
	}
	if v, _ := at(got, "aliases"); !isObject(v) {
		t.Errorf("aliases = %s, want an object", compact(v))
	}
	if v, _ := at(got, "queries"); !isArray(v) {
		t.Errorf("queries = %s, want an array", compact(v))
	}
}

func loadJSONCapture(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeBytes(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not a JSON object", name)
	}
	return m
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }
func isArray(v any) bool  { _, ok := v.([]any); return ok }

// checkProbes: /healthz, /readyz and /version answer 200 without
// credentials, with a small JSON object that names no secret.
func checkProbes(t *testing.T, s *server, secrets ...string) {
	c := s.client(t)
	for _, path := range []string{"/healthz", "/readyz", "/version"} {
		// Probes ignore credentials, even malformed or wrong ones.
		for _, h := range []http.Header{hdr("Authorization", "Basic eDp5"), apikey("wrong")} {
			expectStatus(t, c.get(path, h), http.StatusOK)
		}
		r := c.get(path, nil)
		if !expectStatus(t, r, http.StatusOK) {
			continue
		}
		if mt := mediaType(r.Header); mt != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", path, r.Header.Get("Content-Type"))
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("%s: body is not a JSON object: %s", path, r)
		}
		if len(r.Body) > 512 {
			t.Errorf("%s: body of %d bytes is not a small generic body: %s", path, len(r.Body), r)
		}
		for _, sec := range secrets {
			if strings.Contains(string(r.Body), sec) {
				t.Errorf("%s: body reveals a secret: %s", path, r)
			}
		}
		if path == "/version" {
			for _, want := range []string{buildVersion, buildCommit} {
				if !strings.Contains(string(r.Body), want) {
					t.Errorf("/version does not report %q (linked in by the test build): %s", want, r)
				}
			}
		}
	}
}

// TestVersionCommand: `server version` prints the version and the commit.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, minimalEnv(), "version")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{buildVersion, buildCommit} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout %q does not contain %q", stdout, want)
		}
	}
}
