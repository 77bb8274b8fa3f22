package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/storeerr"
	"github.com/tiledgo/server/internal/version"
)

// surface is a test surface whose routes fail in chosen ways.
type surface struct{}

func (surface) Register(g *echo.Group) {
	g.GET("/fail/:kind", func(c echo.Context) error {
		switch c.Param("kind") {
		case "unavailable":
			return fmt.Errorf("read: %w", storeerr.ErrUnavailable)
		case "deadline":
			return fmt.Errorf("query: %w", context.DeadlineExceeded)
		case "conflict":
			return storeerr.ErrConflict
		case "teapot":
			return httperr.New(http.StatusTeapot, map[string]any{"error": "short and stout"}).WithHeader("X-Extra", "1")
		case "panic":
			panic("boom")
		default:
			return errors.New("something internal with a secret inside")
		}
	})
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		g.Add(m, "/change", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	}
	g.GET("/needs-read", func(c echo.Context) error {
		if err := authn.RequireScopes(c.Request(), identity.ScopeReadMetadata); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
}

func newServer(t *testing.T, ready func(context.Context) error) *Server {
	t.Helper()
	return New(Deps{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Build:    version.Info{Version: "test", Commit: "abc"},
		Resolver: &authn.Resolver{SingleUserKey: "k3y"},
		Surfaces: []Registrar{surface{}},
		Ready:    ready,
	})
}

func do(t *testing.T, s *Server, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

func detail(t *testing.T, rec *httptest.ResponseRecorder) any {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
	}
	return body["detail"]
}

func TestErrorMapping(t *testing.T) {
	s := newServer(t, nil)
	tests := []struct {
		path       string
		method     string
		status     int
		detail     string
		retryAfter bool
	}{
		{"/api/v1/fail/unavailable", "GET", 503, "The service is temporarily unavailable. Please retry.", true},
		{"/api/v1/fail/deadline", "GET", 503, "The service is temporarily unavailable. Please retry.", true},
		{"/api/v1/fail/conflict", "GET", 409, "Conflict", false},
		{"/api/v1/fail/other", "GET", 500, "Internal server error", false},
		{"/api/v1/fail/panic", "GET", 500, "Internal server error", false},
		{"/api/v1/no/such/route", "GET", 404, "Not Found", false},
		{"/api/v1/fail/x", "DELETE", 405, "Method Not Allowed", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := do(t, s, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.status, rec.Body)
			}
			if got := detail(t, rec); got != tt.detail {
				t.Fatalf("detail %q, want %q", got, tt.detail)
			}
			if (rec.Header().Get("Retry-After") != "") != tt.retryAfter {
				t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
			}
			if strings.Contains(rec.Body.String(), "secret") {
				t.Fatal("internal error text reached the client")
			}
		})
	}
	rec := do(t, s, httptest.NewRequest("GET", "/api/v1/fail/teapot", nil))
	if rec.Code != http.StatusTeapot || rec.Header().Get("X-Extra") != "1" {
		t.Fatalf("teapot: %d %v", rec.Code, rec.Header())
	}
	if d, ok := detail(t, rec).(map[string]any); !ok || d["error"] != "short and stout" {
		t.Fatalf("structured detail lost: %s", rec.Body)
	}
}

func TestCSRF(t *testing.T) {
	s := newServer(t, nil)
	send := func(method string, cookies map[string]string, header string, query string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/api/v1/change"+query, nil)
		for k, v := range cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		if header != "" {
			req.Header.Set("X-Csrf", header)
		}
		return do(t, s, req)
	}
	type csrfCase struct {
		name    string
		method  string
		cookies map[string]string
		header  string
		query   string
		status  int
		detail  string
	}
	var tests []csrfCase
	// Every unsafe method is checked alike; a safe one never is.
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		tests = append(tests,
			csrfCase{m + ": no api-key cookie: not cookie-authenticated, no check", m, nil, "", "", 204, ""},
			csrfCase{m + ": api-key cookie, no csrf cookie", m, map[string]string{"tiled_api_key": "k3y"}, "t", "", 403, "Expected tiled_csrf_token cookie"},
			csrfCase{m + ": api-key cookie, no token", m, map[string]string{"tiled_api_key": "k3y", "tiled_csrf": "t"}, "", "", 403, "Expected csrf query parameter or x-csrf header"},
			csrfCase{m + ": token mismatch", m, map[string]string{"tiled_api_key": "k3y", "tiled_csrf": "t"}, "u", "", 403, "Double-submit CSRF tokens do not match"},
			csrfCase{m + ": header matches", m, map[string]string{"tiled_api_key": "k3y", "tiled_csrf": "t"}, "t", "", 204, ""},
			csrfCase{m + ": query matches", m, map[string]string{"tiled_api_key": "k3y", "tiled_csrf": "t"}, "", "?csrf=t", 204, ""},
		)
	}
	tests = append(tests, csrfCase{"GET: api-key cookie, no token: safe, no check", http.MethodGet,
		map[string]string{"tiled_api_key": "k3y", "tiled_csrf": "t"}, "", "", 204, ""})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := send(tt.method, tt.cookies, tt.header, tt.query)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.detail != "" && detail(t, rec) != tt.detail {
				t.Fatalf("detail %v", detail(t, rec))
			}
		})
	}
	// Every response hands a client without the cookie a fresh one.
	rec := do(t, s, httptest.NewRequest("GET", "/api/v1/", nil))
	var found bool
	for _, c := range rec.Result().Cookies() {
		if c.Name == "tiled_csrf" && c.HttpOnly && c.SameSite == http.SameSiteLaxMode && len(c.Value) >= 40 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no tiled_csrf cookie set: %v", rec.Header()["Set-Cookie"])
	}
}

func TestProbes(t *testing.T) {
	var fail error
	s := newServer(t, func(context.Context) error { return fail })
	for _, p := range []string{"/healthz", "/readyz", "/version"} {
		if rec := do(t, s, httptest.NewRequest("GET", p, nil)); rec.Code != 200 {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
	fail = errors.New("database password wrong: hunter2")
	rec := do(t, s, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || strings.Contains(rec.Body.String(), "hunter2") {
		t.Fatalf("failing readiness: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, s, httptest.NewRequest("GET", "/healthz", nil)); rec.Code != 200 {
		t.Fatalf("liveness must not depend on readiness: %d", rec.Code)
	}
	fail = nil
	s.Drain()
	if rec := do(t, s, httptest.NewRequest("GET", "/readyz", nil)); rec.Code != 503 {
		t.Fatalf("draining replica ready: %d", rec.Code)
	}
	// Bad credentials never break a probe.
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("Authorization", "Basic eA==")
	if rec := do(t, s, req); rec.Code != 200 {
		t.Fatalf("probe with bad credentials: %d", rec.Code)
	}
}

func TestOpenRoutesIgnoreBadCredentials(t *testing.T) {
	s := newServer(t, nil)
	for _, p := range []string{"/", "/docs", "/api/v1/", "/api/v1", "/api/v1/docs"} {
		req := httptest.NewRequest("GET", p, nil)
		req.Header.Set("Authorization", "Apikey wrong")
		if rec := do(t, s, req); rec.Code != 200 {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
	req := httptest.NewRequest("GET", "/api/v1/needs-read", nil)
	req.Header.Set("Authorization", "Apikey wrong")
	if rec := do(t, s, req); rec.Code != 401 || detail(t, rec) != "Invalid API key" {
		t.Fatalf("protected route with a wrong key: %d %s", rec.Code, rec.Body)
	}
	docs := do(t, s, httptest.NewRequest("GET", "/docs", nil))
	if !strings.Contains(docs.Body.String(), "/api/v1/metadata") && !strings.Contains(docs.Body.String(), "/api/v1/needs-read") {
		t.Fatalf("docs do not list the routes: %s", docs.Body)
	}
}

func TestClientOlderThanInternalMode(t *testing.T) {
	for ua, want := range map[string]bool{
		"":                       false,
		"curl/8.0":               false,
		"python-tiled/0.1.0a104": true,
		"python-tiled/0.1.0b16":  true,
		"python-tiled/0.1.0b17":  false,
		"python-tiled/0.1.0rc1":  false,
		"python-tiled/0.1.0":     false,
		"python-tiled/0.0.9":     true,
		"python-tiled/0.2.16":    false,
		"python-tiled/1.0.0":     false,
	} {
		if got := clientOlderThanInternalMode(ua); got != want {
			t.Errorf("%q: %v, want %v", ua, got, want)
		}
	}
}

func TestCORS(t *testing.T) {
	s := New(Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Resolver: &authn.Resolver{SingleUserKey: "k3y"},
		Surfaces: []Registrar{surface{}}, AllowOrigins: []string{"https://app.example"},
	})
	pre := httptest.NewRequest(http.MethodOptions, "/api/v1/change", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization, x-csrf")
	rec := do(t, s, pre)
	h := rec.Header()
	if rec.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "x-csrf") {
		t.Fatalf("preflight: %d %v", rec.Code, h)
	}
	other := httptest.NewRequest(http.MethodGet, "/api/v1/", nil)
	other.Header.Set("Origin", "https://evil.example")
	if got := do(t, s, other).Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("unlisted origin allowed: %q", got)
	}
	// Without allow_origins no CORS headers are sent at all.
	plain := newServer(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/", nil)
	req.Header.Set("Origin", "https://app.example")
	if got := do(t, plain, req).Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("CORS without allow_origins: %q", got)
	}
}
