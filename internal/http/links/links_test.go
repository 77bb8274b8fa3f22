package links

import (
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/tiledgo/server/internal/http/forwarded"
)

func TestBase(t *testing.T) {
	tests := []struct {
		name, proto, root string
		tls, trusted      bool
		want              string
	}{
		{name: "plain", want: "http://example.org:8000"},
		{name: "tls", tls: true, want: "https://example.org:8000"},
		{name: "behind a trusted TLS proxy", proto: "https", trusted: true, want: "https://example.org:8000"},
		{name: "X-Forwarded-Proto from an untrusted peer is ignored", proto: "https", want: "http://example.org:8000"},
		{name: "bogus forwarded proto ignored", proto: "gopher", trusted: true, want: "http://example.org:8000"},
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
			// What the middleware does: resolve the client once, trusting
			// the peer (192.0.2.1, httptest's) only when the case says so.
			res := &forwarded.Resolver{}
			if tt.trusted {
				res.Trusted = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
			}
			r = r.WithContext(forwarded.WithClient(r.Context(), res.Resolve(r)))
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

// A request that did not pass the middleware takes its scheme from the
// connection only, never from a header.
func TestBaseWithoutMiddleware(t *testing.T) {
	r := httptest.NewRequest("GET", "http://example.org/api/v1/", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := Base(r); got != "http://example.org" {
		t.Fatalf("Base = %q", got)
	}
	r.TLS = &tls.ConnectionState{}
	if got := Base(r); got != "https://example.org" {
		t.Fatalf("Base over TLS = %q", got)
	}
}
