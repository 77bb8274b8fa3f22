// Package forwarded decides who the client of a request is: its address and
// the scheme it used. Behind a reverse proxy the connection comes from the
// proxy, and the client is named in a header the proxy adds; but any client
// can send such a header too, so it is believed only when the direct peer is
// a configured trusted proxy. The answer is resolved once per request by
// middleware and read from the request's context by everything that needs
// it (links, cookies' Secure flag, logs, login limits, the audit trail).
package forwarded

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Header names which header the trusted proxies set.
type Header string

// The headers a proxy may use to name the client.
const (
	// XForwardedFor: X-Forwarded-For (and X-Forwarded-Proto for the
	// scheme), what nginx, HAProxy, Envoy, Traefik, Caddy and the cloud
	// load balancers send.
	XForwardedFor Header = "x-forwarded-for"
	// Forwarded: RFC 7239's Forwarded header (for= and proto=).
	Forwarded Header = "forwarded"
)

// Client is who sent a request, as far as this server can tell.
type Client struct {
	// Addr is the client's IP address; invalid when it cannot be known
	// (a peer that is not an IP socket).
	Addr netip.Addr
	// Scheme is "https" or "http": what the client used to reach the
	// first trusted proxy, or this server.
	Scheme string
	// Proxied is true when Addr came from a trusted proxy's header.
	Proxied bool
}

// String is the address for logs and counters ("unknown" when invalid).
func (c Client) String() string {
	if !c.Addr.IsValid() {
		return "unknown"
	}
	return c.Addr.String()
}

// Resolver resolves clients. The zero value trusts no proxy.
type Resolver struct {
	// Trusted are the networks of the proxies whose headers are believed.
	Trusted []netip.Prefix
	// Header is the header they set; XForwardedFor when empty. The other
	// one is ignored, because a proxy that sets one usually passes a
	// client's forged copy of the other through untouched.
	Header Header
}

// trusted reports whether a is a trusted proxy.
func (r *Resolver) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range r.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve says who sent req. The connection's peer is the client unless it
// is a trusted proxy; then the proxy's header is walked from the right (the
// hop nearest this server), skipping trusted proxies, and the first hop
// that is not one is the client. A header that names only trusted hops
// yields its leftmost hop; a malformed or obfuscated hop ends the walk at
// the last trusted hop, the last address known to be true.
func (r *Resolver) Resolve(req *http.Request) Client {
	c := Client{Addr: peerAddr(req.RemoteAddr), Scheme: "http"}
	if req.TLS != nil {
		c.Scheme = "https"
	}
	if !r.trusted(c.Addr) {
		return c
	}
	var hops []hop
	if r.Header == Forwarded {
		hops = ParseForwarded(req.Header.Values("Forwarded"))
	} else {
		xfp := req.Header.Values("X-Forwarded-Proto")
		hops = ParseXForwardedFor(req.Header.Values("X-Forwarded-For"), xfp)
		if len(hops) == 0 && len(xfp) > 0 {
			// A TLS terminator that names only the scheme.
			ps := strings.Split(xfp[len(xfp)-1], ",")
			if p := scheme(ps[len(ps)-1]); p != "" {
				c.Scheme = p
			}
		}
	}
	// hops[i] was written by a proxy this walk has found trusted (the peer
	// for the last one, hops[i+1]'s address for the others), so its proto
	// is believed even when its address is missing.
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		if h.Proto != "" {
			c.Scheme = h.Proto
		}
		if !h.Addr.IsValid() {
			break
		}
		c.Addr, c.Proxied = h.Addr, true
		if !r.trusted(h.Addr) {
			break
		}
	}
	return c
}

// hop is one proxy hop named by a header: the address that connected to
// the proxy that wrote it, and the scheme of that connection ("" unknown).
type hop struct {
	Addr  netip.Addr
	Proto string
}

// peerAddr parses a RemoteAddr ("ip:port", or "[v6]:port").
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// parseNode reads an address as a proxy writes it: "1.2.3.4", "1.2.3.4:80",
// "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:443". A zone, an
// obfuscated identifier ("_hidden") or "unknown" is not an address.
func parseNode(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsRune(s, '%') {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	s = strings.TrimPrefix(s, "[")
	s = strings.TrimSuffix(s, "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// scheme normalises a proto value: "http" or "https", else "".
func scheme(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "http":
		return "http"
	case "https":
		return "https"
	}
	return ""
}

// ParseXForwardedFor reads the hops of X-Forwarded-For (every line, comma
// separated, left to right). X-Forwarded-Proto is matched to them hop by
// hop when it names as many; otherwise its rightmost valid value (what the
// nearest proxy set) applies to the rightmost hop only, which is the client
// hop whenever a single proxy sits in front of this server.
func ParseXForwardedFor(xff, xfp []string) []hop {
	var hops []hop
	for _, line := range xff {
		for _, part := range strings.Split(line, ",") {
			hops = append(hops, hop{Addr: parseNode(part)})
		}
	}
	var protos []string
	for _, line := range xfp {
		protos = append(protos, strings.Split(line, ",")...)
	}
	switch {
	case len(hops) == 0:
	case len(protos) == len(hops):
		for i := range hops {
			hops[i].Proto = scheme(protos[i])
		}
	case len(protos) > 0:
		hops[len(hops)-1].Proto = scheme(protos[len(protos)-1])
	}
	return hops
}

// ParseForwarded reads the hops of RFC 7239 Forwarded headers: elements
// separated by commas, pairs by semicolons, values tokens or quoted
// strings. An element without a for= pair, or one that cannot be parsed,
// is a hop with no address (which ends a walk).
func ParseForwarded(lines []string) []hop {
	var hops []hop
	for _, line := range lines {
		for _, elem := range splitOutsideQuotes(line, ',') {
			var h hop
			seen := map[string]bool{}
			ok := true
			for _, pair := range splitOutsideQuotes(elem, ';') {
				pair = strings.TrimSpace(pair)
				if pair == "" {
					continue
				}
				name, value, found := strings.Cut(pair, "=")
				name = strings.ToLower(strings.TrimSpace(name))
				if !found || name == "" || seen[name] {
					ok = false // RFC 7239 section 4: each parameter at most once
					break
				}
				seen[name] = true
				v, valid := unquote(strings.TrimSpace(value))
				if !valid {
					ok = false
					break
				}
				switch name {
				case "for":
					h.Addr = parseNode(v)
				case "proto":
					h.Proto = scheme(v)
				}
			}
			if !ok {
				h = hop{}
			}
			hops = append(hops, h)
		}
	}
	return hops
}

// splitOutsideQuotes splits s at sep where sep is not inside a quoted string.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	start, quoted, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote reads a token or an RFC 7230 quoted-string.
func unquote(v string) (string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return v, !strings.ContainsAny(v, "\" \t")
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", false
	}
	var b strings.Builder
	inner := v[1 : len(v)-1]
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c == '\\' {
			i++
			if i == len(inner) {
				return "", false
			}
			c = inner[i]
		} else if c == '"' {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

type ctxKey struct{}

// WithClient returns ctx carrying c.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the client the middleware resolved. Without one (a
// request that did not pass the middleware, such as in a unit test), the
// client is unknown and its scheme http.
func FromContext(ctx context.Context) Client {
	if c, ok := Lookup(ctx); ok {
		return c
	}
	return Client{Scheme: "http"}
}

// Lookup returns the client the middleware resolved, if it ran.
func Lookup(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(ctxKey{}).(Client)
	return c, ok
}

// Scheme is the scheme the client used for r: the resolved one, or, for a
// request that did not pass the middleware, that of the connection (never
// a header: only the middleware knows which peers to believe).
func Scheme(r *http.Request) string {
	if c, ok := Lookup(r.Context()); ok {
		return c.Scheme
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
