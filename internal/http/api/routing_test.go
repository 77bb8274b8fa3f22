package api

import "testing"

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"/api/v1/metadata/*", "/api/v1/metadata/", true},
		{"/api/v1/metadata/*", "/api/v1/metadata/a/b", true},
		{"/api/v1/metadata/*", "/api/v1/metadata", false},
		{"/api/v1/", "/api/v1/", true},
		{"/api/v1/", "/api/v1", false},
		{"/api/v1/auth/principal/:uuid", "/api/v1/auth/principal/abc", true},
		{"/api/v1/auth/principal/:uuid", "/api/v1/auth/principal/", false},
		{"/api/v1/auth/principal/:uuid/apikey", "/api/v1/auth/principal/abc/apikey", true},
		{"/api/v1/auth/principal/:uuid/apikey", "/api/v1/auth/principal/abc", false},
		{"/healthz", "/healthz/", false},
	} {
		if got := matchPattern(tc.pattern, tc.path); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("/api/v1/auth/principal/:uuid/apikey", "/api/v1/auth/principal/x/apikey")
	f.Add("/a/*", "/a/")
	f.Fuzz(func(t *testing.T, pattern, path string) {
		_ = matchPattern(pattern, path) // terminates without panicking
	})
}
