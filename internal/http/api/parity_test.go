package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/version"
)

// guardedSurface registers its routes in a group with middleware, as
// cmd/server does for surfaces that need the session database; Echo then
// adds catch-alls that must not hide 405s.
type guardedSurface struct{}

func (guardedSurface) Register(g *echo.Group) {
	sub := g.Group("", func(next echo.HandlerFunc) echo.HandlerFunc { return next })
	sub.POST("/auth/session/refresh", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	sub.GET("/big/*", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "text/csv; charset=utf-8", bytes.Repeat([]byte("1.0,2.0,3.0\n"), 100))
	})
	sub.GET("/boom", func(echo.Context) error { panic("boom") })
}

func TestRoutingAndCompression(t *testing.T) {
	s := New(Deps{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Build:    version.Info{Version: "test"},
		Resolver: &authn.Resolver{SingleUserKey: "k3y"},
		Surfaces: []Registrar{guardedSurface{}},
	})
	rec := do(t, s, httptest.NewRequest(http.MethodGet, "/api/v1/auth/session/refresh", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "POST" || detail(t, rec) != "Method Not Allowed" {
		t.Errorf("wrong method in a guarded group: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = do(t, s, httptest.NewRequest(http.MethodGet, "/api/v1/big?x=1", nil))
	if rec.Code != 307 || rec.Header().Get("Location") != "http://example.com/api/v1/big/?x=1" {
		t.Errorf("slash redirect: %d %v", rec.Code, rec.Header())
	}
	rec = do(t, s, httptest.NewRequest(http.MethodGet, "/api/v1/nothing/here", nil))
	if rec.Code != 404 || detail(t, rec) != "Not Found" {
		t.Errorf("404: %d %s", rec.Code, rec.Body)
	}

	req := httptest.NewRequest(http.MethodGet, "/api/v1/big/x", nil)
	req.Header.Set("Accept-Encoding", "br;q=1.0, gzip;q=0.5")
	rec = do(t, s, req)
	zr, err := gzip.NewReader(rec.Body)
	if err != nil || rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip: %v %v", err, rec.Header())
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, bytes.Repeat([]byte("1.0,2.0,3.0\n"), 100)) {
		t.Errorf("gunzipped %d bytes", len(plain))
	}
	// The about document is small: sent as it is.
	req = httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	if rec = do(t, s, req); rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != `{"status":"ready"}` {
		t.Errorf("healthz: %v %q", rec.Header(), rec.Body)
	}
	// A panic under compression still reaches the client as a 500.
	req = httptest.NewRequest(http.MethodGet, "/api/v1/boom", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	if rec = do(t, s, req); rec.Code != 500 || !strings.Contains(rec.Body.String(), "Internal server error") {
		t.Errorf("panic: %d %q", rec.Code, rec.Body)
	}
}
