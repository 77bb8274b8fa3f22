package forwarded

import (
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(_ testing.TB, list ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if !strings.Contains(s, "/") {
			a := netip.MustParseAddr(s)
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestResolve(t *testing.T) {
	trusted := []string{"10.0.0.0/8", "192.0.2.7", "2001:db8:1::/48"}
	tests := []struct {
		name       string
		header     Header
		peer       string
		tls        bool
		xff, xfp   []string
		fwd        []string
		wantAddr   string
		wantScheme string
	}{
		{name: "direct client, no headers", peer: "203.0.113.5:4000", wantAddr: "203.0.113.5", wantScheme: "http"},
		{name: "direct TLS client", peer: "203.0.113.5:4000", tls: true, wantAddr: "203.0.113.5", wantScheme: "https"},
		{name: "untrusted peer's headers are ignored", peer: "203.0.113.5:4000", xff: []string{"1.1.1.1"}, xfp: []string{"https"},
			wantAddr: "203.0.113.5", wantScheme: "http"},
		{name: "untrusted peer's Forwarded is ignored", header: Forwarded, peer: "203.0.113.5:4000", fwd: []string{"for=1.1.1.1;proto=https"},
			wantAddr: "203.0.113.5", wantScheme: "http"},
		{name: "peer just outside the trusted network", peer: "11.0.0.1:1", xff: []string{"1.1.1.1"}, wantAddr: "11.0.0.1", wantScheme: "http"},
		{name: "trusted single address, its neighbour is not", peer: "192.0.2.8:1", xff: []string{"1.1.1.1"}, wantAddr: "192.0.2.8", wantScheme: "http"},
		{name: "trusted single address", peer: "192.0.2.7:1", xff: []string{"1.1.1.1"}, wantAddr: "1.1.1.1", wantScheme: "http"},
		{name: "trusted proxy", peer: "10.1.2.3:5555", xff: []string{"198.51.100.9"}, xfp: []string{"https"},
			wantAddr: "198.51.100.9", wantScheme: "https"},
		{name: "trusted proxy without a header", peer: "10.1.2.3:5555", wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "client's forged entry on the left is skipped", peer: "10.1.2.3:5555", xff: []string{"6.6.6.6, 198.51.100.9"},
			wantAddr: "198.51.100.9", wantScheme: "http"},
		{name: "two trusted hops", peer: "10.1.2.3:5555", xff: []string{"6.6.6.6, 198.51.100.9, 10.9.9.9"},
			wantAddr: "198.51.100.9", wantScheme: "http"},
		{name: "several header lines", peer: "10.1.2.3:5555", xff: []string{"6.6.6.6", "198.51.100.9, 10.9.9.9"},
			wantAddr: "198.51.100.9", wantScheme: "http"},
		{name: "only trusted hops: the leftmost", peer: "10.1.2.3:5555", xff: []string{"10.0.0.9, 10.0.0.8"}, wantAddr: "10.0.0.9", wantScheme: "http"},
		{name: "garbage hop ends the walk at the last trusted one", peer: "10.1.2.3:5555", xff: []string{"1.1.1.1, nonsense, 10.0.0.8"},
			wantAddr: "10.0.0.8", wantScheme: "http"},
		{name: "empty header value", peer: "10.1.2.3:5555", xff: []string{""}, wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "address with port", peer: "10.1.2.3:5555", xff: []string{"198.51.100.9:1234"}, wantAddr: "198.51.100.9", wantScheme: "http"},
		{name: "IPv6 hop", peer: "[2001:db8:1::5]:443", xff: []string{"2001:db8:2::1"}, wantAddr: "2001:db8:2::1", wantScheme: "http"},
		{name: "bracketed IPv6 hop with port", peer: "10.1.2.3:1", xff: []string{"[2001:db8:2::1]:80"}, wantAddr: "2001:db8:2::1", wantScheme: "http"},
		{name: "IPv4-mapped peer", peer: "[::ffff:10.1.2.3]:1", xff: []string{"198.51.100.9"}, wantAddr: "198.51.100.9", wantScheme: "http"},
		{name: "zoned hop is not an address", peer: "10.1.2.3:1", xff: []string{"fe80::1%eth0"}, wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "XFP aligned with the hops", peer: "10.1.2.3:1", xff: []string{"198.51.100.9, 10.0.0.2"}, xfp: []string{"https, http"},
			wantAddr: "198.51.100.9", wantScheme: "https"},
		{name: "XFP of another length: the nearest value", peer: "10.1.2.3:1", xff: []string{"198.51.100.9, 10.0.0.2"}, xfp: []string{"http, https, https"},
			wantAddr: "198.51.100.9", wantScheme: "https"},
		{name: "XFP nonsense is ignored", peer: "10.1.2.3:1", xff: []string{"198.51.100.9"}, xfp: []string{"gopher"},
			wantAddr: "198.51.100.9", wantScheme: "http"},
		{name: "XFP alone", peer: "10.1.2.3:1", xfp: []string{"https"}, wantAddr: "10.1.2.3", wantScheme: "https"},
		{name: "XFP alone from an untrusted peer", peer: "11.1.2.3:1", xfp: []string{"https"}, wantAddr: "11.1.2.3", wantScheme: "http"},
		{name: "Forwarded is ignored in X-Forwarded-For mode", peer: "10.1.2.3:1", fwd: []string{"for=1.1.1.1;proto=https"},
			wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "X-Forwarded-For is ignored in Forwarded mode", header: Forwarded, peer: "10.1.2.3:1", xff: []string{"1.1.1.1"},
			wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "Forwarded", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{"for=198.51.100.9;proto=https;by=10.1.2.3"},
			wantAddr: "198.51.100.9", wantScheme: "https"},
		{name: "Forwarded, case and quotes", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{`For="[2001:db8:cafe::17]:4711";PROTO=HTTPS`},
			wantAddr: "2001:db8:cafe::17", wantScheme: "https"},
		{name: "Forwarded, forged left element skipped", header: Forwarded, peer: "10.1.2.3:1",
			fwd: []string{"for=6.6.6.6;proto=http, for=198.51.100.9;proto=https"}, wantAddr: "198.51.100.9", wantScheme: "https"},
		{name: "Forwarded, trusted hop then client", header: Forwarded, peer: "10.1.2.3:1",
			fwd: []string{"for=198.51.100.9;proto=https", "for=10.0.0.7;proto=http"}, wantAddr: "198.51.100.9", wantScheme: "https"},
		{name: "Forwarded, obfuscated client", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{"for=_hidden;proto=https"},
			wantAddr: "10.1.2.3", wantScheme: "https"},
		{name: "Forwarded, unknown client", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{"for=unknown"}, wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "Forwarded, proto only", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{"proto=https"}, wantAddr: "10.1.2.3", wantScheme: "https"},
		{name: "Forwarded, duplicate parameter is malformed", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{"for=1.1.1.1;for=2.2.2.2"},
			wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "Forwarded, comma inside quotes", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{`for="1.1.1.1,2.2.2.2"`},
			wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "Forwarded, unterminated quote", header: Forwarded, peer: "10.1.2.3:1", fwd: []string{`for="1.1.1.1`}, wantAddr: "10.1.2.3", wantScheme: "http"},
		{name: "unparseable peer", peer: "@", xff: []string{"1.1.1.1"}, wantAddr: "invalid IP", wantScheme: "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Resolver{Trusted: mustPrefixes(t, trusted...), Header: tt.header}
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.peer
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.xfp {
				req.Header.Add("X-Forwarded-Proto", v)
			}
			for _, v := range tt.fwd {
				req.Header.Add("Forwarded", v)
			}
			c := r.Resolve(req)
			if c.Addr.String() != tt.wantAddr || c.Scheme != tt.wantScheme {
				t.Fatalf("got %s %s, want %s %s", c.Addr, c.Scheme, tt.wantAddr, tt.wantScheme)
			}
		})
	}
}

// With no trusted proxies (the default) no header is ever believed.
func TestResolveTrustsNoneByDefault(t *testing.T) {
	var r Resolver
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	req.Header.Set("X-Forwarded-For", "1.1.1.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=1.1.1.1;proto=https")
	if c := r.Resolve(req); c.String() != "127.0.0.1" || c.Scheme != "http" || c.Proxied {
		t.Fatalf("%+v", c)
	}
}

func TestFromContextDefault(t *testing.T) {
	c := FromContext(t.Context())
	if c.Addr.IsValid() || c.Scheme != "http" || c.String() != "unknown" {
		t.Fatalf("%+v", c)
	}
}

// FuzzParseXForwardedFor: any header values parse without panicking, one
// hop per comma-separated part, and every address found is valid and
// unmapped.
func FuzzParseXForwardedFor(f *testing.F) {
	for _, s := range []string{"", "1.1.1.1", "1.1.1.1, 2.2.2.2", "[::1]:80", "fe80::1%eth0", ",,,", "::ffff:1.2.3.4"} {
		f.Add(s, "https")
	}
	f.Fuzz(func(t *testing.T, xff, xfp string) {
		hops := ParseXForwardedFor([]string{xff}, []string{xfp})
		if len(hops) != strings.Count(xff, ",")+1 {
			t.Fatalf("%q: %d hops", xff, len(hops))
		}
		for _, h := range hops {
			if h.Addr.IsValid() && h.Addr.Is4In6() {
				t.Fatalf("mapped address %s", h.Addr)
			}
			if h.Proto != "" && h.Proto != "http" && h.Proto != "https" {
				t.Fatalf("proto %q", h.Proto)
			}
		}
	})
}

// FuzzResolve: whatever the headers, an untrusted peer is its own client,
// and a trusted peer's client is an address the headers or the connection
// named.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"for=1.1.1.1", `for="[::1]:80";proto=https`, "for=a;for=b", `"`, "for=10.0.0.1, for=2.2.2.2"} {
		f.Add(s, "1.1.1.1, 10.0.0.1", true, true)
	}
	trusted := mustPrefixes(f, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, fwd, xff string, trustedPeer, forwardedMode bool) {
		r := &Resolver{Trusted: trusted}
		if forwardedMode {
			r.Header = Forwarded
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = "203.0.113.1:9"
		if trustedPeer {
			req.RemoteAddr = "10.0.0.2:9"
		}
		req.Header.Set("Forwarded", fwd)
		req.Header.Set("X-Forwarded-For", xff)
		c := r.Resolve(req)
		if c.Scheme != "http" && c.Scheme != "https" {
			t.Fatalf("scheme %q", c.Scheme)
		}
		if !trustedPeer && (c.String() != "203.0.113.1" || c.Proxied) {
			t.Fatalf("untrusted peer resolved to %+v", c)
		}
		if trustedPeer && !c.Addr.IsValid() {
			t.Fatalf("trusted peer resolved to no address")
		}
		hops := ParseXForwardedFor([]string{xff}, nil)
		if forwardedMode {
			hops = ParseForwarded([]string{fwd})
		}
		named := false
		for _, h := range hops {
			named = named || h.Addr == c.Addr
		}
		if c.Proxied && !named {
			t.Fatalf("client %s is named by no hop of %q / %q", c.Addr, xff, fwd)
		}
	})
}

// FuzzParseForwarded: RFC 7239 values of any shape parse without panicking,
// one hop per element.
func FuzzParseForwarded(f *testing.F) {
	for _, s := range []string{"for=1.1.1.1", `for="[2001:db8::1]:4711";proto=https`, `for="\"`, "a=b;c=d, e=f", ";;,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hops := ParseForwarded([]string{s})
		if len(hops) != len(splitOutsideQuotes(s, ',')) {
			t.Fatalf("%q: %d hops", s, len(hops))
		}
	})
}
