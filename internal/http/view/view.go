// Package view renders the server's HTML pages: the templates and assets
// embedded in the binary, the security headers every page carries, and the
// CSRF token its forms post back. The pages use no script framework and
// nothing from another origin, so they render offline and under a CSP
// that allows no inline script or style.
package view

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/links"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// AssetsPrefix is where the stylesheet and the one script are served.
const AssetsPrefix = "/assets"

// ContentSecurityPolicy is every page's policy. Styles and the script come
// only from this origin's /assets; forms post only here; nothing may frame
// a page (clickjacking a Revoke button) and no base tag may move the links.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Renderer holds the parsed templates. It is safe for concurrent use.
type Renderer struct {
	t *template.Template
	// version tags asset URLs, so a new binary's stylesheet is never an old
	// cached one.
	version string
}

// New parses the embedded templates.
func New(version string) (*Renderer, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"when":  when,
		"join":  strings.Join,
		"short": func(s string) string { return s[:min(8, len(s))] },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse page templates: %w", err)
	}
	if version == "" {
		version = "dev"
	}
	return &Renderer{t: t, version: version}, nil
}

// MustNew is New for callers whose templates are known to parse (the
// embedded ones, which a test parses).
func MustNew(version string) *Renderer {
	r, err := New(version)
	if err != nil {
		panic(err)
	}
	return r
}

// Page is what every template receives: Data is the page's own.
type Page struct {
	Title string
	// Base is the path of the server's root as the browser sees it
	// (root_path, else empty); every link is made from it. Links carry no
	// scheme or host, so a page names no origin, not even its own.
	Base string
	// Assets is the versioned prefix of the stylesheet and script.
	Assets string
	// CSRF is the token each form posts back in its "csrf" field.
	CSRF string
	// Nav says who is signed in, for the header; nil hides the menu.
	Nav *Nav
	// Flash is a one-line result of the last action, Error a problem.
	Flash, Error string
	Data         any
}

// Nav is the header of a signed-in page.
type Nav struct {
	Name  string
	Admin bool
	// SignOut is false where there is nothing to end (anonymous).
	SignOut bool
}

// Render writes the template name with the page headers. The body is
// rendered to a buffer first, so a template error is a clean 500 rather
// than half a page.
func (r *Renderer) Render(c echo.Context, status int, name string, p Page) error {
	req := c.Request()
	p.Base = RootPath(req)
	p.Assets = p.Base + AssetsPrefix + "/" + r.version
	if p.CSRF == "" {
		p.CSRF = CSRFToken(c)
	}
	var b bytes.Buffer
	if err := r.t.ExecuteTemplate(&b, name, p); err != nil {
		return fmt.Errorf("render %s page: %w", name, err)
	}
	SetHeaders(c.Response().Header())
	return c.HTMLBlob(status, b.Bytes())
}

// RootPath is the path prefix of the server's root as the browser sees it
// ("" or "/prefix").
func RootPath(r *http.Request) string {
	u, err := url.Parse(links.Base(r))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// SetHeaders sets the headers every page carries. Pages show session ids,
// key prefixes and one-time secrets: never cached, never framed, never
// leaked in a Referer.
func SetHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// Assets serves the embedded stylesheet and script under
// /assets/{version}/: the version makes them immutable, so they are cached
// for a year.
func (r *Renderer) Assets(c echo.Context) error {
	rest := strings.TrimPrefix(c.Param("*"), "/")
	_, file, ok := strings.Cut(rest, "/")
	if !ok || file == "" || strings.Contains(file, "..") {
		return echo.ErrNotFound
	}
	b, err := fs.ReadFile(assetFS, path.Join("assets", file))
	if err != nil {
		return echo.ErrNotFound
	}
	ct := "application/octet-stream"
	switch path.Ext(file) {
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, ct, b)
}

// when formats a time for a person: UTC, to the minute, or a dash.
func when(v any) string {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	return "—"
}

// Notice is the data of the "notice" page: one message and what to do next.
type Notice struct {
	Heading, Message string
	Next             *Link
}

// Link is a labelled link.
type Link struct{ URL, Label string }
