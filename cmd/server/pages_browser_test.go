package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

// The pages, driven in headless Chromium as a person uses them: sign in
// with a password and through a real OIDC provider, confirm a device-code
// login a script started, end a session and an API key and watch a script
// be refused. Each page is saved as a screenshot (desktop and phone width)
// in $ARTIFACTS_DIR/pages, else a temporary directory the log names.
// UPDATE_README_SCREENSHOTS=1 also refreshes the README's images.

// pagesSite is one server and one identity provider for the browser tests.
type pagesSite struct {
	t    *testing.T
	base string
	idp  *oidcprovider.Provider
	shot string // screenshot directory
	exe  string
}

func startPagesSite(t *testing.T) *pagesSite {
	t.Helper()
	exe, ln, base := browserTest(t)
	cb := base + "/api/v1/auth/provider/idp/"
	idp := oidcprovider.Start(t, oidcprovider.Options{
		ClientID: "tiled", ClientSecret: "oidc-secret", Users: []string{"carol", "dan"},
		RedirectURIs: []string{cb + "code", cb + "device_code"},
	})
	yml := fmt.Sprintf(`
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
authentication:
  secret_keys: [browser-test-secret-key-0123456789]
  tiled_admins: [{provider: toy, id: alice}]
  providers:
    - provider: toy
      authenticator: tiled.authenticators:DictionaryAuthenticator
      args: {users_to_passwords: {alice: alice-pw, bob: bob-pw}}
    - provider: idp
      authenticator: tiled.authenticators:OIDCAuthenticator
      args:
        client_id: tiled
        client_secret: oidc-secret
        well_known_uri: %q
        confirmation_message: "You have logged in with idp as {id}."
database:
  uri: sqlite:///%s
  init_if_not_exists: true
`, idp.WellKnownURI(), filepath.Join(t.TempDir(), "auth.db"))
	serveOn(t, ln, yml)
	return &pagesSite{t: t, base: base, idp: idp, shot: screenshotDir(t), exe: exe}
}

// serveOn serves the replica a config makes on ln until the test ends.
func serveOn(t *testing.T, ln net.Listener, yml string) {
	t.Helper()
	a, err := assembleConfig(t, yml, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: a.server.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
}

// screenshotDir is $ARTIFACTS_DIR/pages, else a directory the test removes.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "pages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of the pages: %s", dir)
	return dir
}

// browser is one person's browser (its own cookies), with what it logged:
// a page that breaks its own CSP or throws shows up here.
type browser struct {
	site *pagesSite
	ctx  context.Context
	mu   sync.Mutex
	logs []string
}

func (s *pagesSite) browser() *browser {
	s.t.Helper()
	ctx, cancel := headlessBrowser(context.Background(), s.exe, chromedp.WindowSize(1100, 900))
	s.t.Cleanup(cancel)
	b := &browser{site: s, ctx: ctx}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		s.t.Fatalf("start the browser: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A page answered with an error status is logged as a failed
			// load; what matters is anything else (CSP refusals, script
			// errors). That the stylesheet loads is checked on each page.
			if m.IsException() || (m.Type == chromedp.ConsoleError && !strings.HasPrefix(m.Text, "Failed to load resource: the server responded")) {
				b.mu.Lock()
				b.logs = append(b.logs, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// run runs steps with a deadline, failing the test with the page's text.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.site.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		text, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		b.site.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, text)
	}
}

// get runs one action that answers a value.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.site.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.site.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (b *browser) text(sel string) string {
	b.site.t.Helper()
	return get(b, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func (b *browser) location() string {
	b.site.t.Helper()
	return get(b, "location", chromedp.Location())
}

func (b *browser) count(sel string) int {
	b.site.t.Helper()
	return get(b, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

// page checks what every page must be, then saves it: no CSP violation or
// script error, no horizontal scrolling at a phone's width (360 x 740), and
// a screenshot of each width.
func (b *browser) page(name string) {
	t := b.site.t
	t.Helper()
	if !get(b, "stylesheet", chromedp.Evaluate[bool](`getComputedStyle(document.querySelector("header")).display === "flex"`)) {
		t.Errorf("page %s: the stylesheet did not load", name)
	}
	for _, size := range []struct {
		suffix string
		w, h   int64
	}{{"", 1100, 900}, {"-phone", 360, 740}} {
		b.run("viewport "+name, chromedp.EmulateViewport(size.w, size.h))
		if get(b, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)) {
			t.Errorf("page %s scrolls sideways at %dx%d", name, size.w, size.h)
		}
		png := get(b, "screenshot "+name, chromedp.FullScreenshot(100))
		file := filepath.Join(b.site.shot, name+size.suffix+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		if os.Getenv("UPDATE_README_SCREENSHOTS") == "1" && (name == "signin" || name == "account") {
			if err := os.WriteFile(filepath.Join("..", "..", "docs", "images", "page-"+name+size.suffix+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.run("desktop width", chromedp.EmulateViewport(1100, 900))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.logs {
		t.Errorf("page %s: the browser logged %s", name, l)
	}
	b.logs = nil
}

// signIn signs in with the password form using the keyboard alone: type,
// Tab, type, Enter.
func (b *browser) signIn(user, password string) {
	b.site.t.Helper()
	b.run("password sign-in",
		chromedp.Navigate(b.site.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#username-toy`)),
		chromedp.Focus(chromedp.CSS(`#username-toy`)),
		chromedp.KeyEvent(user),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent(password),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`#principal-id`)),
	)
}

// cookies are the browser's cookies for the site.
func (b *browser) cookies() map[string]*network.Cookie {
	b.site.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.site.base + "/account"}})
	if err != nil {
		b.site.t.Fatalf("cookies: %v", err)
	}
	got := res.Cookies
	out := map[string]*network.Cookie{}
	for _, c := range got {
		out[c.Name] = c
	}
	return out
}

// api is a script's request to the API.
func (s *pagesSite) api(method, path string, h http.Header, body string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (s *pagesSite) scriptLogin(user, password string) (access string) {
	s.t.Helper()
	st, out := s.api(http.MethodPost, "/api/v1/auth/provider/toy/token",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		url.Values{"username": {user}, "password": {password}}.Encode())
	if st != http.StatusOK {
		s.t.Fatalf("script login: %d %v", st, out)
	}
	return out["access_token"].(string)
}

func bearerHeader(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestPagesPasswordSignInSessionsAndKeys(t *testing.T) {
	s := startPagesSite(t)
	b := s.browser()

	// Signed out, the account page sends the browser to sign in.
	b.run("signed-out visit",
		chromedp.Navigate(s.base+"/account/principals"),
		chromedp.WaitVisible(chromedp.CSS(`#username-toy`)),
	)
	if loc := b.location(); loc != s.base+"/login?next=%2Faccount%2Fprincipals" {
		t.Errorf("signed-out visit landed on %s", loc)
	}
	b.run("landing", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)))
	b.page("landing")
	b.run("sign-in page", chromedp.Click(chromedp.CSS(`a[href="/login"]`)), chromedp.WaitVisible(chromedp.CSS(`#continue-idp`)))
	b.page("signin")

	// A wrong password is said plainly, on the form, with the name kept.
	b.run("wrong password",
		chromedp.SendKeys(chromedp.CSS(`#username-toy`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password-toy`), "nope"),
		chromedp.Submit(chromedp.CSS(`#password-toy`)),
		chromedp.WaitVisible(chromedp.CSS(`.error`)),
	)
	if msg := b.text(".error"); !strings.Contains(msg, "Incorrect username or password") {
		t.Errorf("wrong password page says %q", msg)
	}
	b.page("signin-failed")

	b.signIn("alice", "alice-pw")
	if loc := b.location(); loc != s.base+"/account" {
		t.Errorf("signed in, landed on %s", loc)
	}
	ck := b.cookies()
	for _, name := range []string{"tiled_access_token", "tiled_refresh_token"} {
		c := ck[name]
		if c == nil {
			t.Fatalf("no %s cookie after sign-in: %v", name, ck)
		}
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/account" {
			t.Errorf("%s: HttpOnly %v SameSite %q Path %q", name, c.HTTPOnly, c.SameSite, c.Path)
		}
	}
	if who := b.text("#who + dl"); !strings.Contains(who, "alice via toy") || !strings.Contains(who, "admin") {
		t.Errorf("who am I says %q", who)
	}
	if mine := b.text("#session-table"); !strings.Contains(mine, "this browser") {
		t.Errorf("the session list does not mark this browser: %q", mine)
	}

	// A script signs in as alice too; its session is listed, revoked from
	// the page, and its token refused at once.
	access := s.scriptLogin("alice", "alice-pw")
	if st, _ := s.api(http.MethodGet, "/api/v1/metadata/", bearerHeader(access), ""); st != http.StatusOK {
		t.Fatalf("script before revocation: %d", st)
	}
	b.run("reload", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible(chromedp.CSS(`#session-table`)))
	if n := b.count(`#session-table tbody tr`); n != 2 {
		t.Fatalf("%d sessions listed, want 2", n)
	}
	b.page("account")
	other := `#session-table tbody tr:not(:has(.badge)) button`
	b.run("revoke the script's session",
		chromedp.Click(chromedp.CSS(other)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if st, out := s.api(http.MethodGet, "/api/v1/metadata/", bearerHeader(access), ""); st != http.StatusUnauthorized {
		t.Errorf("the revoked session's token: %d %v, want 401", st, out)
	}
	if n := b.count(`#session-table tbody tr`); n != 1 {
		t.Errorf("%d sessions listed after the revocation, want 1", n)
	}

	// An API key: made on the page, its secret copied with the button,
	// used by a script, revoked on the page, refused.
	b.run("create a key",
		chromedp.SendKeys(chromedp.CSS(`#key-note`), "notebook <b>on</b> laptop"),
		chromedp.Click(chromedp.CSS(`input[name=scopes][value="read:metadata"]`)),
		chromedp.Click(chromedp.CSS(`input[name=scopes][value="read:data"]`)),
		chromedp.Submit(chromedp.CSS(`#key-note`)),
		chromedp.WaitVisible(chromedp.CSS(`#secret`)),
	)
	secret := strings.TrimSpace(b.text("#secret"))
	if !regexp.MustCompile(`^[0-9a-f]{64,}$`).MatchString(secret) {
		t.Fatalf("secret shown: %q", secret)
	}
	b.run("copy", chromedp.Click(chromedp.CSS(`#copy`)), chromedp.WaitVisible(chromedp.Search(`//button[@id="copy" and text()="Copied"]`)))
	b.page("key-created")
	key := http.Header{"Authorization": {"Apikey " + secret}}
	if st, _ := s.api(http.MethodGet, "/api/v1/metadata/", key, ""); st != http.StatusOK {
		t.Fatalf("the new key from a script: %d", st)
	}
	if st, _ := s.api(http.MethodPost, "/api/v1/auth/apikey", key, "{}"); st == http.StatusOK {
		t.Error("a key limited to read scopes made a key")
	}
	b.run("account again", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible(chromedp.CSS(`#key-table`)))
	if row := b.text("#key-table tbody"); !strings.Contains(row, "notebook <b>on</b> laptop") || !strings.Contains(row, "read:data, read:metadata") {
		t.Errorf("key row: %q", row)
	}
	b.run("revoke the key",
		chromedp.Click(chromedp.CSS(`#key-table tbody button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if st, _ := s.api(http.MethodGet, "/api/v1/metadata/", key, ""); st != http.StatusUnauthorized {
		t.Errorf("the revoked key from a script: %d, want 401", st)
	}

	// Admins see every principal, and another's sessions with Revoke.
	bob := s.browser()
	bob.signIn("bob", "bob-pw")
	if got := bob.text("header"); strings.Contains(got, "Principals") {
		t.Error("a user who is not an admin is offered the principals page")
	}
	bob.run("principals as bob", chromedp.Navigate(s.base+"/account/principals"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if got := bob.text("main"); !strings.Contains(got, "Only administrators") {
		t.Errorf("bob on the principals page: %q", got)
	}
	b.run("principals",
		chromedp.Navigate(s.base+"/account/principals"),
		chromedp.WaitVisible(chromedp.CSS(`#principal-table`)),
	)
	b.page("principals")
	b.run("open bob",
		chromedp.Click(chromedp.Search(`//td[contains(., "bob (toy)")]/preceding-sibling::td//a`)),
		chromedp.WaitVisible(chromedp.CSS(`#session-table`)),
	)
	b.page("principal")
	b.run("end bob's session",
		chromedp.Click(chromedp.CSS(`#session-table tbody button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	bob.run("bob's next page", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible(chromedp.CSS(`#username-toy`)))
	if len(bob.cookies()) != 0 && bob.cookies()["tiled_refresh_token"] != nil {
		t.Error("bob's browser keeps the cookies of an ended session")
	}

	// The access token runs out: the next page rotates the refresh token
	// and the browser stays signed in. (Expire it by deleting the cookie.)
	before := b.cookies()["tiled_refresh_token"].Value
	if _, err := chromedp.Call(b.ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "tiled_access_token", URL: s.base + "/account"}); err != nil {
		t.Fatal(err)
	}
	b.run("page after expiry", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible(chromedp.CSS(`#principal-id`)))
	if after := b.cookies()["tiled_refresh_token"]; after == nil || after.Value == before {
		t.Error("the refresh token was not rotated when the access token ran out")
	}

	// Signing out ends the session, not just the cookies: its refresh token,
	// taken from the browser, no longer refreshes.
	held := b.cookies()["tiled_refresh_token"].Value
	b.run("sign out",
		chromedp.Click(chromedp.CSS(`header button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	b.page("signed-out")
	if c := b.cookies(); c["tiled_access_token"] != nil || c["tiled_refresh_token"] != nil {
		t.Errorf("cookies left after signing out: %v", c)
	}
	if st, out := s.api(http.MethodPost, "/api/v1/auth/session/refresh", http.Header{"Content-Type": {"application/json"}},
		`{"refresh_token":"`+held+`"}`); st != http.StatusUnauthorized {
		t.Errorf("the signed-out session still refreshes: %d %v", st, out)
	}
	b.run("account after sign-out", chromedp.Navigate(s.base+"/account"), chromedp.WaitVisible(chromedp.CSS(`#username-toy`)))
}

func TestPagesOIDCSignInAndDeviceCode(t *testing.T) {
	s := startPagesSite(t)
	b := s.browser()

	// "Continue with idp": the provider's login, back to the account.
	b.run("continue with idp",
		chromedp.Navigate(s.base+"/login"),
		chromedp.Click(chromedp.CSS(`#continue-idp`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "carol"),
		chromedp.Click(chromedp.CSS(`button[value=login]`)),
		chromedp.WaitVisible(chromedp.CSS(`#principal-id`)),
	)
	if loc := b.location(); loc != s.base+"/account" {
		t.Errorf("OIDC sign-in landed on %s", loc)
	}
	if who := b.text("#who + dl"); !strings.Contains(who, "carol via idp") {
		t.Errorf("who am I after OIDC: %q", who)
	}
	b.page("account-oidc")

	// Declining at the provider is said plainly, with what to do next.
	d := s.browser()
	d.run("decline at idp",
		chromedp.Navigate(s.base+"/login/idp"),
		chromedp.WaitVisible(chromedp.CSS(`button[value=deny]`)),
		chromedp.Click(chromedp.CSS(`button[value=deny]`)),
		chromedp.WaitVisible(chromedp.CSS(`h1`)),
	)
	if got := d.text("main"); !strings.Contains(got, "Sign-in failed") || !strings.Contains(got, "Sign in again") {
		t.Errorf("declined sign-in page: %q", got)
	}
	d.page("signin-declined")

	// A device-code login a script started, confirmed in the browser.
	st, start := s.api(http.MethodPost, "/api/v1/auth/provider/idp/authorize", nil, "")
	if st != http.StatusOK {
		t.Fatalf("device authorize: %d %v", st, start)
	}
	dev := s.browser()
	dev.run("device login at idp",
		chromedp.Navigate(start["authorization_uri"].(string)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "dan"),
		chromedp.Click(chromedp.CSS(`button[value=login]`)),
		chromedp.WaitVisible(chromedp.CSS(`#user_code`)),
	)
	dev.page("device-code")
	poll := func() (int, map[string]any) {
		body, _ := json.Marshal(map[string]string{"device_code": start["device_code"].(string),
			"grant_type": "urn:ietf:params:oauth:grant-type:device_code"})
		return s.api(http.MethodPost, "/api/v1/auth/provider/idp/token", http.Header{"Content-Type": {"application/json"}}, string(body))
	}
	if st, out := poll(); st != http.StatusBadRequest {
		t.Fatalf("poll before confirming: %d %v", st, out)
	}
	dev.run("a wrong code",
		chromedp.SendKeys(chromedp.CSS(`#user_code`), "BCDF-GHJK"),
		chromedp.Submit(chromedp.CSS(`#user_code`)),
		chromedp.WaitVisible(chromedp.CSS(`.error`)),
	)
	if got := dev.text(".error"); !strings.Contains(got, "Invalid user code") {
		t.Errorf("wrong code page: %q", got)
	}
	dev.run("the right code",
		chromedp.SendKeys(chromedp.CSS(`#user_code`), strings.ToLower(start["user_code"].(string))),
		chromedp.Submit(chromedp.CSS(`#user_code`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if got := dev.text("main"); !strings.Contains(got, "You have logged in with idp as dan.") || !strings.Contains(got, "close this tab") {
		t.Errorf("device success page: %q", got)
	}
	dev.page("device-code-success")
	st, tokens := poll()
	if st != http.StatusOK {
		t.Fatalf("poll after confirming: %d %v", st, tokens)
	}
	_, who := s.api(http.MethodGet, "/api/v1/auth/whoami", bearerHeader(tokens["access_token"].(string)), "")
	if ids, _ := who["identities"].([]any); len(ids) != 1 || ids[0].(map[string]any)["id"] != "dan" {
		t.Errorf("the script is signed in as %v, want dan", who["identities"])
	}
}

func TestPagesSingleUser(t *testing.T) {
	exe, ln, base := browserTest(t)
	serveOn(t, ln, "trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]\n"+
		"authentication: {single_user_api_key: singleuserbrowserkey123}\n")
	s := &pagesSite{t: t, base: base, shot: screenshotDir(t), exe: exe}
	b := s.browser()
	// The URL the server prints at start: the browser lands on a page that
	// says it is signed in, with the key gone from the address bar.
	b.run("start-up URL",
		chromedp.Navigate(base+"/api/v1?api_key=singleuserbrowserkey123"),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
	)
	if loc := b.location(); loc != base+"/" {
		t.Errorf("start-up URL landed on %s", loc)
	}
	if got := b.text(".flash"); !strings.Contains(got, "signed in") {
		t.Errorf("landing says %q", got)
	}
	b.page("single-user")
	b.run("API in the browser", chromedp.Navigate(base+"/api/v1/metadata/"))
	body := b.text("body")
	if !strings.Contains(body, `"data"`) {
		t.Errorf("the cookie does not authenticate the API: %.200s", body)
	}
	b.run("sign out",
		chromedp.Navigate(base+"/account"),
		chromedp.Click(chromedp.CSS(`header button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)),
		chromedp.Navigate(base+"/api/v1/metadata/"),
	)
	body = b.text("body")
	if strings.Contains(body, `"data"`) {
		t.Errorf("signed out, the browser still reads the API: %.200s", body)
	}
}
