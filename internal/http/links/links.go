// Package links builds the absolute URLs that Tiled puts in its responses
// ("links": {"self": ...}) and headers (X-Tiled-Root), from the request.
package links

import (
	"context"
	"net/http"
	"strings"

	"github.com/tiledgo/server/internal/http/forwarded"
)

// APIPrefix is where the Tiled API is mounted.
const APIPrefix = "/api/v1"

type rootPathKey struct{}

// WithRootPath records the path prefix a proxy strips before requests reach
// this server (uvicorn's root_path), so that links include it.
func WithRootPath(ctx context.Context, prefix string) context.Context {
	return context.WithValue(ctx, rootPathKey{}, "/"+strings.Trim(prefix, "/"))
}

// Base returns scheme://host[/root_path] of the request as the client
// addressed it. The scheme is the one the client used, as resolved by the
// forwarded middleware: a server behind a TLS-terminating load balancer
// that is among server.trusted_proxies hands out https links, and nobody
// else can make it do so with a header. The Host header is used as given.
func Base(r *http.Request) string {
	scheme := forwarded.Scheme(r)
	root, _ := r.Context().Value(rootPathKey{}).(string)
	if root == "/" {
		root = ""
	}
	return scheme + "://" + r.Host + root
}

// API returns the absolute URL of the API root, without a trailing slash.
func API(r *http.Request) string { return Base(r) + APIPrefix }

// Join appends path segments to base with single slashes.
func Join(base string, parts ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(base, "/"))
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(strings.Trim(p, "/"))
	}
	return b.String()
}
