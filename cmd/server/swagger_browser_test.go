package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

// XPath of the oidc scheme's part of Swagger UI's Authorize dialog.
const (
	oidcContainer = `//div[contains(@class,"auth-container")][.//h4[starts-with(normalize-space(.),"oidc (OAuth2")]]`
	oidcAuthorize = oidcContainer + `//button[contains(@class,"authorize")]`
)

// chromium finds Debian's chromium. Missing, the test skips loudly, and
// fails under CI=true (where .ci/run installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "headless Chromium not found: apt-get install chromium (the browser tests of the pages and of Swagger UI need one)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED LOUDLY: " + msg)
	return ""
}

// browserTest is the start of every browser test: not in -short, Chromium
// found (else a loud skip, or a failure under CI=true), and a loopback
// listener whose address the server's configuration may need.
func browserTest(t *testing.T) (exe string, ln net.Listener, base string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: not in -short")
	}
	exe = chromium(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return exe, ln, "http://" + ln.Addr().String()
}

// headlessBrowser starts Chromium with exactly the flags that keep every
// byte on this machine (loopback is never proxied, every other name
// resolves to nothing); cancel stops it.
func headlessBrowser(ctx context.Context, exe string, opts ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc) {
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*"),
	}, opts...)...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	return browser, func() { cancelBrowser(); cancelAlloc() }
}

// TestSwaggerUISignIn opens /docs in headless Chromium, signs in with the
// Authorize button (authorization code + PKCE at a real OIDC provider, as
// a public client), and runs "Try it out" on whoami with the access token.
func TestSwaggerUISignIn(t *testing.T) {
	exe, ln, base := browserTest(t)
	idp := oidcprovider.Start(t, oidcprovider.Options{
		ClientID: "tiled", ClientSecret: "s", Users: []string{"alice"},
		PublicClients: []oidcprovider.PublicClient{{
			ID: "swagger-ui", RedirectURIs: []string{base + "/docs/oauth2-redirect.html"}, Audience: "api://tiled",
		}},
	})
	yml := fmt.Sprintf(`
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
auth:
  enabled: true
  issuer: %q
  audience: api://tiled
  read_scopes: [datasets:read]
swagger:
  oauth2: {issuer: %q, client_id: swagger-ui, scopes: [openid, datasets:read]}
`, idp.Issuer(), idp.Issuer())
	serveOn(t, ln, yml)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	browser, cancelBrowser := headlessBrowser(ctx, exe)
	defer cancelBrowser()

	authorize := `.auth-wrapper .btn.authorize`
	if err := chromedp.Do(browser,
		chromedp.Navigate(base+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(authorize)),
		chromedp.Click(chromedp.CSS(authorize)),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux`)),
	); err != nil {
		t.Fatalf("open the Authorize dialog: %v", err)
	}
	// The dialog's Authorize button opens the provider's login in a popup.
	popups := chromedp.WaitNewTarget(browser, func(i *target.Info) bool { return i.Type == "page" })
	if err := chromedp.Do(browser,
		// The oidc scheme's own Authorize button (the dialog lists every scheme).
		chromedp.Click(chromedp.Search(oidcAuthorize)),
	); err != nil {
		t.Fatalf("start the sign-in: %v", err)
	}
	var popupID target.ID
	select {
	case popupID = <-popups:
	case <-time.After(30 * time.Second):
		html, _ := chromedp.Run(browser, chromedp.OuterHTML(chromedp.Search(oidcContainer)))
		t.Fatalf("no sign-in window opened; dialog: %s", html)
	}
	popup, cancelPopup := chromedp.NewContext(browser, chromedp.WithTargetID(popupID))
	defer cancelPopup()
	if err := chromedp.Do(popup,
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "alice"),
	); err != nil {
		t.Fatalf("provider login page: %v", err)
	}
	// The popup closes itself after handing the code back; an error from
	// the closed target is expected.
	_ = chromedp.Do(popup, chromedp.Click(chromedp.CSS(`button[value=login]`)))

	signedIn, cancelWait := context.WithTimeout(browser, 30*time.Second)
	defer cancelWait()
	if err := chromedp.Do(signedIn, chromedp.WaitVisible(chromedp.Search(oidcContainer+`//h6[text()="Authorized"]`))); err != nil {
		html, _ := chromedp.Run(browser, chromedp.OuterHTML(chromedp.Search(oidcContainer)))
		t.Fatalf("sign-in did not complete: %v (provider: %d logins, %d token requests); dialog: %s", err,
			idp.Requests("/login"), idp.Requests("/oauth/token"), html)
	}
	authorized, err := chromedp.Run(browser, chromedp.Text(chromedp.Search(oidcContainer)))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(browser, chromedp.Click(chromedp.Search(oidcContainer+`//button[contains(@class,"btn-done")]`))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(authorized, "Authorized") || !strings.Contains(authorized, "Logout") {
		t.Fatalf("dialog after sign-in: %q", authorized)
	}

	op := `#operations-authentication-get_api_v1_auth_whoami`
	if err := chromedp.Do(browser,
		chromedp.Click(chromedp.CSS(op+` .opblock-summary-control`)),
		chromedp.WaitVisible(chromedp.CSS(op+` .try-out__btn`)),
		chromedp.Click(chromedp.CSS(op+` .try-out__btn`)),
		chromedp.WaitVisible(chromedp.CSS(op+` .btn.execute`)),
		chromedp.Click(chromedp.CSS(op+` .btn.execute`)),
		chromedp.WaitVisible(chromedp.CSS(op+` .live-responses-table tbody .response-col_status`)),
	); err != nil {
		t.Fatalf("Try it out: %v", err)
	}
	status, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(op+` .live-responses-table tbody .response-col_status`)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(op+` .live-responses-table tbody .response-col_description`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.TrimSpace(status), "200") || !strings.Contains(body, `"alice"`) || !strings.Contains(body, idp.Issuer()) {
		t.Fatalf("whoami through Swagger UI: status %q, body %q", status, body)
	}
}
