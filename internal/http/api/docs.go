package api

import (
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"
)

// docsPage lists every route the server answers, from the router itself, so
// it cannot drift from the code. (Interactive OpenAPI docs are a separate
// surface; this page is what GET /docs promises meanwhile: where things are.)
var docsPage = template.Must(template.New("docs").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Tiled API routes</title>
<style>body{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td{padding:.2rem .8rem;border-bottom:1px solid #ddd;font-family:monospace}</style></head>
<body><h1>Tiled API routes</h1>
<p>Authentication: <code>Authorization: Bearer ACCESS_TOKEN</code>, <code>Authorization: Apikey KEY</code>
or <code>?api_key=KEY</code>. The API root <a href="{{.API}}/">{{.API}}/</a> describes the providers.</p>
<table>{{range .Routes}}<tr><td>{{.Method}}</td><td>{{.Path}}</td></tr>{{end}}</table>
</body></html>
`))

func (s *Server) docs(c echo.Context) error {
	type route struct{ Method, Path string }
	seen := map[route]bool{}
	var routes []route
	for _, r := range s.echo.Routes() {
		rt := route{r.Method, r.Path}
		if strings.HasPrefix(r.Method, "echo_route_") || seen[rt] || r.Method == http.MethodHead {
			continue
		}
		seen[rt] = true
		routes = append(routes, rt)
	}
	sort.Slice(routes, func(i, j int) bool {
		if routes[i].Path != routes[j].Path {
			return routes[i].Path < routes[j].Path
		}
		return routes[i].Method < routes[j].Method
	})
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	return docsPage.Execute(c.Response(), map[string]any{"API": apiBase(c), "Routes": routes})
}
