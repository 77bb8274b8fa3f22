// Package docs serves the API's description: an OpenAPI 3 document built
// from the routes actually registered (each described once, in
// Operations), at /openapi.json and /api/v1/openapi.json, and Swagger UI at
// /docs, its assets embedded in the binary from the npm package
// swagger-ui-dist (no CDN). With [swagger.oauth2] configured, Swagger UI's
// "Authorize" button runs the authorization code flow with PKCE at that
// issuer as a public client, and "Try it out" sends the access token.
package docs

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/links"
)

//go:embed swaggerui
var assets embed.FS

// OAuth2 is the Swagger UI sign-in ([swagger.oauth2]).
type OAuth2 struct {
	Issuer   string
	ClientID string
	Scopes   []string
}

// Surface serves the document and the UI.
type Surface struct {
	Title   string
	Version string
	// OAuth2 adds the OpenID Connect security scheme and the sign-in; nil
	// leaves them out.
	OAuth2 *OAuth2
}

// Register adds the routes. It is given the root group: the document and
// the UI live both at the root and under the API prefix, as Tiled's do.
func (s *Surface) Register(g *echo.Group) {
	g.GET("/openapi.json", s.document)
	g.GET(links.APIPrefix+"/openapi.json", s.document)
	g.GET("/docs", s.index)
	g.GET(links.APIPrefix+"/docs", s.index)
	g.GET("/docs/*", s.asset)
}

func (s *Surface) document(c echo.Context) error {
	doc := Build(c.Echo().Routes(), Options{
		Title: s.Title, Version: s.Version, ServerURL: links.Base(c.Request()), OAuth2: s.OAuth2,
	})
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, b)
}

var indexPage = template.Must(template.New("swagger").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}: API</title>
<link rel="stylesheet" href="{{.Base}}/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="{{.Base}}/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{{.Base}}/docs/swagger-ui-bundle.js"></script>
<script src="{{.Base}}/docs/swagger-initializer.js"></script>
</body>
</html>
`))

func (s *Surface) index(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().Header().Set("Cache-Control", "no-cache")
	c.Response().WriteHeader(http.StatusOK)
	return indexPage.Execute(c.Response(), map[string]string{"Title": s.Title, "Base": links.Base(c.Request())})
}

// initializer configures Swagger UI. It is a script of its own, not inline
// in the page, so the page works under a script-src 'self' policy.
func (s *Surface) initializer(c echo.Context) error {
	base := links.Base(c.Request())
	cfg := map[string]any{
		"url": base + "/openapi.json", "dom_id": "#swagger-ui", "deepLinking": true,
		"oauth2RedirectUrl":    base + "/docs/oauth2-redirect.html",
		"persistAuthorization": false, "tryItOutEnabled": false,
	}
	js := "window.ui = SwaggerUIBundle(" + mustJSON(cfg) + ");\n"
	if s.OAuth2 != nil {
		js += "window.ui.initOAuth(" + mustJSON(map[string]any{
			"clientId": s.OAuth2.ClientID, "scopes": strings.Join(s.OAuth2.Scopes, " "),
			"usePkceWithAuthorizationCodeGrant": true,
		}) + ");\n"
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", []byte(js))
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// asset serves the embedded swagger-ui-dist files, and the initializer.
func (s *Surface) asset(c echo.Context) error {
	name := c.Param("*")
	if name == "swagger-initializer.js" {
		return s.initializer(c)
	}
	if strings.Contains(name, "/") || name == "" || strings.HasPrefix(name, ".") {
		return echo.ErrNotFound
	}
	b, err := fs.ReadFile(assets, "swaggerui/"+name)
	if err != nil {
		return echo.ErrNotFound
	}
	ctype := map[string]string{
		".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
		".html": "text/html; charset=utf-8", ".png": "image/png",
	}[name[strings.LastIndex(name, "."):]]
	if ctype == "" {
		ctype = "text/plain; charset=utf-8"
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return c.Blob(http.StatusOK, ctype, b)
}
