package authapi

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
)

// The device-code flow of terminals and notebooks.

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

var (
	deviceCodeRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	userCodeRE   = regexp.MustCompile(`^[` + userCodeAlphabet + `]{4}-[` + userCodeAlphabet + `]{4}$`)
)

// deviceStart is POST authorize on replica i.
func (e *env) deviceStart(i int) map[string]any {
	e.t.Helper()
	r := e.post(e.api(i, "provider/"+provJSON+"/authorize"), "", "")
	if r.status != http.StatusOK {
		e.t.Fatalf("device authorize: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

func (e *env) poll(i int, deviceCode string) response {
	return e.postJSON(e.api(i, "provider/"+provJSON+"/token"), map[string]string{"device_code": deviceCode, "grant_type": deviceGrant})
}

// deviceForm logs in as user at the start's authorization URI and opens the
// user-code form on replica i.
func (e *env) deviceForm(i int, start map[string]any, user string) map[string]string {
	e.t.Helper()
	back, err := e.op.Login(context.Background(), start["authorization_uri"].(string), user)
	if err != nil {
		e.t.Fatalf("login at the provider: %v", err)
	}
	r := e.get(e.on(i, back.String()))
	if r.status != http.StatusOK || !strings.Contains(r.body, `name="user_code"`) {
		e.t.Fatalf("device_code form: %d %s", r.status, r.body)
	}
	return r.hidden()
}

func (e *env) submitUserCode(i int, fields map[string]string, userCode string) response {
	v := url.Values{"user_code": {userCode}}
	for k, x := range fields {
		v.Set(k, x)
	}
	target := e.api(i, "provider/"+provJSON+"/device_code")
	if !v.Has(view.CSRFField) {
		// As a browser's form would: the token its CSRF cookie holds.
		u, _ := url.Parse(target)
		for _, ck := range e.client.Jar.Cookies(u) {
			if ck.Name == view.CSRFCookie {
				v.Set(view.CSRFField, ck.Value)
			}
		}
	}
	return e.postForm(target, v)
}

func TestDeviceFlowEndToEnd(t *testing.T) {
	forEachStore(t, deviceFlow)
}

// deviceFlow runs a device login from start to tokens, each step on the
// other replica than the step before.
func deviceFlow(t *testing.T, e *env) {
	start := e.deviceStart(0)
	dc, _ := start["device_code"].(string)
	uc, _ := start["user_code"].(string)
	if !deviceCodeRE.MatchString(dc) || !userCodeRE.MatchString(uc) || start["interval"] != float64(5) ||
		start["expires_in"] != float64(900) ||
		start["verification_uri"] != e.replicas[0].base+"/api/v1/auth/provider/"+provJSON+"/token" {
		t.Fatalf("device authorize answer %v", start)
	}
	au, err := url.Parse(start["authorization_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got := au.Query().Get("redirect_uri"); got != e.replicas[0].base+"/api/v1/auth/provider/"+provJSON+"/device_code" {
		t.Fatalf("redirect_uri %q", got)
	}
	if q := au.Query(); strings.Contains(q.Get("state"), dc) || strings.Contains(au.String(), strings.ReplaceAll(uc, "-", "")) {
		t.Fatal("the authorization URI must not carry the device or user code")
	}

	pending := e.poll(1, dc)
	if pending.status != http.StatusBadRequest || strings.TrimSpace(pending.body) != `{"detail":{"error":"authorization_pending"}}` {
		t.Fatalf("pending poll: %d %s", pending.status, pending.body)
	}

	// Every step on another replica than the one before.
	fields := e.deviceForm(1, start, "alice")
	if fields["code"] == "" || fields["state"] == "" {
		t.Fatalf("form fields %v", fields)
	}
	typed := strings.ToLower(strings.ReplaceAll(uc, "-", " "))
	done := e.submitUserCode(0, fields, typed)
	if done.status != http.StatusOK || !strings.Contains(done.body, "You have logged in with the test provider as alice.") ||
		!strings.Contains(done.body, "Within 5 seconds") {
		t.Fatalf("submit: %d %s", done.status, done.body)
	}
	if csp := done.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}

	got := e.poll(1, strings.ToUpper(dc))
	if got.status != http.StatusOK {
		t.Fatalf("poll: %d %s", got.status, got.body)
	}
	tok := got.json(t)
	ident, _ := tok["identity"].(map[string]any)
	if ident["id"] != "alice" || ident["provider"] != provJSON || len(tok["principal"].(string)) != 32 {
		t.Fatalf("tokens %v", tok)
	}
	access, _ := tok["access_token"].(string)
	if _, err := e.replicas[0].mgr.VerifyAccessToken(context.Background(), access); err != nil {
		t.Fatalf("access token: %v", err)
	}
	if who := e.get(e.api(0, "whoami"), "Authorization", "Bearer "+access); who.status != http.StatusOK {
		t.Fatalf("whoami: %d %s", who.status, who.body)
	}
	ref := e.postJSON(e.api(1, "session/refresh"), map[string]any{"refresh_token": tok["refresh_token"]})
	if ref.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", ref.status, ref.body)
	}

	// The device code yields tokens once.
	again := e.poll(0, dc)
	if again.status != http.StatusNotFound || again.detail(t) != "No such device_code. The pending request may have expired." {
		t.Fatalf("second poll: %d %s", again.status, again.body)
	}
	// And the form cannot be replayed.
	if r := e.submitUserCode(1, fields, uc); r.status != http.StatusUnauthorized {
		t.Fatalf("replayed form: %d %s", r.status, r.body)
	}
}

func TestDeviceWrongUserCode(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.deviceStart(0)
	fields := e.deviceForm(0, start, "bob")

	// Not even the shape of a user code: the same form may be sent again.
	r := e.submitUserCode(1, fields, "hello")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, msgInvalidUserCode) || r.hidden()["state"] != fields["state"] {
		t.Fatalf("malformed user code: %d %s", r.status, r.body)
	}
	// A well-formed code of no pending login: the form comes back with a
	// fresh state and without the provider's code, which is used up.
	r = e.submitUserCode(0, fields, "BBBB-BBBB")
	retry := r.hidden()
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, msgInvalidUserCode) ||
		retry["state"] == "" || retry["state"] == fields["state"] || retry["code"] != "" {
		t.Fatalf("wrong user code: %d %s", r.status, r.body)
	}
	if p := e.poll(0, start["device_code"].(string)); p.status != http.StatusBadRequest {
		t.Fatalf("still pending: %d %s", p.status, p.body)
	}
	r = e.submitUserCode(1, retry, start["user_code"].(string))
	if r.status != http.StatusOK {
		t.Fatalf("right user code after a wrong one: %d %s", r.status, r.body)
	}
	tok := e.poll(1, start["device_code"].(string))
	if tok.status != http.StatusOK {
		t.Fatalf("poll: %d %s", tok.status, tok.body)
	}
	// The wrong code opened no session at all: bob has exactly one.
	pid, err := uuid.Parse(tok.json(t)["principal"].(string))
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.store.ListSessions(context.Background(), pid)
	if err != nil || len(all) != 1 || all[0].RevokedAt != nil {
		t.Fatalf("sessions %+v, %v: want one, live", all, err)
	}
}

func TestDeviceUserCodeTriesBounded(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.deviceStart(0)
	fields := e.deviceForm(0, start, "alice")
	var r response
	for i := 1; i <= maxUserCodeTries; i++ {
		r = e.submitUserCode(i%2, fields, "BBBB-BBBB")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("try %d: %d %s", i, r.status, r.body)
		}
		if i < maxUserCodeTries {
			fields = r.hidden()
		}
	}
	if strings.Contains(r.body, `name="user_code"`) || !strings.Contains(r.body, msgStartAgain) {
		t.Fatalf("after %d wrong codes the form must not come back: %s", maxUserCodeTries, r.body)
	}
	if r := e.submitUserCode(0, fields, start["user_code"].(string)); r.status != http.StatusUnauthorized {
		t.Fatalf("the last state is used up: %d %s", r.status, r.body)
	}
}

func TestDeviceProviderFailures(t *testing.T) {
	e := newEnv(t, envOptions{})
	t.Run("declined at the provider", func(t *testing.T) {
		start := e.deviceStart(0)
		back, err := e.op.Deny(context.Background(), start["authorization_uri"].(string))
		if err != nil {
			t.Fatal(err)
		}
		r := e.get(e.on(1, back.String()))
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, msgProviderFailed) {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if p := e.poll(0, start["device_code"].(string)); p.status != http.StatusBadRequest {
			t.Fatalf("poll: %d %s", p.status, p.body)
		}
	})
	t.Run("forged ID token", func(t *testing.T) {
		start := e.deviceStart(0)
		e.op.RewriteIDTokens(func(c map[string]any) string { c["nonce"] = "other"; return e.op.SignRS256(c) })
		defer e.op.RewriteIDTokens(nil)
		fields := e.deviceForm(1, start, "alice")
		r := e.submitUserCode(0, fields, start["user_code"].(string))
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, msgProviderFailed) {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if p := e.poll(0, start["device_code"].(string)); p.status != http.StatusBadRequest {
			t.Fatalf("the pending login must stay pending: %d %s", p.status, p.body)
		}
	})
	t.Run("incomplete form link", func(t *testing.T) {
		r := e.get(e.api(0, "provider/"+provJSON+"/device_code?code=abc"))
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, msgStartAgain) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("made-up state", func(t *testing.T) {
		start := e.deviceStart(0)
		r := e.submitUserCode(0, map[string]string{"code": "c", "state": "made-up"}, start["user_code"].(string))
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, msgStartAgain) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("missing fields", func(t *testing.T) {
		r := e.postForm(e.api(0, "provider/"+provJSON+"/device_code"), url.Values{})
		want := `{"detail":[{"input":null,"loc":["body","user_code"],"msg":"Field required","type":"missing"},` +
			`{"input":null,"loc":["body","state"],"msg":"Field required","type":"missing"}]}`
		if r.status != http.StatusUnprocessableEntity || strings.TrimSpace(r.body) != want {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestDeviceFormEscapes(t *testing.T) {
	e := newEnv(t, envOptions{})
	evil := `"><script>alert(1)</script>`
	r := e.get(e.api(0, "provider/"+provJSON+"/device_code?code="+url.QueryEscape(evil)+"&state="+url.QueryEscape(evil)))
	if r.status != http.StatusOK || strings.Contains(r.body, "<script>") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := r.hidden(); got["code"] != evil || got["state"] != evil {
		t.Fatalf("fields %v", got)
	}
	if strings.Contains(r.body, "http://") || strings.Contains(r.body, "https://") {
		t.Fatal("the page must load nothing from elsewhere")
	}
	for k, want := range map[string]string{
		"Content-Type": "text/html; charset=UTF-8", "Cache-Control": "no-store",
		"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}

func TestDevicePoll(t *testing.T) {
	e := newEnv(t, envOptions{})
	tokenURL := e.api(0, "provider/"+provJSON+"/token")
	for _, tc := range []struct {
		name   string
		body   string
		status int
		detail string
	}{
		{"not hex", `{"device_code":"not-hex","grant_type":"` + deviceGrant + `"}`, 401, `"Invalid device code"`},
		{"odd hex", `{"device_code":"abc","grant_type":"` + deviceGrant + `"}`, 401, `"Invalid device code"`},
		{"unknown", `{"device_code":"` + strings.Repeat("ab", 32) + `","grant_type":"` + deviceGrant + `"}`, 404,
			`"No such device_code. The pending request may have expired."`},
		{"empty code", `{"device_code":"","grant_type":"x"}`, 404, `"No such device_code. The pending request may have expired."`},
		{"missing fields", `{}`, 422, `[{"input":null,"loc":["body","device_code"],"msg":"Field required","type":"missing"},` +
			`{"input":null,"loc":["body","grant_type"],"msg":"Field required","type":"missing"}]`},
		{"wrong type", `{"device_code":5,"grant_type":"x"}`, 422,
			`[{"input":null,"loc":["body","device_code"],"msg":"Input should be a valid string","type":"string_type"}]`},
		{"empty body", ``, 422, `[{"input":null,"loc":["body"],"msg":"Field required","type":"missing"}]`},
		{"not JSON", `device_code=ab`, 422, `[{"input":null,"loc":["body"],"msg":"JSON decode error","type":"json_invalid"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(tokenURL, "application/json", tc.body)
			if r.status != tc.status || strings.TrimSpace(r.body) != `{"detail":`+tc.detail+`}` {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

func TestDeviceCodeExpires(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.deviceStart(0)
	fields := e.deviceForm(1, start, "alice")
	e.clock.advance(deviceCodeTTL + time.Second)
	if r := e.poll(0, start["device_code"].(string)); r.status != http.StatusNotFound {
		t.Fatalf("expired poll: %d %s", r.status, r.body)
	}
	if r := e.submitUserCode(1, fields, start["user_code"].(string)); r.status != http.StatusUnauthorized {
		t.Fatalf("expired form: %d %s", r.status, r.body)
	}
}

// TestDeviceSessionRevokedBeforePoll: a session revoked between approval and
// the poll is not delivered.
func TestDeviceSessionRevokedBeforePoll(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.deviceStart(0)
	if r := e.submitUserCode(0, e.deviceForm(0, start, "alice"), start["user_code"].(string)); r.status != http.StatusOK {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	ps, _, err := e.store.ListPrincipals(ctx, identity.Page{Limit: 10})
	if err != nil || len(ps) != 1 {
		t.Fatalf("principals %v, %v", ps, err)
	}
	ss, err := e.store.ListSessions(ctx, ps[0].ID)
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions %v, %v", ss, err)
	}
	if err := e.store.RevokeSession(ctx, ss[0].ID, "revoked by an admin", time.Now()); err != nil {
		t.Fatal(err)
	}
	r := e.poll(1, start["device_code"].(string))
	if r.status != http.StatusUnauthorized || r.detail(t) != "Session has expired. Please re-authenticate." {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// TestDeviceFormCSRF: the user-code form must come back with its CSRF
// token and from this site. Refused, nothing is consumed: the form comes
// back (with a good token) and the same login completes after.
func TestDeviceFormCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.deviceStart(0)
	fields := e.deviceForm(0, start, "bob")
	userCode := start["user_code"].(string)
	good := fields[view.CSRFField]
	if good == "" {
		t.Fatalf("the form carries no CSRF token: %v", fields)
	}
	for _, tc := range []struct {
		name  string
		token string
		site  string
	}{
		{"no token", "", ""},
		{"token one character off", good[:len(good)-1] + string(good[len(good)-1]^1), ""},
		{"good token, posted from another site", good, "cross-site"},
		{"good token, posted from a sibling site", good, "same-site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{"user_code": {userCode}, "code": {fields["code"]}, "state": {fields["state"]}, view.CSRFField: {tc.token}}
			req, _ := http.NewRequest(http.MethodPost, e.api(0, "provider/"+provJSON+"/device_code"), strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			r := e.do(req)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, `name="user_code"`) || r.hidden()["state"] != fields["state"] {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if p := e.poll(0, start["device_code"].(string)); p.status != http.StatusBadRequest {
				t.Fatalf("a refused form must leave the login pending: %d %s", p.status, p.body)
			}
		})
	}
	if r := e.submitUserCode(1, fields, userCode); r.status != http.StatusOK {
		t.Fatalf("the same form with its token: %d %s", r.status, r.body)
	}
	if p := e.poll(1, start["device_code"].(string)); p.status != http.StatusOK {
		t.Fatalf("poll: %d %s", p.status, p.body)
	}
}
