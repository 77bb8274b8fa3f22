package authapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tiledgo/server/internal/authenticator/oidc"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/api"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
	"github.com/tiledgo/server/internal/tokens"
)

// hangingServer accepts connections and never answers, as an identity
// provider that has stalled does. close drops every connection.
type hangingServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startHanging(t *testing.T) *hangingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingServer{ln: ln}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(h.close)
	return h
}

func (h *hangingServer) url() string { return "http://" + h.ln.Addr().String() }

func (h *hangingServer) close() {
	_ = h.ln.Close()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.conns = nil
}

// TestHangingIdentityProvider: discovery and the token endpoint of an
// identity provider that accepts connections and never answers. Logins
// answer 503 with Retry-After within the HTTP client's timeout, concurrent
// ones do not pile up, and once the provider's connections are gone no
// goroutine is left behind.
func TestHangingIdentityProvider(t *testing.T) {
	hang := startHanging(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	op := oidcprovider.Start(t, oidcprovider.Options{
		ClientID: opClientID, ClientSecret: opClientSecret, Users: []string{"alice"},
		RedirectURIs: []string{base + "/api/v1/auth/provider/slowtoken/code"},
	})
	st, err := store.Open(context.Background(), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logger := slog.New(slog.DiscardHandler)
	const clientTimeout = 300 * time.Millisecond
	idp := &http.Client{Timeout: clientTimeout}
	newOIDC := func(cfg oidc.Config) *oidc.Provider {
		cfg.ClientID, cfg.ClientSecret = opClientID, opClientSecret
		p, err := oidc.New(context.Background(), cfg, idp, logger)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	hung := newOIDC(oidc.Config{WellKnownURI: hang.url() + "/.well-known/openid-configuration"})
	slowToken := newOIDC(oidc.Config{
		TokenURI: hang.url() + "/token", AuthorizationEndpoint: op.AuthorizationEndpoint(), PublicKeys: op.JWKS(),
	})
	keys, _ := tokens.NewKeys([]string{"k"})
	mgr := &sessions.Manager{Sessions: st, Identities: st, Keys: keys, Config: sessions.DefaultConfig(), Now: time.Now, Logger: logger}
	h := &Handlers{
		Providers: []Provider{{Name: "hung", OIDC: hung}, {Name: "slowtoken", OIDC: slowToken}},
		Manager:   mgr, Sessions: st, Identities: st, Now: time.Now, Logger: logger,
	}
	srv.Config.Handler = api.New(api.Deps{
		Logger: logger, Resolver: &authn.Resolver{Tokens: mgr}, Surfaces: []api.Registrar{h},
		RequestTimeout: 5 * time.Second,
	}).Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Everything running now (servers, pools) stays; whatever the hanging
	// provider makes this test start must be gone at the end.
	leaks := goleak.IgnoreCurrent()

	// A bound far above the client timeout, far below a hang.
	const bound = clientTimeout + 3*time.Second
	get := func(u string) (int, string, time.Duration) {
		start := time.Now()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			status, retry, took := get(base + "/api/v1/auth/provider/hung/authorize")
			if status != http.StatusServiceUnavailable || retry == "" || took > bound {
				t.Errorf("authorize while discovery hangs: %d (Retry-After %q) after %s, want 503 within %s", status, retry, took, bound)
			}
		})
	}
	wg.Wait()

	status, _, _ := get(base + "/api/v1/auth/provider/slowtoken/authorize")
	if status != http.StatusTemporaryRedirect {
		t.Fatalf("authorize with the explicit endpoints: %d", status)
	}
	resp, _ := browser.Get(base + "/api/v1/auth/provider/slowtoken/authorize")
	resp.Body.Close()
	back, err := op.Login(context.Background(), resp.Header.Get("Location"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	status, retry, took := get(back.String())
	if status != http.StatusServiceUnavailable || retry == "" || took > bound {
		t.Errorf("code exchange while the token endpoint hangs: %d (Retry-After %q) after %s, want 503 within %s", status, retry, took, bound)
	}

	browser.CloseIdleConnections()
	idp.CloseIdleConnections()
	hang.close()
	goleak.VerifyNone(t, leaks)
}
