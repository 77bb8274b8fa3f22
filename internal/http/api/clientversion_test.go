package api

import (
	"net/http/httptest"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in, norm string
		ok       bool
	}{
		{"0.1.0a104", "0.1.0a104", true},
		{"0.1.0-alpha.104", "0.1.0a104", true},
		{"v0.2.16", "0.2.16", true},
		{"0.1.0rc1", "0.1.0rc1", true},
		{"0.1.0c1", "0.1.0rc1", true},
		{"1.0.post2.dev3+local.7", "1.0.post2.dev3+local.7", true},
		{"1.0-1", "1.0.post1", true},
		{"2!1.0", "2!1.0", true},
		{"not a version", "", false},
		{"1.0.0.0.0x", "", false},
		{"99999999999999999999999", "", false}, // past uint64: refused, not wrapped
	} {
		v, ok := parseVersion(tc.in)
		if ok != tc.ok || (ok && v.String() != tc.norm) {
			t.Errorf("parseVersion(%q) = %q %v, want %q %v", tc.in, v, ok, tc.norm, tc.ok)
		}
	}
}

// TestVersionOrder checks packaging's ordering around the minimum version.
func TestVersionOrder(t *testing.T) {
	ordered := []string{"0.1.0.dev1", "0.1.0a1", "0.1.0a100", "0.1.0a104", "0.1.0a104.post1", "0.1.0b1", "0.1.0rc1", "0.1.0", "0.1.0.post1", "0.1.1", "0.2.16", "1!0.0.1"}
	for i := range ordered {
		for j := range ordered {
			a, b := mustVersion(ordered[i]), mustVersion(ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.compare(b); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	if mustVersion("1.0").compare(mustVersion("1.0.0")) != 0 {
		t.Error("trailing zeros must not matter")
	}
}

func TestPythonClientVersion(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("User-Agent", "python-tiled/0.1.0a100")
	if v, ok := pythonClientVersion(r); !ok || v.compare(minimumClientVersion) >= 0 {
		t.Errorf("0.1.0a100 must be older than the minimum: %v %v", v, ok)
	}
	r.Header.Set("User-Agent", "Mozilla/5.0 python-tiled/0.1.0a1")
	if _, ok := pythonClientVersion(r); ok {
		t.Error("only a User-Agent that starts with python-tiled/ is a Python client")
	}
}

// FuzzParseVersion: any User-Agent version parses or is ignored, never a
// panic, and what parses prints back to something that parses the same.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"0.1.0a104", "1.0.post", "1.0-dev", "v1!2.3rc4.post5.dev6+abc.def", "", "1..0", "1.0+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseVersion(s)
		if !ok {
			return
		}
		again, ok := parseVersion(v.String())
		if !ok || again.compare(v) != 0 || again.String() != v.String() {
			t.Fatalf("%q -> %q does not round-trip", s, v)
		}
	})
}
