package authapi

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/authenticator/oidc"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/api"
	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
	"github.com/tiledgo/server/internal/tokens"
)

// The external-login tests run the real thing on loopback: two replicas of
// the HTTP surface (api.Server with these Handlers) sharing one in-memory
// session database, and a real OpenID Connect provider in-process.

const (
	opClientID     = "tiled"
	opClientSecret = "client-secret-for-tests"
	confirmation   = "You have logged in with the test provider as {id}."
)

// Providers the replicas configure, all against the same test provider.
const (
	provJSON     = "idp"    // discovery, token JSON
	provRedirect = "web"    // discovery, redirect_on_success/failure
	provExplicit = "legacy" // seed 000's token_uri + authorization_endpoint + public_keys
	provPassword = "toy"    // a password provider, for contrast
	onSuccess    = "https://app.example/logged-in?from=tiled"
	onFailure    = "https://app.example/login-failed"
)

type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

type replica struct {
	base string // http://127.0.0.1:PORT
	h    *Handlers
	mgr  *sessions.Manager
}

type env struct {
	t        *testing.T
	op       *oidcprovider.Provider
	store    store.Store
	clock    *clock
	replicas [2]*replica
	client   *http.Client
	// startOP starts the provider at envOptions.opAddr.
	startOP func()
}

type envOptions struct {
	// opAddr, when set, is where the test provider will listen; the
	// provider is not started, so it is unreachable until startOP.
	opAddr string
	// databaseURI is the session database; in memory when empty.
	databaseURI string
}

// forEachStore runs test on the embedded store and on PostgreSQL (what
// replicas share in production; see pgtest for how it is found).
func forEachStore(t *testing.T, test func(t *testing.T, e *env)) {
	for _, backend := range []string{"memory", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			o := envOptions{}
			if backend == "postgres" {
				o.databaseURI = pgtest.NewDatabase(t)
			}
			test(t, newEnv(t, o))
		})
	}
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	opts := store.DefaultOptions()
	opts.URI, opts.Migrate = o.databaseURI, true
	st, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, store: st, clock: &clock{}, client: newBrowser()}

	// Listeners first: the provider must know our redirect URIs.
	var servers [2]*httptest.Server
	var redirects []string
	for i := range servers {
		servers[i] = httptest.NewUnstartedServer(nil)
		base := "http://" + servers[i].Listener.Addr().String()
		for _, p := range []string{provJSON, provRedirect, provExplicit} {
			redirects = append(redirects, base+"/api/v1/auth/provider/"+p+"/code", base+"/api/v1/auth/provider/"+p+"/device_code")
		}
	}
	opOpts := oidcprovider.Options{
		ClientID: opClientID, ClientSecret: opClientSecret, RedirectURIs: redirects,
		Users: []string{"alice", "bob"}, Addr: o.opAddr,
	}
	wellKnown := "http://" + o.opAddr + "/.well-known/openid-configuration"
	if o.opAddr == "" {
		e.op = oidcprovider.Start(t, opOpts)
		wellKnown = e.op.WellKnownURI()
	} else {
		t.Cleanup(func() {
			if e.op != nil {
				e.op.Close()
			}
		})
	}
	e.startOP = func() { e.op = oidcprovider.Start(t, opOpts) }

	keys, err := tokens.NewKeys([]string{"a-secret-key-shared-by-the-replicas"})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	msg := confirmation
	for i, srv := range servers {
		mgr := &sessions.Manager{
			Sessions: st, Identities: st, Keys: keys, Config: sessions.DefaultConfig(),
			Now: e.clock.now, Logger: logger,
		}
		// Each replica builds its own providers from configuration, as
		// separate processes would.
		newOIDC := func(cfg oidc.Config) *oidc.Provider {
			cfg.ClientID, cfg.ClientSecret = opClientID, opClientSecret
			// A replica rediscovers on every use while the provider is
			// down, so the test need not wait out a retry interval.
			cfg.RetryAfter = time.Nanosecond
			p, err := oidc.New(ctx, cfg, nil, logger)
			if err != nil {
				t.Fatalf("oidc.New: %v", err)
			}
			return p
		}
		providers := []Provider{
			{Name: provJSON, ConfirmationMessage: &msg, OIDC: newOIDC(oidc.Config{WellKnownURI: wellKnown})},
			{Name: provRedirect, OIDC: newOIDC(oidc.Config{
				WellKnownURI: wellKnown, RedirectOnSuccess: onSuccess, RedirectOnFailure: onFailure,
			})},
			{Name: provPassword, Password: authenticator.NewDictionary(map[string]string{"carl": "pw"})},
		}
		if e.op != nil {
			providers = append(providers, Provider{Name: provExplicit, OIDC: newOIDC(oidc.Config{
				TokenURI: e.op.TokenEndpoint(), AuthorizationEndpoint: e.op.AuthorizationEndpoint(),
				PublicKeys: e.op.JWKS(),
			})})
		}
		h := &Handlers{
			Providers: providers, Manager: mgr, Sessions: st, Identities: st,
			Now: e.clock.now, Logger: logger,
		}
		// The test is the replicas' load balancer: X-Forwarded-For from
		// loopback names the client (tests of login limits use it).
		s := api.New(api.Deps{
			Logger: logger, Resolver: &authn.Resolver{Tokens: mgr}, Surfaces: []api.Registrar{h},
			Forwarded: forwarded.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		})
		srv.Config.Handler = s.Handler()
		srv.Start()
		t.Cleanup(srv.Close)
		e.replicas[i] = &replica{base: srv.URL, h: h, mgr: mgr}
	}
	return e
}

// newBrowser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each step. Cookies do not depend on the port, so
// both replicas (and the provider) share the jar, as behind one host name.
func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// freeAddr reserves a loopback port and frees it, for a provider that is to
// start there later.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// response is what a test looks at.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (r response) location(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil || r.header.Get("Location") == "" {
		t.Fatalf("no Location (status %d): %s", r.status, r.body)
	}
	return u
}

// detail is the {"detail": ...} of an error answer.
func (r response) detail(t *testing.T) any { return r.json(t)["detail"] }

var hiddenField = regexp.MustCompile(`name="(code|state|csrf)" value="([^"]*)"`)

// hidden returns the hidden fields of a device_code form page.
func (r response) hidden() map[string]string {
	out := map[string]string{}
	for _, m := range hiddenField.FindAllStringSubmatch(r.body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	return e.doWith(e.client, req)
}

func (e *env) doWith(c *http.Client, req *http.Request) response {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// on rewrites u to be served by replica i, as a load balancer might.
func (e *env) on(i int, u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		e.t.Fatal(err)
	}
	base, _ := url.Parse(e.replicas[i].base)
	parsed.Scheme, parsed.Host = base.Scheme, base.Host
	return parsed.String()
}

func (e *env) get(u string, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.do(req)
}

func (e *env) post(u, contentType, body string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return e.do(req)
}

func (e *env) postForm(u string, v url.Values) response {
	return e.post(u, "application/x-www-form-urlencoded", v.Encode())
}

func (e *env) postJSON(u string, v any) response {
	b, _ := json.Marshal(v)
	return e.post(u, "application/json", string(b))
}

// api is replica i's URL of an auth route.
func (e *env) api(i int, path string) string {
	return e.replicas[i].base + "/api/v1/auth/" + strings.TrimPrefix(path, "/")
}

// browserLogin runs the code flow's first leg on replica i and the
// provider's login as user, and returns the URL the provider sends the
// browser back to (not yet followed).
func (e *env) browserLogin(i int, provider, query, user string) *url.URL {
	e.t.Helper()
	r := e.get(e.api(i, "provider/"+provider+"/authorize"+query))
	if r.status != http.StatusTemporaryRedirect {
		e.t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	back, err := e.op.Login(context.Background(), r.location(e.t).String(), user)
	if err != nil {
		e.t.Fatalf("login at the provider: %v", err)
	}
	return back
}
