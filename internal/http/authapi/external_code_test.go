package authapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

// The browser (authorization code) flow.

func TestCodeFlowEndToEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		for _, prov := range []string{provJSON, provExplicit} {
			t.Run(prov, func(t *testing.T) { codeFlow(t, e, prov) })
		}
	})
}

// codeFlow logs alice in through prov, leg one on one replica and leg two
// on the other, and uses the tokens.
func codeFlow(t *testing.T, e *env, prov string) {
	r := e.get(e.api(0, "provider/"+prov+"/authorize"))
	if r.status != http.StatusTemporaryRedirect {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	q := r.location(t).Query()
	for k, want := range map[string]string{
		"client_id": opClientID, "response_type": "code", "prompt": "login",
		"scope":                 "openid offline_access",
		"redirect_uri":          e.replicas[0].base + "/api/v1/auth/provider/" + prov + "/code",
		"code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("%s %q is too short to be random", k, q.Get(k))
		}
	}
	binding := ""
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "tiled_oidc_") {
			binding = c
		}
	}
	for _, attr := range []string{"Path=/", "Max-Age=600", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(binding, attr) {
			t.Errorf("binding cookie %q lacks %s", binding, attr)
		}
	}
	back, err := e.op.Login(context.Background(), r.location(t).String(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	// The second leg lands on the other replica.
	r = e.get(e.on(1, back.String()))
	if r.status != http.StatusOK {
		t.Fatalf("code: %d %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	tok := r.json(t)
	ident, _ := tok["identity"].(map[string]any)
	if ident["id"] != "alice" || ident["provider"] != prov || tok["token_type"] != "bearer" {
		t.Fatalf("token response %v", tok)
	}
	principal, _ := tok["principal"].(string)
	if len(principal) != 32 {
		t.Errorf("principal %q is not uuid hex", principal)
	}
	access, _ := tok["access_token"].(string)
	caller, err := e.replicas[0].mgr.VerifyAccessToken(context.Background(), access)
	if err != nil || strings.ReplaceAll(caller.PrincipalID.String(), "-", "") != principal {
		t.Fatalf("access token: %v, %v", caller, err)
	}
	who := e.get(e.api(1, "whoami"), "Authorization", "Bearer "+access)
	if who.status != http.StatusOK || !strings.Contains(who.body, `"id":"alice","latest_login"`) {
		t.Fatalf("whoami: %d %s", who.status, who.body)
	}
	ref := e.postJSON(e.api(0, "session/refresh"), map[string]any{"refresh_token": tok["refresh_token"]})
	if ref.status != http.StatusOK || ref.json(t)["access_token"] == "" {
		t.Fatalf("refresh: %d %s", ref.status, ref.body)
	}
	// The state is single-use: the same answer from the provider a
	// second time (a replayed or leaked URL) is refused.
	again := e.get(e.on(0, back.String()))
	if again.status != http.StatusUnauthorized || again.detail(t) != "Authentication failure" {
		t.Fatalf("replayed state: %d %s", again.status, again.body)
	}
}

// TestCodeFlowBoundToBrowser: the provider's answer to a login works only in
// the browser that began it. An attacker who began a login and sends the
// URL to a victim does not get the victim logged in as the attacker.
func TestCodeFlowBoundToBrowser(t *testing.T) {
	e := newEnv(t, envOptions{})
	back := e.browserLogin(0, provJSON, "", "alice")
	req, err := http.NewRequest(http.MethodGet, back.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := e.doWith(newBrowser(), req)
	if victim.status != http.StatusUnauthorized || victim.detail(t) != "Authentication failure" {
		t.Fatalf("another browser: %d %s", victim.status, victim.body)
	}
	// The attempt used nothing up: the browser that began the login ends it.
	r := e.get(e.on(1, back.String()))
	if r.status != http.StatusOK {
		t.Fatalf("the browser that began it: %d %s", r.status, r.body)
	}
	for _, c := range e.client.Jar.Cookies(back) {
		if strings.HasPrefix(c.Name, "tiled_oidc_") {
			t.Errorf("binding cookie %s left behind", c.Name)
		}
	}
}

func TestCodeFlowSameIdentitySamePrincipal(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.get(e.browserLogin(0, provJSON, "", "bob").String()).json(t)
	second := e.get(e.browserLogin(1, provJSON, "", "bob").String()).json(t)
	if first["principal"] != second["principal"] || first["refresh_token"] == second["refresh_token"] {
		t.Fatalf("two logins of bob: %v / %v", first, second)
	}
}

func TestCodeFlowRedirects(t *testing.T) {
	e := newEnv(t, envOptions{})
	t.Run("success with client state", func(t *testing.T) {
		back := e.browserLogin(0, provRedirect, "?state=client%20state%2F1", "alice")
		if back.Query().Get("state") == "client state/1" {
			t.Fatal("the client's state must not be what the provider sees")
		}
		r := e.get(e.on(1, back.String()))
		if r.status != http.StatusFound {
			t.Fatalf("%d %s", r.status, r.body)
		}
		u := r.location(t)
		if got := u.Scheme + "://" + u.Host + u.Path; got != "https://app.example/logged-in" {
			t.Fatalf("redirected to %s", u)
		}
		q := u.Query()
		if q.Get("from") != "tiled" || q.Get("state") != "client state/1" || q.Get("identity.id") != "alice" ||
			q.Get("identity.provider") != provRedirect || len(q.Get("principal")) != 32 {
			t.Fatalf("query %v", q)
		}
		if _, err := e.replicas[0].mgr.VerifyAccessToken(context.Background(), q.Get("access_token")); err != nil {
			t.Fatalf("access token: %v", err)
		}
		if _, err := e.replicas[0].mgr.Refresh(context.Background(), q.Get("refresh_token")); err != nil {
			t.Fatalf("refresh token: %v", err)
		}
	})
	t.Run("without client state", func(t *testing.T) {
		r := e.get(e.browserLogin(0, provRedirect, "", "bob").String())
		if r.status != http.StatusFound || r.location(t).Query().Has("state") {
			t.Fatalf("%d %v", r.status, r.header)
		}
	})
	t.Run("failure", func(t *testing.T) {
		r := e.get(e.api(0, "provider/"+provRedirect+"/authorize"))
		back, err := e.op.Deny(context.Background(), r.location(t).String())
		if err != nil {
			t.Fatal(err)
		}
		r = e.get(back.String())
		if r.status != http.StatusFound || r.header.Get("Location") != onFailure {
			t.Fatalf("%d %v", r.status, r.header)
		}
	})
	t.Run("client state too long", func(t *testing.T) {
		r := e.get(e.api(0, "provider/"+provRedirect+"/authorize?state="+strings.Repeat("s", maxClientState+1)))
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

// TestCodeFlowFailures: whatever goes wrong that a person (or an attacker)
// can cause is 401 "Authentication failure", never 500.
func TestCodeFlowFailures(t *testing.T) {
	e := newEnv(t, envOptions{})
	forged := func(mod func(map[string]any)) func(map[string]any) string {
		return func(c map[string]any) string { mod(c); return e.op.SignRS256(c) }
	}
	// edited is a genuine answer of the provider with one query parameter
	// changed ("" removes it).
	edited := func(key, value string) func(*testing.T) string {
		return func(*testing.T) string { return withQuery(e.browserLogin(0, provJSON, "", "alice"), key, value) }
	}
	for _, tc := range []struct {
		name string
		// url returns the URL to GET on our server.
		url     func(t *testing.T) string
		rewrite func(map[string]any) string
	}{
		{name: "identity provider declined", url: func(t *testing.T) string {
			back, err := e.op.Deny(context.Background(), e.get(e.api(0, "provider/"+provJSON+"/authorize")).location(t).String())
			if err != nil {
				t.Fatal(err)
			}
			if back.Query().Get("error") != "access_denied" {
				t.Fatalf("provider answered %v", back)
			}
			return back.String()
		}},
		{name: "no state", url: edited("state", "")},
		{name: "made-up state", url: edited("state", "made-up")},
		{name: "state of another provider", url: func(t *testing.T) string {
			back := e.browserLogin(0, provRedirect, "", "alice")
			return strings.Replace(back.String(), "/provider/"+provRedirect+"/", "/provider/"+provJSON+"/", 1)
		}},
		{name: "state of a device login", url: func(t *testing.T) string {
			start := e.post(e.api(0, "provider/"+provJSON+"/authorize"), "", "").json(t)
			back, err := e.op.Login(context.Background(), start["authorization_uri"].(string), "alice")
			if err != nil {
				t.Fatal(err)
			}
			return strings.Replace(back.String(), "/device_code?", "/code?", 1)
		}},
		{name: "no code", url: edited("code", "")},
		{name: "made-up code", url: edited("code", "made-up")},
		{name: "state expired", url: func(t *testing.T) string {
			back := e.browserLogin(0, provJSON, "", "alice")
			e.clock.advance(authStateTTL + time.Second)
			t.Cleanup(func() { e.clock.advance(-authStateTTL - time.Second) })
			return back.String()
		}},
		{name: "ID token with another nonce", rewrite: forged(func(c map[string]any) { c["nonce"] = "other" })},
		{name: "ID token for another audience", rewrite: forged(func(c map[string]any) { c["aud"] = "other-client" })},
		{name: "ID token from another issuer", rewrite: forged(func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{name: "expired ID token", rewrite: forged(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })},
		{name: "unsigned ID token", rewrite: oidcprovider.SignNone},
		{name: "HS256 ID token", rewrite: func(c map[string]any) string { return oidcprovider.SignHS256(c, []byte(opClientSecret)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := ""
			if tc.url != nil {
				u = tc.url(t)
			} else {
				e.op.RewriteIDTokens(tc.rewrite)
				defer e.op.RewriteIDTokens(nil)
				u = e.browserLogin(0, provJSON, "", "alice").String()
			}
			r := e.get(e.on(1, u))
			if r.status != http.StatusUnauthorized || r.detail(t) != "Authentication failure" {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

// withQuery sets key to value in u's query, or removes it if value is "".
func withQuery(u *url.URL, key, value string) string {
	q := u.Query()
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	c := *u
	c.RawQuery = q.Encode()
	return c.String()
}

func TestExternalRoutesOnlyForOIDCProviders(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, r := range []response{
		e.get(e.api(0, "provider/"+provPassword+"/authorize")),
		e.post(e.api(0, "provider/"+provPassword+"/authorize"), "", ""),
		e.get(e.api(0, "provider/"+provPassword+"/code?code=x&state=y")),
		e.get(e.api(0, "provider/nope/authorize")),
	} {
		if r.status != http.StatusNotFound {
			t.Errorf("%d %s", r.status, r.body)
		}
	}
}

// TestProviderUnreachableAtStart: the server starts, logins answer 503
// while the identity provider is down, and work once it is up, on every
// replica, without a restart.
func TestProviderUnreachableAtStart(t *testing.T) {
	e := newEnv(t, envOptions{opAddr: freeAddr(t)})
	for _, r := range []response{
		e.get(e.api(0, "provider/"+provJSON+"/authorize")),
		e.post(e.api(1, "provider/"+provJSON+"/authorize"), "", ""),
	} {
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("provider down: %d %v %s", r.status, r.header, r.body)
		}
	}
	e.startOP()
	back := e.browserLogin(1, provJSON, "", "alice")
	r := e.get(e.on(0, back.String()))
	if r.status != http.StatusOK {
		t.Fatalf("provider up: %d %s", r.status, r.body)
	}
	// Once known, a provider that goes away again makes the exchange 503.
	back = e.browserLogin(1, provJSON, "", "bob")
	e.op.Close()
	if r := e.get(back.String()); r.status != http.StatusServiceUnavailable {
		t.Fatalf("provider gone at exchange: %d %s", r.status, r.body)
	}
}

// TestCodeFlowFailuresInABrowser: a browser (Accept: text/html) that ends
// a failed sign-in on the code route gets a page saying so and what to do
// next, with the status scripts get: 401 for a refused login, 503 with
// Retry-After for a provider that stopped answering.
func TestCodeFlowFailuresInABrowser(t *testing.T) {
	e := newEnv(t, envOptions{})
	html := []string{"Accept", "text/html,application/xhtml+xml"}
	t.Run("declined", func(t *testing.T) {
		back, err := e.op.Deny(context.Background(), e.get(e.api(0, "provider/"+provJSON+"/authorize")).location(t).String())
		if err != nil {
			t.Fatal(err)
		}
		r := e.get(e.on(1, back.String()), html...)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Sign-in failed") ||
			!strings.Contains(r.body, `href="/login"`) || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("provider gone at the code exchange", func(t *testing.T) {
		back := e.browserLogin(0, provJSON, "", "alice")
		e.op.SetAvailable(false)
		defer e.op.SetAvailable(true)
		r := e.get(e.on(1, back.String()), html...)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
			!strings.Contains(r.body, msgUnavailable) || !strings.Contains(r.body, "Nothing was signed in.") {
			t.Fatalf("%d %v %s", r.status, r.header, r.body)
		}
	})
	t.Run("a script still gets JSON", func(t *testing.T) {
		back := e.browserLogin(0, provJSON, "", "alice")
		e.op.SetAvailable(false)
		defer e.op.SetAvailable(true)
		r := e.get(e.on(1, back.String()))
		if r.status != http.StatusServiceUnavailable || r.detail(t) != msgUnavailable {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}
