package api

import (
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
)

// methodOrder is the order methods are listed in an Allow header.
var methodOrder = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// routeTable answers, for a path, which methods have a route, from the
// router's own list so that it cannot drift from the routes.
type routeTable struct {
	once   sync.Once
	routes []*echo.Route
	e      *echo.Echo
}

func (rt *routeTable) methods(path string) []string {
	rt.once.Do(func() {
		for _, r := range rt.e.Routes() {
			if !strings.HasPrefix(r.Method, "echo_route_") {
				rt.routes = append(rt.routes, r)
			}
		}
	})
	have := map[string]bool{}
	for _, r := range rt.routes {
		if matchPattern(r.Path, path) {
			have[r.Method] = true
		}
	}
	var out []string
	for _, m := range methodOrder {
		if have[m] {
			out = append(out, m)
		}
	}
	return out
}

// matchPattern matches a path against an Echo route pattern: ":name"
// takes one segment, a final "*" the rest of the path (possibly empty).
func matchPattern(pattern, path string) bool {
	for {
		if strings.HasPrefix(pattern, "*") {
			return true
		}
		if pattern == "" || path == "" {
			return pattern == path
		}
		switch pattern[0] {
		case ':':
			pEnd := strings.IndexByte(pattern, '/')
			sEnd := strings.IndexByte(path, '/')
			if pEnd < 0 {
				return sEnd < 0 && path != ""
			}
			if sEnd <= 0 {
				return false
			}
			pattern, path = pattern[pEnd:], path[sEnd:]
		default:
			if pattern[0] != path[0] {
				return false
			}
			pattern, path = pattern[1:], path[1:]
		}
	}
}

// routeNotFound answers a request no route took, as Starlette's router
// does for Tiled: 405 with Allow when the path has routes for other
// methods; a 307 to the same URL with or without the trailing slash when
// that has a route (so /api/v1/metadata leads to /api/v1/metadata/);
// otherwise 404. The error handler calls it for every router miss, which
// also covers the catch-alls that Echo adds for groups with middleware
// (they would otherwise turn every wrong method into a 404).
func (s *Server) routeNotFound(c echo.Context) error {
	r := c.Request()
	path := r.URL.Path
	if allowed := s.table.methods(path); len(allowed) > 0 {
		allow := strings.Join(allowed, ", ")
		if r.Method == http.MethodOptions {
			c.Response().Header().Set(echo.HeaderAllow, "OPTIONS, "+allow)
			return c.NoContent(http.StatusNoContent)
		}
		c.Response().Header().Set(echo.HeaderAllow, allow)
		return httperr.New(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	if path != "/" {
		other := path + "/"
		if strings.HasSuffix(path, "/") {
			other = strings.TrimRight(path, "/")
		}
		if other != "" && len(s.table.methods(other)) > 0 {
			target := links.Base(r) + other
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			return c.Redirect(http.StatusTemporaryRedirect, target)
		}
	}
	return httperr.NotFound("Not Found")
}
