// Package oidcprovider runs a real OpenID Connect provider in-process on
// loopback, for tests of the server's OIDC logins: zitadel/oidc's certified
// op package over an in-memory store, with a login page that a test drives
// without a browser.
//
// The provider does the authorization code flow with a confidential client
// (client_secret_basic unless told otherwise) and, optionally, public
// clients (PKCE, no secret, JWT access tokens for an API, as a Swagger UI
// page uses), publishes discovery and a JWKS, and signs with RS256 unless
// told to keep keys for other algorithms (RS*, PS*, ES*). It is strict where
// the server under test must be careful: it refuses authorization requests
// without S256 PKCE or (from a confidential client) without a nonce, codes
// are single-use, and a client must authenticate at the token endpoint
// exactly as registered, as Ory Hydra and Okta insist.
//
// For tests of a resource server, Mint signs any claims with the current
// key of an algorithm, RotateKey and RetireKey change the published keys
// while the provider runs, SetAvailable(false) makes discovery and the JWKS
// answer 503 (the provider is down), and Requests counts what was fetched.
//
// A test logs in as a user with Login (or declines with Deny), which follows
// the provider's redirects up to the one that leaves the provider, and
// returns that URL (the server's redirect_uri with code and state) without
// following it. To test what the server does with bad ID tokens, RewriteIDTokens
// replaces each ID token the token endpoint hands out, and SignRS256,
// SignHS256 and SignNone forge replacements.
package oidcprovider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Options configure a provider.
type Options struct {
	ClientID     string
	ClientSecret string
	// RedirectURIs are the client's registered redirect URIs (exact match).
	RedirectURIs []string
	// Users may log in. A user's subject is their name; with the email
	// scope the ID token also carries "NAME@example.test".
	Users []string
	// Addr is where to listen; "127.0.0.1:0" when empty. A test that needs
	// the provider's address before it runs reserves a port and passes it.
	Addr string
	// IDTokenLifetime is how long ID tokens are valid; 5 minutes when zero.
	IDTokenLifetime time.Duration
	// AuthMethod is how the client must authenticate at the token endpoint:
	// AuthBasic (the default, as OpenID Connect Core section 9 and RFC 7591
	// make it), AuthPost or AuthNone (a public client, PKCE alone). A token
	// request that uses another method is refused with invalid_client.
	AuthMethod string
	// AdvertisedAuthMethods replaces token_endpoint_auth_methods_supported
	// in the discovery document; an empty, non-nil slice removes the member.
	// nil keeps the provider's own list (basic and post).
	AdvertisedAuthMethods []string
	// Algorithms get one signing key each, all published; the first signs
	// ID tokens and JWT access tokens. ["RS256"] when empty.
	Algorithms []string
	// PublicClients are browser clients (no secret, PKCE) whose access
	// tokens are JWTs for an API.
	PublicClients []PublicClient
}

// PublicClient is a client without a secret, such as a single-page app.
type PublicClient struct {
	ID           string
	RedirectURIs []string
	// Audience is added to its access tokens' aud (the API's identifier).
	Audience string
}

// Client authentication methods (OpenID Connect Core section 9).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthNone  = "none"
)

// Provider is a running test provider.
type Provider struct {
	srv     *httptest.Server
	op      *op.Provider
	store   *storage
	issuer  string
	mu      sync.Mutex
	rewrite func(claims map[string]any) string
	down    bool
	counts  map[string]int
}

const (
	loginPath = "/login"
	tokenPath = "/oauth/token"
)

// Start runs a provider until the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	p, err := start(o)
	if err != nil {
		t.Fatalf("start test OIDC provider: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// New is Start outside a test (the load harness): the caller closes it.
func New(o Options) (*Provider, error) { return start(o) }

func start(o Options) (*Provider, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	issuer := "http://" + l.Addr().String()
	algs := o.Algorithms
	if len(algs) == 0 {
		algs = []string{string(jose.RS256)}
	}
	var keys []*signingKey
	for _, a := range algs {
		key, err := newSigningKey(jose.SignatureAlgorithm(a))
		if err != nil {
			l.Close()
			return nil, err
		}
		keys = append(keys, key)
	}
	life := o.IDTokenLifetime
	if life == 0 {
		life = 5 * time.Minute
	}
	method := o.AuthMethod
	if method == "" {
		method = AuthBasic
	}
	if method != AuthBasic && method != AuthPost && method != AuthNone {
		l.Close()
		return nil, fmt.Errorf("unknown client authentication method %q", method)
	}
	st := &storage{
		clients: map[string]*client{o.ClientID: {
			id: o.ClientID, secret: o.ClientSecret, redirectURIs: o.RedirectURIs,
			loginURL: issuer + loginPath, idTokenLife: life, authMethod: oidc.AuthMethod(method),
		}},
		users: o.Users, issuer: issuer,
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]string{},
		keys: keys, tokenAlg: jose.SignatureAlgorithm(algs[0]),
	}
	for _, pc := range o.PublicClients {
		st.clients[pc.ID] = &client{
			id: pc.ID, public: true, jwtAccess: true, audience: pc.Audience, redirectURIs: pc.RedirectURIs,
			loginURL: issuer + loginPath, idTokenLife: life, authMethod: oidc.AuthMethodNone,
		}
	}
	cfg := &op.Config{CodeMethodS256: true, AuthMethodPost: true}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		l.Close()
		return nil, err
	}
	provider, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("new provider: %w", err)
	}
	p := &Provider{op: provider, store: st, issuer: issuer, counts: map[string]int{}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+loginPath, p.loginPage)
	mux.HandleFunc("POST "+loginPath, p.login)
	mux.Handle(tokenPath, strictClientAuth(st.methodOf, p.rewriteIDToken(provider)))
	mux.Handle("/.well-known/openid-configuration", advertise(o.AdvertisedAuthMethods, provider))
	mux.Handle("/", provider)

	p.srv = httptest.NewUnstartedServer(p.gate(mux))
	p.srv.Listener.Close()
	p.srv.Listener = l
	p.srv.Start()
	return p, nil
}

// strictClientAuth refuses a token request that authenticates the client
// otherwise than registered (zitadel's op accepts either form), with the
// answer Ory Hydra gives.
func strictClientAuth(methodOf func(clientID string) oidc.AuthMethod, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r) // a browser's CORS preflight carries no credentials
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, _, basic := r.BasicAuth()
		if !basic {
			id = r.PostForm.Get("client_id")
		}
		method := methodOf(id)
		inBody := r.PostForm.Has("client_secret")
		used := oidc.AuthMethodNone
		switch {
		case basic && inBody:
			used = "client_secret_basic and client_secret_post"
		case basic:
			used = oidc.AuthMethodBasic
		case inBody:
			used = oidc.AuthMethodPost
		}
		if used != method {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"error": "invalid_client",
				"error_description": fmt.Sprintf("Client authentication failed. The OAuth 2.0 Client supports client authentication method '%s', but method '%s' was requested.",
					method, used),
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// advertise rewrites token_endpoint_auth_methods_supported in the discovery
// document (see Options.AdvertisedAuthMethods).
func advertise(methods []string, next http.Handler) http.Handler {
	if methods == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var doc map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		if len(methods) == 0 {
			delete(doc, "token_endpoint_auth_methods_supported")
		} else {
			doc["token_endpoint_auth_methods_supported"] = methods
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// WellKnownURI is the discovery document's URL.
func (p *Provider) WellKnownURI() string { return p.issuer + "/.well-known/openid-configuration" }

// AuthorizationEndpoint and TokenEndpoint are what discovery names, for the
// explicit configuration form.
func (p *Provider) AuthorizationEndpoint() string {
	return p.op.AuthorizationEndpoint().Absolute(p.issuer)
}

// TokenEndpoint is the token endpoint's URL.
func (p *Provider) TokenEndpoint() string { return p.op.TokenEndpoint().Absolute(p.issuer) }

// JWKS returns the published public keys as configuration lists them
// (public_keys).
func (p *Provider) JWKS() []map[string]any {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	out := make([]map[string]any, 0, len(p.store.keys))
	for _, k := range p.store.keys {
		out = append(out, jwk(k))
	}
	return out
}

// JWKSPath is where the provider publishes its keys (zitadel's default).
const JWKSPath = "/keys"

// DiscoveryPath is the discovery document's path under the issuer.
const DiscoveryPath = "/.well-known/openid-configuration"

// RotateKey makes a new signing key for the ID token algorithm. The old one
// stays published, as a provider rotating keys does, so tokens it signed
// still verify.
func (p *Provider) RotateKey() error {
	_, err := p.RotateAlgorithm(string(p.store.tokenAlg))
	return err
}

// RotateAlgorithm makes a new key for alg, published and used from now on
// by Mint(alg, ...); the previous ones stay published. It returns the new
// key's id.
func (p *Provider) RotateAlgorithm(alg string) (string, error) {
	k, err := newSigningKey(jose.SignatureAlgorithm(alg))
	if err != nil {
		return "", err
	}
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.keys = append([]*signingKey{k}, p.store.keys...)
	return k.id, nil
}

// RetireKey stops publishing the key with id kid (a provider finishing a
// rotation). Tokens it signed no longer verify once a verifier refreshes.
func (p *Provider) RetireKey(kid string) {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	p.store.keys = slices.DeleteFunc(p.store.keys, func(k *signingKey) bool { return k.id == kid })
}

// KeyID returns the id of the current key for alg ("" if there is none).
func (p *Provider) KeyID(alg string) string {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	if k, ok := p.store.current(jose.SignatureAlgorithm(alg)); ok {
		return k.id
	}
	return ""
}

// SetAvailable(false) makes every request to the provider answer 503, as
// a provider that is down (behind a load balancer that still answers).
func (p *Provider) SetAvailable(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = !up
}

// Requests returns how many requests reached path (for example JWKSPath or
// DiscoveryPath), including those refused while unavailable.
func (p *Provider) Requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

// gate counts requests by path and refuses them while the provider is down.
func (p *Provider) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.URL.Path]++
		down := p.down
		p.mu.Unlock()
		if down {
			http.Error(w, "identity provider unavailable", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RewriteIDTokens makes the token endpoint replace every ID token it hands
// out with fn(claims), where claims are the genuine token's. nil restores
// genuine tokens.
func (p *Provider) RewriteIDTokens(fn func(claims map[string]any) string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite = fn
}

// Login logs in as user at authURL (an authorization URL of this provider)
// and returns where the provider finally redirects the browser: the
// client's redirect_uri with code and state, or with an error.
func (p *Provider) Login(ctx context.Context, authURL, user string) (*url.URL, error) {
	return p.drive(ctx, authURL, url.Values{"username": {user}, "action": {"login"}})
}

// Deny declines the login at authURL (as a person pressing "cancel"): the
// provider redirects with error=access_denied.
func (p *Provider) Deny(ctx context.Context, authURL string) (*url.URL, error) {
	return p.drive(ctx, authURL, url.Values{"action": {"deny"}})
}

// drive plays the browser: follow redirects while they stay on the
// provider, submit the login form when it comes, stop at the first
// redirect that leaves.
func (p *Provider) drive(ctx context.Context, authURL string, form url.Values) (*url.URL, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	host := strings.TrimPrefix(p.issuer, "http://")
	for range 10 {
		if next.Host != host {
			return next, nil
		}
		var req *http.Request
		if next.Path == loginPath {
			f := url.Values{"authRequestID": {next.Query().Get("authRequestID")}}
			for k, v := range form {
				f[k] = v
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, next.String(), strings.NewReader(f.Encode()))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
		}
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 3 {
			return nil, fmt.Errorf("%s %s: %s: %s", req.Method, next.Path, resp.Status, bytes.TrimSpace(body))
		}
		if next, err = resp.Location(); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("too many redirects from %s", authURL)
}

var loginTmpl = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Test OIDC provider</title></head>
<body><h1>Log in</h1>
<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label>User <input name="username" autofocus></label>
<button name="action" value="login">Log in</button>
<button name="action" value="deny">Cancel</button>
</form></body></html>`))

// loginPage is for a person trying the provider in a browser.
func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginTmpl.Execute(w, map[string]string{"Action": p.issuer + loginPath, "ID": r.URL.Query().Get("authRequestID")})
}

// login finishes the pending authorization request as the named user (no
// password: this is a test provider), or declines it.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("authRequestID")
	req, ok := p.store.request(id)
	if !ok {
		http.Error(w, "no such authorization request", http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("action") == "deny" {
		op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("the user declined"), p.op)
		return
	}
	if err := p.store.finish(id, r.PostForm.Get("username")); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(ctx, id), http.StatusFound)
}
