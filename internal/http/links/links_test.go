package links

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestBase(t *testing.T) {
	tests := []struct {
		name, proto, root string
		tls               bool
		want              string
	}{
		{name: "plain", want: "http://example.org:8000"},
		{name: "tls", tls: true, want: "https://example.org:8000"},
		{name: "behind a TLS proxy", proto: "https", want: "https://example.org:8000"},
		{name: "bogus forwarded proto ignored", proto: "gopher", want: "http://example.org:8000"},
		{name: "root path", root: "/tiled/", want: "http://example.org:8000/tiled"},
		{name: "root path of slash", root: "/", want: "http://example.org:8000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://example.org:8000/api/v1/", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			if tt.root != "" {
				r = r.WithContext(WithRootPath(r.Context(), tt.root))
			}
			if got := Base(r); got != tt.want {
				t.Fatalf("Base = %q, want %q", got, tt.want)
			}
			if got := API(r); got != tt.want+APIPrefix {
				t.Fatalf("API = %q", got)
			}
		})
	}
	if got := Join("http://h/api/v1/", "/metadata/", "a/"); got != "http://h/api/v1/metadata/a" {
		t.Fatalf("Join = %q", got)
	}
}
