package api

import (
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/links"
)

// landingPage is the page at GET /, open in every mode (seed 000: "users
// must log in to access anything other than the root GET / ..."). It uses
// no external assets, so it renders offline and under a strict CSP.
var landingPage = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tiled</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
pre{background:#f4f4f4;padding:1rem;overflow-x:auto}</style></head>
<body>
<h1>Tiled</h1>
<p>This server speaks the Tiled HTTP API.</p>
<h2>Explore from Python</h2>
<pre><code>$ pip install "tiled[client]"
$ python
&gt;&gt;&gt; from tiled.client import from_uri
&gt;&gt;&gt; client = from_uri("{{.Base}}")</code></pre>
<h2>Explore the API</h2>
<p>The API root is <a href="{{.API}}/">{{.API}}/</a>.</p>
</body></html>
`))

func (s *Server) landing(c echo.Context) error {
	r := c.Request()
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	return landingPage.Execute(c.Response(), struct{ Base, API string }{links.Base(r), links.API(r)})
}

func apiBase(c echo.Context) string { return links.API(c.Request()) }
