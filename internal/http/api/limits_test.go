package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/dbbudget"
	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/version"
)

// probeSurface answers what the middleware put in the request context.
type probeSurface struct {
	block chan struct{} // /block waits on it
	in    chan struct{} // /block signals it has started
}

func (p probeSurface) Register(g *echo.Group) {
	g.GET("/client", func(c echo.Context) error {
		cl := forwarded.FromContext(c.Request().Context())
		return c.String(http.StatusOK, cl.String()+" "+cl.Scheme+" "+c.RealIP())
	})
	g.GET("/budget", func(c echo.Context) error {
		b := dbbudget.From(c.Request().Context())
		if b == nil {
			return c.String(http.StatusOK, "none")
		}
		return c.String(http.StatusOK, b.Left().String())
	})
	g.GET("/block", func(c echo.Context) error {
		p.in <- struct{}{}
		<-p.block
		return c.NoContent(http.StatusNoContent)
	})
	g.GET("/wait", func(c echo.Context) error {
		<-c.Request().Context().Done()
		return c.Request().Context().Err()
	})
	g.GET("/needs-read", func(c echo.Context) error {
		if err := authn.RequireScopes(c.Request(), identity.ScopeReadMetadata); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
}

func newLimitServer(t *testing.T, d Deps) (*Server, probeSurface) {
	t.Helper()
	p := probeSurface{block: make(chan struct{}), in: make(chan struct{}, 100)}
	d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d.Build = version.Info{Version: "test"}
	if d.Resolver == nil {
		d.Resolver = &authn.Resolver{SingleUserKey: "k3y"}
	}
	d.Surfaces = []Registrar{p}
	return New(d), p
}

// The client is resolved once, from the connection unless the peer is a
// trusted proxy, and c.RealIP() is that client, never a forged header.
func TestResolvedClient(t *testing.T) {
	s, _ := newLimitServer(t, Deps{Forwarded: forwarded.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	for _, tt := range []struct{ peer, want string }{
		{"10.1.1.1:5000", "198.51.100.4 https 198.51.100.4"},
		{"203.0.113.9:5000", "203.0.113.9 http 203.0.113.9"},
	} {
		req := httptest.NewRequest("GET", "/api/v1/client", nil)
		req.RemoteAddr = tt.peer
		req.Header.Set("X-Forwarded-For", "198.51.100.4")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Real-IP", "6.6.6.6")
		rec := do(t, s, req)
		if got := rec.Body.String(); got != tt.want {
			t.Errorf("peer %s: %q, want %q", tt.peer, got, tt.want)
		}
		// Cookies are Secure exactly when the resolved scheme is https.
		secure := strings.Contains(strings.Join(rec.Header().Values("Set-Cookie"), ";"), "Secure")
		if secure != strings.Contains(tt.want, "https") {
			t.Errorf("peer %s: Set-Cookie %q", tt.peer, rec.Header().Values("Set-Cookie"))
		}
	}
}

// keyVerifier accepts one API key (a multi-user server's).
type keyVerifier struct{}

func (keyVerifier) VerifyAPIKey(_ context.Context, secret string) (*authn.Caller, error) {
	if secret != "user-key" {
		return nil, authn.ErrInvalidAPIKey
	}
	return &authn.Caller{Kind: authn.APIKey, Scopes: identity.NewScopeSet(identity.ScopeReadMetadata)}, nil
}

// ?api_key= sets the tiled_api_key cookie only in single-user mode and
// only on a navigation the person made; the key still authenticates the
// request itself everywhere.
func TestQueryKeyCookie(t *testing.T) {
	single, _ := newLimitServer(t, Deps{})
	multi, _ := newLimitServer(t, Deps{Resolver: &authn.Resolver{APIKeys: keyVerifier{}}})
	for _, tt := range []struct {
		name   string
		s      *Server
		key    string
		site   string
		cookie bool
	}{
		{"single-user, no Sec-Fetch-Site", single, "k3y", "", true},
		{"single-user, typed or bookmarked", single, "k3y", "none", true},
		{"single-user, same origin", single, "k3y", "same-origin", true},
		{"single-user, same site", single, "k3y", "same-site", false},
		{"single-user, cross site", single, "k3y", "cross-site", false},
		{"single-user, unknown value", single, "k3y", "whatever", false},
		{"multi-user, no Sec-Fetch-Site", multi, "user-key", "", false},
		{"multi-user, typed", multi, "user-key", "none", false},
		{"multi-user, cross site", multi, "user-key", "cross-site", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/v1/needs-read?api_key="+tt.key, nil)
			if tt.site != "" {
				req.Header.Set("Sec-Fetch-Site", tt.site)
			}
			rec := do(t, tt.s, req)
			if rec.Code != http.StatusNoContent {
				t.Fatalf("the key in the query did not authenticate: %d %s", rec.Code, rec.Body)
			}
			got := false
			for _, c := range rec.Result().Cookies() {
				if c.Name == authn.APIKeyCookie {
					got = true
					if c.Value != tt.key || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
						t.Errorf("cookie %+v", c)
					}
				}
			}
			if got != tt.cookie {
				t.Fatalf("tiled_api_key cookie set: %v, want %v (%q)", got, tt.cookie, rec.Header().Values("Set-Cookie"))
			}
		})
	}
}

// At MaxInFlight requests in flight the next one is 503 with Retry-After,
// at once; probes still answer; a freed slot serves again.
func TestMaxInFlight(t *testing.T) {
	const limit = 2
	s, p := newLimitServer(t, Deps{MaxInFlight: limit})
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() { do(t, s, httptest.NewRequest("GET", "/api/v1/block", nil)) })
	}
	for range limit {
		<-p.in
	}
	rec := do(t, s, httptest.NewRequest("GET", "/api/v1/client", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("request past the cap: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	for _, probe := range []string{"/healthz", "/readyz", "/version"} {
		if rec := do(t, s, httptest.NewRequest("GET", probe, nil)); rec.Code != http.StatusOK {
			t.Errorf("%s while the server is full: %d", probe, rec.Code)
		}
	}
	p.block <- struct{}{}
	// One slot is free once that request has returned.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec = do(t, s, httptest.NewRequest("GET", "/api/v1/client", nil))
		if rec.Code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // the released handler is returning
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("after a slot freed: %d", rec.Code)
	}
	close(p.block)
	wg.Wait()
}

// A request past RequestTimeout answers 503 with Retry-After; each request
// carries a database budget of DatabaseBudget, and probes neither.
func TestRequestBounds(t *testing.T) {
	s, _ := newLimitServer(t, Deps{RequestTimeout: 50 * time.Millisecond, DatabaseBudget: 3 * time.Second})
	start := time.Now()
	rec := do(t, s, httptest.NewRequest("GET", "/api/v1/wait", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("request past its deadline: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the deadline took %s", d)
	}
	if got := do(t, s, httptest.NewRequest("GET", "/api/v1/budget", nil)).Body.String(); got != "3s" {
		t.Fatalf("budget %q, want 3s", got)
	}
	none, _ := newLimitServer(t, Deps{})
	if got := do(t, none, httptest.NewRequest("GET", "/api/v1/budget", nil)).Body.String(); got != "none" {
		t.Fatalf("budget without one configured: %q", got)
	}
}
