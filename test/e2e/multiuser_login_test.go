package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

// TestMultiLogin: a password login for each password authenticator
// (dictionary, dummy, real PAM), the OIDC browser and device-code flows
// against a real OIDC provider, and the about document that lists them
// (spec sections 1, 4, 5; captures multiuser-login*.txt, multiuser-about.json).
func TestMultiLogin(t *testing.T) {
	t.Parallel()
	pam := newPAMAccount(t) // one account and service for both backends
	forEachBackend(t, func(t *testing.T, db backend) {
		port := freePort(t)
		op := startOIDC(t, port)
		cfg := muConfig(db)
		addProvider(cfg, map[string]any{"provider": provDummy, "authenticator": "tiled.authenticators:DummyAuthenticator"})
		if pam.skip == "" {
			addProvider(cfg, map[string]any{"provider": provPAM, "authenticator": "tiled.authenticators:PAMAuthenticator",
				"args": map[string]any{"service": pam.service}})
		}
		addProvider(cfg, oidcProviderConfig(op))
		s := startMUAt(t, port, cfg)

		t.Run("about", func(t *testing.T) { t.Parallel(); checkMultiAbout(t, s, pam.skip == "") })
		t.Run("dictionary", func(t *testing.T) { t.Parallel(); checkDictionaryLogins(t, s) })
		t.Run("wrong credentials", func(t *testing.T) { t.Parallel(); checkWrongCredentials(t, s, pam) })
		t.Run("malformed login requests", func(t *testing.T) { t.Parallel(); checkMalformedLogins(t, s) })
		t.Run("dummy", func(t *testing.T) {
			t.Parallel()
			c := s.client(t)
			for _, u := range []string{"anyone", "alice"} {
				tp := checkLoginTokens(t, c.login(provDummy, u, "whatever "+u), provDummy, u)
				expectAt(t, whoami(t, c, bearer(tp.Access)), dashedUUID(tp.Principal), "uuid")
			}
		})
		t.Run("pam", func(t *testing.T) {
			t.Parallel()
			if suite.noPAM != "" {
				checkPAMRefused(t, db)
				return
			}
			pam.require(t)
			c := s.client(t)
			tp := checkLoginTokens(t, c.login(provPAM, pam.user, pam.password), provPAM, pam.user)
			me := whoami(t, c, bearer(tp.Access))
			expectAt(t, me, pam.user, "identities", 0, "id")
			expectAt(t, me, provPAM, "identities", 0, "provider")
		})
		t.Run("oidc code flow", func(t *testing.T) { t.Parallel(); checkOIDCCodeFlow(t, op, s) })
		t.Run("oidc device flow", func(t *testing.T) { t.Parallel(); checkOIDCDeviceFlow(t, op, s) })
	})
}

// checkMultiAbout: the about document lists each provider with its mode and
// login link, and the session links, as in multiuser-about.json.
func checkMultiAbout(t *testing.T, s *server, withPAM bool) {
	tiled := captureBody(t, "multiuser-about.json")
	tiledAuth, _ := at(tiled, "authentication")
	tiledProvider, _ := at(tiledAuth, "providers", 0)
	c := s.client(t)
	about, ok := c.getObject("/api/v1/", nil)
	if !ok {
		return
	}
	expectAt(t, about, true, "authentication", "required")
	// The session links are Tiled's, on our host.
	tiledLinks, _ := at(tiledAuth, "links")
	wantLinks, _ := decodeBytes([]byte(strings.ReplaceAll(compactJSON(t, tiledLinks), "http://127.0.0.1:8193", s.base)))
	expectAt(t, about, wantLinks, "authentication", "links")

	type want struct{ name, mode, leaf string }
	wants := []want{{provToy, "internal", "token"}, {provDummy, "internal", "token"}}
	if withPAM {
		wants = append(wants, want{provPAM, "internal", "token"})
	}
	wants = append(wants, want{provIdP, "external", "authorize"})
	providers := func(t *testing.T, about map[string]any) []any {
		v, _ := at(about, "authentication", "providers")
		list, _ := v.([]any)
		if len(list) != len(wants) {
			t.Fatalf("providers %s, want %d of them", compact(v), len(wants))
		}
		return list
	}
	check := func(t *testing.T, about map[string]any, oldClient bool) {
		list := providers(t, about)
		for i, w := range wants {
			mode := w.mode
			if oldClient && mode == "internal" {
				mode = "password" // clients before 0.1.0b17 (spec section 1)
			}
			expectAt(t, list[i], w.name, "provider")
			expectAt(t, list[i], mode, "mode")
			expectAt(t, list[i], s.base+"/api/v1/auth/provider/"+w.name+"/"+w.leaf, "links", "auth_endpoint")
		}
		expectAt(t, list[0], "", "confirmation_message")
		expectAt(t, list[len(list)-1], "You have logged in with the test provider as {id}.", "confirmation_message")
	}
	check(t, about, false)
	t.Run("old python-tiled", func(t *testing.T) {
		if old, ok := c.getObject("/api/v1/", hdr("User-Agent", "python-tiled/0.1.0b16")); ok {
			check(t, old, true)
		}
	})
	t.Run("provider members as Tiled's", func(t *testing.T) {
		for i, p := range providers(t, about) {
			if d := shapeDiff(fmt.Sprintf("providers[%d]", i), tiledProvider, p); len(d) > 0 {
				t.Errorf("provider entry differs from Tiled's (multiuser-about.json):\n%s", strings.Join(d, "\n"))
			}
		}
	})
}

func compactJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkLoginTokens checks a login's token JSON against multiuser-login.txt
// and the spec: identity, principal as 32 hex, bearer, Tiled's lifetimes,
// and an access token whose claims name the same principal and identity.
func checkLoginTokens(t *testing.T, r reply, provider, id string) tokenPair {
	t.Helper()
	return checkTokenJSON(t, r, provider, id, 0)
}

// checkTokenJSON is checkLoginTokens with refresh_token_expires_in allowed
// to be up to slack seconds short of refresh_token_max_age.
func checkTokenJSON(t *testing.T, r reply, provider, id string, slack float64) tokenPair {
	t.Helper()
	tp := tokensOf(t, r)
	expectShape(t, "multiuser-login.txt", tp.Body)
	expectAt(t, tp.Body, map[string]any{"id": id, "provider": provider}, "identity")
	expectAt(t, tp.Body, "bearer", "token_type")
	expectNumberAt(t, tp.Body, 900, "expires_in")
	if v, ok := number(tp.Body["refresh_token_expires_in"]); !ok || v > 604800 || v < 604800-slack {
		t.Errorf("refresh_token_expires_in = %s, want 604800 (at most %v less)", compact(tp.Body["refresh_token_expires_in"]), slack)
	}
	if !hex32RE.MatchString(tp.Principal) {
		t.Errorf("principal %q, want 32 lower-case hex characters", tp.Principal)
	}
	// HS256 with secret_keys[0], as Tiled signs them: a Tiled service
	// sharing the secret accepts them.
	if _, err := jwt.Parse(tp.Access, func(*jwt.Token) (any, error) { return []byte(muSecretKey), nil },
		jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Errorf("access token does not verify as HS256 with secret_keys[0]: %v", err)
	}
	claims := jwtClaims(t, tp.Access)
	expectAt(t, claims, tp.Principal, "sub")
	expectAt(t, claims, "user", "sub_typ")
	expectAt(t, claims, "access", "type")
	expectAt(t, claims, []any{map[string]any{"id": id, "idp": provider}}, "ids")
	if exp, ok := number(claims["exp"]); !ok || exp < float64(time.Now().Add(800*time.Second).Unix()) ||
		exp > float64(time.Now().Add(1000*time.Second).Unix()) {
		t.Errorf("access token exp %v, want about 900 s from now", claims["exp"])
	}
	if !slices.Contains(stringsAt(claims, "scp"), "read:metadata") {
		t.Errorf("access token scopes %v lack read:metadata", claims["scp"])
	}
	return tp
}

func expectNumberAt(t *testing.T, v any, want float64, path ...any) {
	t.Helper()
	got, _ := at(v, path...)
	if n, ok := number(got); !ok || n != want {
		t.Errorf("%s = %s, want %v", pathString(path), compact(got), want)
	}
}

// jwtClaims decodes (without verifying) the claims of a JWT.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	v, err := decodeBytes(raw)
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	m, _ := v.(map[string]any)
	return m
}

// checkDictionaryLogins: each user gets a token JSON; a user's logins share
// one principal, users have different ones; the access token reads the
// tree exactly as Tiled's did (multiuser-metadata-bearer.txt).
func checkDictionaryLogins(t *testing.T, s *server) {
	c := s.client(t)
	principals := map[string]string{}
	for _, u := range []string{"alice", "bob", "cara"} {
		tp := checkLoginTokens(t, c.login(provToy, u, muPasswords[u]), provToy, u)
		again := checkLoginTokens(t, c.login(provToy, u, muPasswords[u]), provToy, u)
		if again.Principal != tp.Principal {
			t.Errorf("%s: second login has principal %s, first %s", u, again.Principal, tp.Principal)
		}
		if again.Refresh == tp.Refresh || again.Access == tp.Access {
			t.Errorf("%s: two logins got the same tokens", u)
		}
		for other, p := range principals {
			if p == tp.Principal {
				t.Errorf("%s and %s share principal %s", u, other, p)
			}
		}
		principals[u] = tp.Principal
		replay(t, s, muCapture("multiuser-metadata-bearer.txt"), recordedAliceAccess, tp.Access)
	}
	// The grant_type of the OAuth2 password form is accepted.
	r := c.postForm("/api/v1/auth/provider/toy/token", nil, url.Values{
		"username": {"bob"}, "password": {muPasswords["bob"]}, "grant_type": {"password"},
	})
	checkLoginTokens(t, r, provToy, "bob")
}

// recordedAliceAccess is the access token in the multi-user captures.
const recordedAliceAccess = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhMTJiMmMwNzY0MGQ0Nzk5YjVlNzMxMjRlNTViMjNjMCIsInN1Yl90eXAiOiJ1c2VyIiwic2NwIjpbInJlYWQ6ZGF0YSIsInJlZ2lzdGVyIiwid3JpdGU6cHJpbmNpcGFscyIsInJlYWQ6cHJpbmNpcGFscyIsImNyZWF0ZTpub2RlIiwibWV0cmljcyIsImNyZWF0ZTphcGlrZXlzIiwid3JpdGU6ZGF0YSIsIndyaXRlOm1ldGFkYXRhIiwiZGVsZXRlOm5vZGUiLCJyZWFkOndlYmhvb2tzIiwid3JpdGU6d2ViaG9va3MiLCJhZG1pbjphcGlrZXlzIiwiZGVsZXRlOnJldmlzaW9uIiwicmVhZDptZXRhZGF0YSIsInJldm9rZTphcGlrZXlzIl0sInN0YXRlIjp7fSwiaWRzIjpbeyJpZCI6ImFsaWNlIiwiaWRwIjoidG95In1dLCJleHAiOjE3OTU1OTQzMjcsInR5cGUiOiJhY2Nlc3MifQ.NENeXfyjEeP0UB_MFYPGxpJ6BneRvA2LJ-jwcvr2KqY"

// checkWrongCredentials: every refused password is Tiled's 401 with
// WWW-Authenticate: Bearer, whichever part was wrong.
func checkWrongCredentials(t *testing.T, s *server, pam pamAccount) {
	cases := []struct{ name, provider, user, password string }{
		{"capture: alice with password nope", provToy, "alice", "nope"},
		{"wrong password", provToy, "bob", "nope"},
		{"unknown user", provToy, "mallory", "secret1"},
		{"another user's password", provToy, "cara", muPasswords["alice"]},
		{"empty password", provToy, "bob", ""},
	}
	if pam.skip == "" {
		cases = append(cases,
			struct{ name, provider, user, password string }{"pam wrong password", provPAM, pam.user, pam.password + "x"},
			struct{ name, provider, user, password string }{"pam unknown user", provPAM, pam.user + "none", pam.password})
	}
	c := s.client(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectCaptured(t, c.login(tc.provider, tc.user, tc.password), "multiuser-login-wrong-password.txt")
		})
	}
}

// expectCaptured compares an answer with a capture's, for requests that
// replay cannot re-issue (the capture reader keeps one -d of curl's form
// fields): status, WWW-Authenticate and the JSON body, exactly.
func expectCaptured(t *testing.T, r reply, capture string) {
	t.Helper()
	c := loadCapture(t, muCapture(capture))
	if r.Status != c.status {
		t.Errorf("status %d, Tiled %d (%s): %s", r.Status, c.status, capture, r)
		return
	}
	if want := c.resp.Get("Www-Authenticate"); r.Header.Get("Www-Authenticate") != want {
		t.Errorf("WWW-Authenticate %q, Tiled %q (%s)", r.Header.Get("Www-Authenticate"), want, capture)
	}
	want, err := decodeBytes(c.rbody)
	if err != nil {
		t.Fatalf("%s: %v", capture, err)
	}
	got, err := decodeBytes(r.Body)
	if err != nil {
		t.Errorf("body is not JSON: %s", r)
		return
	}
	if d := jsonDiff("body", want, got); len(d) > 0 {
		t.Errorf("body differs from Tiled's (%s):\n%s", capture, strings.Join(d, "\n"))
	}
}

// checkMalformedLogins: FastAPI's 422 shapes, and unknown providers.
func checkMalformedLogins(t *testing.T, s *server) {
	replay(t, s, muCapture("multiuser-login-json-body.txt"), "", "")
	c := s.client(t)
	r := c.postForm("/api/v1/auth/provider/toy/token", nil, url.Values{"username": {"alice"}})
	expectStatus(t, r, http.StatusUnprocessableEntity)
	expectAt(t, object(t, r), []any{"body", "password"}, "detail", 0, "loc")
	expectDetail(t, c.login("nosuchprovider", "alice", "x"), http.StatusNotFound, "Not Found")
	// Password providers have no external routes (Tiled mounts one or the other).
	expectStatus(t, c.get("/api/v1/auth/provider/toy/authorize", nil), http.StatusNotFound)
}

// checkOIDCCodeFlow: the browser flow, then what must fail: the same
// answer of the provider twice, a login the person declined, and a code
// brought by a browser that did not begin the login.
func checkOIDCCodeFlow(t *testing.T, op *oidcprovider.Provider, s *server) {
	c := jarClient(t, s)
	r := oidcCodeLogin(t, op, c, s, s, "alice")
	tp := checkLoginTokens(t, r, provIdP, "alice")
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token answer Cache-Control %q, want no-store", cc)
	}
	me := whoami(t, c, bearer(tp.Access))
	expectAt(t, me, "alice", "identities", 0, "id")
	expectAt(t, me, provIdP, "identities", 0, "provider")
	// The OIDC alice is not the dictionary alice.
	if dict := mustLogin(t, s.client(t), "alice"); dict.Principal == tp.Principal {
		t.Errorf("idp/alice and toy/alice share principal %s", tp.Principal)
	}
	// A second OIDC login of the same person finds the same principal.
	again := checkLoginTokens(t, oidcCodeLogin(t, op, jarClient(t, s), s, s, "alice"), provIdP, "alice")
	if again.Principal != tp.Principal {
		t.Errorf("second OIDC login: principal %s, first %s", again.Principal, tp.Principal)
	}

	t.Run("code replayed", func(t *testing.T) {
		c := jarClient(t, s)
		loc := oidcAuthorize(t, c, s)
		dest, err := op.Login(testCtx(t), loc, "bob")
		if err != nil {
			t.Fatal(err)
		}
		checkLoginTokens(t, c.get(dest.String(), nil), provIdP, "bob")
		expectDetail(t, c.get(dest.String(), nil), http.StatusUnauthorized, "Authentication failure")
	})
	t.Run("declined at the provider", func(t *testing.T) {
		c := jarClient(t, s)
		dest, err := op.Deny(testCtx(t), oidcAuthorize(t, c, s))
		if err != nil {
			t.Fatal(err)
		}
		if dest.Query().Get("error") != "access_denied" {
			t.Fatalf("provider redirect %s carries no error=access_denied", dest)
		}
		expectDetail(t, c.get(dest.String(), nil), http.StatusUnauthorized, "Authentication failure")
	})
	t.Run("other browser", func(t *testing.T) {
		c := jarClient(t, s)
		dest, err := op.Login(testCtx(t), oidcAuthorize(t, c, s), "bob")
		if err != nil {
			t.Fatal(err)
		}
		// Without the tiled_oidc_* cookie of the browser that began it.
		expectDetail(t, jarClient(t, s).get(dest.String(), nil), http.StatusUnauthorized, "Authentication failure")
	})
}

// oidcAuthorize is GET authorize on s: a 307 to the provider with Tiled's
// parameters and a cookie binding the login to this browser. It returns
// the provider URL.
func oidcAuthorize(t *testing.T, c *client, s *server) string {
	t.Helper()
	r := c.on(s).get("/api/v1/auth/provider/"+provIdP+"/authorize", nil)
	if !expectStatus(t, r, http.StatusTemporaryRedirect) {
		t.FailNow()
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", r.Header.Get("Location"), err)
	}
	q := loc.Query()
	for k, want := range map[string]string{
		"client_id": oidcClientID, "response_type": "code",
		"redirect_uri": s.base + "/api/v1/auth/provider/" + provIdP + "/code",
	} {
		if q.Get(k) != want {
			t.Errorf("authorize redirect %s=%q, want %q", k, q.Get(k), want)
		}
	}
	if sc := strings.Fields(q.Get("scope")); !slices.Contains(sc, "openid") || !slices.Contains(sc, "offline_access") {
		t.Errorf("authorize redirect scope %q, want openid and offline_access", q.Get("scope"))
	}
	bound := false
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		bound = bound || (strings.HasPrefix(ck.Name, "tiled_oidc_") && ck.HttpOnly)
	}
	if !bound {
		t.Errorf("authorize set no HttpOnly tiled_oidc_* cookie: %q", r.Header.Values("Set-Cookie"))
	}
	return loc.String()
}

// oidcCodeLogin runs the browser flow as user: authorize on one replica,
// the provider's redirect back delivered to another (same cookies).
func oidcCodeLogin(t *testing.T, op *oidcprovider.Provider, c *client, authorizeOn, codeOn *server, user string) reply {
	t.Helper()
	dest, err := op.Login(testCtx(t), oidcAuthorize(t, c, authorizeOn), user)
	if err != nil {
		t.Fatalf("log in at the provider: %v", err)
	}
	if want := authorizeOn.base + "/api/v1/auth/provider/" + provIdP + "/code"; !strings.HasPrefix(dest.String(), want+"?") {
		t.Fatalf("provider redirected to %s, want %s?...", dest, want)
	}
	dest.Host = strings.TrimPrefix(codeOn.base, "http://")
	return c.on(codeOn).get(dest.String(), nil)
}

// checkOIDCDeviceFlow: the device-code flow end to end, with a mistyped
// user code on the way, then the consumed and malformed device codes.
func checkOIDCDeviceFlow(t *testing.T, op *oidcprovider.Provider, s *server) {
	c := jarClient(t, s)
	r, deviceCode := oidcDeviceLogin(t, op, c, s, s, s, "dora")
	// The device's poll comes after the person typed the code: the
	// session's refresh deadline counts from then (Tiled reports the
	// configured maximum on every issue; the client does not read it).
	tp := checkTokenJSON(t, r, provIdP, "dora", 60)
	expectAt(t, whoami(t, c, bearer(tp.Access)), "dora", "identities", 0, "id")
	poll := func(code string) reply {
		return c.postJSON("/api/v1/auth/provider/"+provIdP+"/token", nil,
			map[string]string{"device_code": code, "grant_type": "urn:ietf:params:oauth:grant-type:device_code"})
	}
	expectDetail(t, poll(deviceCode), http.StatusNotFound, "No such device_code. The pending request may have expired.")
	expectDetail(t, poll("not-hex"), http.StatusUnauthorized, "Invalid device code")
	expectDetail(t, poll(strings.Repeat("0", 64)), http.StatusNotFound, "No such device_code. The pending request may have expired.")
}

var (
	userCodeRE    = regexp.MustCompile(`^[A-Z]{4}-[A-Z]{4}$`)
	hiddenStateRE = regexp.MustCompile(`name="state" value="([^"]*)"`)
	hiddenCodeRE  = regexp.MustCompile(`name="code" value="([^"]*)"`)
	hiddenCSRFRE  = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
)

// oidcDeviceLogin runs the device-code flow as user, each step on the
// replica of the caller's choice: start, the person's browser (the
// provider's redirect and the user-code form), and the device's polls. It
// returns the final poll's answer and the device code.
func oidcDeviceLogin(t *testing.T, op *oidcprovider.Provider, c *client, startOn, formOn, pollOn *server, user string) (reply, string) {
	t.Helper()
	base := "/api/v1/auth/provider/" + provIdP
	r := c.on(startOn).do(http.MethodPost, base+"/authorize", nil, nil)
	if !expectStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	start := object(t, r)
	str := func(k string) string { s, _ := start[k].(string); return s }
	deviceCode, userCode := str("device_code"), str("user_code")
	if !hex64RE.MatchString(deviceCode) {
		t.Errorf("device_code %q, want 64 hex characters", deviceCode)
	}
	if !userCodeRE.MatchString(userCode) {
		t.Errorf("user_code %q, want ABCD-EFGH", userCode)
	}
	expectAt(t, start, startOn.base+base+"/token", "verification_uri")
	expectNumberAt(t, start, 5, "interval")
	expectNumberAt(t, start, 900, "expires_in")
	if want := []string{"authorization_uri", "device_code", "expires_in", "interval", "user_code", "verification_uri"}; !slices.Equal(sortedKeys(start), want) {
		t.Errorf("device authorization members %v, want %v", sortedKeys(start), want)
	}

	pollReq := func() reply {
		return c.on(pollOn).postJSON(base+"/token", nil,
			map[string]string{"device_code": deviceCode, "grant_type": "urn:ietf:params:oauth:grant-type:device_code"})
	}
	pending := pollReq()
	if expectStatus(t, pending, http.StatusBadRequest) {
		expectAt(t, object(t, pending), map[string]any{"error": "authorization_pending"}, "detail")
	}

	dest, err := op.Login(testCtx(t), str("authorization_uri"), user)
	if err != nil {
		t.Fatalf("log in at the provider: %v", err)
	}
	if want := startOn.base + base + "/device_code"; !strings.HasPrefix(dest.String(), want+"?") {
		t.Fatalf("provider redirected to %s, want %s?...", dest, want)
	}
	dest.Host = strings.TrimPrefix(formOn.base, "http://")
	form := c.on(formOn).get(dest.String(), nil)
	if !expectStatus(t, form, http.StatusOK) {
		t.FailNow()
	}
	code, state, token := hiddenField(t, form, hiddenCodeRE), hiddenField(t, form, hiddenStateRE), hiddenField(t, form, hiddenCSRFRE)

	// A mistyped code is refused with the form again (a fresh state).
	wrong := "BCDF-GHJK"
	if wrong == userCode {
		wrong = "KJHG-FDCB"
	}
	r = c.on(startOn).submitPage(base+"/device_code", url.Values{"code": {code}, "state": {state}, "csrf": {token}, "user_code": {wrong}})
	if expectStatus(t, r, http.StatusUnauthorized) && !strings.Contains(string(r.Body), "Invalid user code") {
		t.Errorf("wrong user code page does not say so: %s", r)
	}
	code, state, token = hiddenField(t, r, hiddenCodeRE), hiddenField(t, r, hiddenStateRE), hiddenField(t, r, hiddenCSRFRE)
	if pending := pollReq(); expectStatus(t, pending, http.StatusBadRequest) {
		expectAt(t, object(t, pending), map[string]any{"error": "authorization_pending"}, "detail")
	}
	// Typed in lower case without the dash: normalized, as Tiled does.
	typed := strings.ToLower(strings.ReplaceAll(userCode, "-", ""))
	r = c.on(startOn).submitPage(base+"/device_code", url.Values{"code": {code}, "state": {state}, "csrf": {token}, "user_code": {typed}})
	if expectStatus(t, r, http.StatusOK) {
		if want := "You have logged in with the test provider as " + user + "."; !strings.Contains(string(r.Body), want) {
			t.Errorf("success page lacks the confirmation message %q: %s", want, r)
		}
	}
	// The tokens come with the next poll; the session began when the
	// person typed the code, so its refresh deadline is already running.
	return pollReq(), deviceCode
}

// submitPage posts a form whose answer is an HTML page (the device-code
// pages answer errors as pages, not JSON); it must not be a server error.
func (c *client) submitPage(path string, form url.Values) reply {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.s.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	r := reply{Method: http.MethodPost, URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}
	if r.Status >= 500 {
		c.t.Errorf("server error: %s", r)
	}
	if mt := mediaType(r.Header); mt != "text/html" {
		c.t.Errorf("device-code page has Content-Type %q, want text/html: %s", r.Header.Get("Content-Type"), r)
	}
	return r
}

func hiddenField(t *testing.T, r reply, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no hidden field %s in the page: %s", re, r)
	}
	return html.UnescapeString(string(m[1]))
}

// checkPAMRefused: a binary that cannot use PAM on this host refuses a pam
// provider at start and in check-config, with the reason and exit status 1,
// rather than failing at the first login.
func checkPAMRefused(t *testing.T, db backend) {
	cfg := muConfig(newBackend(t, db.name)) // not the database the other server holds
	addProvider(cfg, map[string]any{"provider": provPAM, "authenticator": "tiled.authenticators:PAMAuthenticator",
		"args": map[string]any{"service": "login"}})
	path := writeConfig(t, cfg)
	want := "authentication.providers[" + provPAM + "]: " + suite.noPAM
	for _, args := range [][]string{
		{"serve", "config", path, "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t))},
		{"check-config", path},
	} {
		code, stdout, stderr := runCLI(t, muEnv(), args...)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("server %s: exit %d, want 1 with %q on stderr; stdout:\n%s\nstderr:\n%s", args[0], code, want, stdout, stderr)
		}
	}
}

// pamAccount is a local account and a dedicated PAM service for it, made
// for the test (root only) and removed when it ends.
type pamAccount struct {
	service, user, password string
	skip                    string // why there is none
}

// require skips the test loudly without an account (fails under CI=true).
func (p pamAccount) require(t *testing.T) {
	t.Helper()
	if p.skip == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(p.skip + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip("SKIPPING REAL PAM LOGIN: " + p.skip)
}

func newPAMAccount(t *testing.T) pamAccount {
	t.Helper()
	if suite.noPAM != "" {
		return pamAccount{skip: "this binary cannot use PAM here: " + suite.noPAM}
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to create an account and an /etc/pam.d file)")
	}
	for _, tool := range []string{"useradd", "chpasswd", "userdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return pamAccount{skip: "real PAM login needs " + strings.Join(missing, ", ")}
	}
	p := pamAccount{service: "tiled-e2e-" + randomHex(t, 4), user: "tiled_e2e_" + randomHex(t, 4), password: randomHex(t, 12)}
	path := filepath.Join("/etc/pam.d", p.service)
	// pam_unix alone, without the failure delay of the system stacks.
	stack := "auth     required pam_unix.so nodelay\naccount  required pam_unix.so\n"
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	})
	if err := runShadowTool("", "useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", p.user); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := runShadowTool("", "userdel", "--force", p.user); err != nil {
			t.Error(err)
		}
	})
	if err := runShadowTool(p.user+":"+p.password+"\n", "chpasswd"); err != nil {
		t.Fatal(err)
	}
	return p
}

// runShadowTool runs useradd/chpasswd/userdel, retrying while another
// process (a PAM unit test) holds the lock on /etc/passwd.
func runShadowTool(stdin, name string, args ...string) error {
	var out []byte
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err = cmd.CombinedOutput(); err == nil {
			return nil
		}
		if !strings.Contains(strings.ToLower(string(out)), "lock") {
			break
		}
		time.Sleep(100 * time.Millisecond) // retry interval, bounded by the attempts
	}
	return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
}
