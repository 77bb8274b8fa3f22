package view

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/identity"
)

const hostile = `"><script>alert(1)</script>`

// pageCase is one named page with representative data; evil puts the
// hostile string into its user-controlled fields.
type pageCase struct {
	name string
	page Page
}

func pageCases(evil string) []pageCase {
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	exp := now.Add(24 * time.Hour)
	pid := uuid.MustParse("6f1c3a9e-2b4d-4e8f-9a1b-2c3d4e5f6a7b")
	sid := uuid.MustParse("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d")
	nav := &Nav{Name: "alice" + evil, Admin: true, SignOut: true}
	account := func(self bool) Account {
		return Account{
			Self: self, ID: pid, Type: "user",
			Identities: []identity.Identity{{Provider: "toy", ID: "alice" + evil, PrincipalID: pid}},
			Roles:      []string{"user", "admin"}, Method: "toy",
			Sessions: []SessionRow{
				{ID: sid, Created: now, LastUsed: now, Expires: exp, Current: true},
				{ID: uuid.New(), Created: now, Expires: exp},
			},
			Keys: []KeyRow{
				{FirstEight: "abcdef12", Note: "my note" + evil, Scopes: []string{"read:metadata"}, Expires: &exp, LastUsed: &now},
				{FirstEight: "12345678"},
			},
			CanEnd: true, CanRevokeKeys: self, CanCreateKey: self,
			ScopeChoices: []string{"read:data", "read:metadata"},
			Return:       "/account",
		}
	}
	providers := []Provider{
		{Name: "toy", Message: "Local accounts" + evil},
		{Name: "orcid", External: true},
	}
	return []pageCase{
		{name: "landing", page: Page{Title: "Home", Nav: nav, Data: Landing{
			URL: "http://example.org", API: "http://example.org/api/v1", SignIn: true, Public: true, SingleUserSignedIn: true}}},
		{name: "login", page: Page{Title: "Sign in", Flash: "Signed out" + evil, Error: "Bad password" + evil, Data: Login{
			Providers: providers, Next: "/account/principals" + evil, Provider: "toy", Username: evil}}},
		{name: "login", page: Page{Title: "Sign in", Data: Login{SingleUser: true}}},
		{name: "account", page: Page{Title: "My account", Nav: nav, Flash: "done", Data: account(true)}},
		pageCase{name: "account", page: Page{Title: "Principal", Nav: nav, Data: account(false)}},
		{name: "account", page: Page{Title: "My account", Nav: &Nav{Name: "single-user key", SignOut: true},
			Data: Account{SingleUser: true}}},
		{name: "account", page: Page{Title: "My account", Nav: nav, Data: Account{Self: true, ID: pid, Type: "service"}}},
		{name: "key_created", page: Page{Title: "API key created", Nav: nav, Data: KeyCreated{
			Secret: "secret" + evil, FirstEight: "abcdef12", Note: "a note" + evil, Scopes: []string{"read:data"}, Expires: &exp}}},
		{name: "key_created", page: Page{Title: "API key created", Nav: nav, Data: KeyCreated{Secret: "s", FirstEight: "abcdef12"}}},
		{name: "principals", page: Page{Title: "Principals", Nav: nav, Data: Principals{
			Rows: []PrincipalRow{
				{ID: pid, Type: "user", Identities: []string{"alice" + evil + " (toy)"}, Roles: []string{"admin"}, Sessions: 2, Keys: 1, LatestActivity: &now},
				{ID: sid, Type: "service"},
			},
			Prev: true, Next: true, PrevOffset: 0, NextOffset: 100}}},
		{name: "notice", page: Page{Title: "Not done", Data: Notice{Heading: "That did not work", Message: "msg" + evil,
			Next: &Link{URL: "/account", Label: "Back" + evil}}}},
		{name: "notice", page: Page{Title: "Not done", Data: Notice{Heading: "h", Message: "m"}}},
		{name: "device_form", page: Page{Title: "Authorize", Error: "Wrong code" + evil, Data: Device{
			Code: "code" + evil, State: "state" + evil, Message: "Confirm" + evil}}},
		{name: "device_success", page: Page{Title: "Signed in", Data: Device{Message: "Welcome" + evil, Interval: 5}}},
		{name: "device_failure", page: Page{Title: "Sign-in failed", Data: Device{Message: "Denied" + evil}}},
	}
}

func newContext(req *http.Request) (echo.Context, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	return echo.New().NewContext(req, rec), rec
}

func render(t *testing.T, r *Renderer, pc pageCase) *httptest.ResponseRecorder {
	t.Helper()
	c, rec := newContext(httptest.NewRequest(http.MethodGet, "http://example.org/account", nil))
	if err := r.Render(c, http.StatusOK, pc.name, pc.page); err != nil {
		t.Fatalf("Render %s: %v", pc.name, err)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	return rec
}

func TestTemplatesParse(t *testing.T) {
	r, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if r.version != "dev" {
		t.Fatalf("version = %q, want dev", r.version)
	}
	for _, name := range []string{"top", "bottom", "landing", "login", "account", "key_created",
		"principals", "notice", "device_form", "device_success", "device_failure"} {
		if r.t.Lookup(name) == nil {
			t.Errorf("template %q not defined", name)
		}
	}
}

var (
	scriptTag   = regexp.MustCompile(`(?i)<script\b[^>]*>`)
	styleAttr   = regexp.MustCompile(`(?i)\sstyle\s*=`)
	eventAttr   = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	styleTag    = regexp.MustCompile(`(?i)<style\b`)
	anyOriginRe = regexp.MustCompile(`(?i)https?://`)
)

func TestRenderPages(t *testing.T) {
	r := MustNew("v1.2.3")
	for i, pc := range pageCases("") {
		t.Run(pc.name+"/"+string(rune('a'+i)), func(t *testing.T) {
			rec := render(t, r, pc)
			h := rec.Header()
			for k, want := range map[string]string{
				"Content-Security-Policy": ContentSecurityPolicy,
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
				"X-Content-Type-Options":  "nosniff",
				"Content-Type":            echo.MIMETextHTMLCharsetUTF8,
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") {
				t.Errorf("CSP allows unsafe-inline")
			}
			body := rec.Body.String()
			if !strings.Contains(body, `href="/assets/v1.2.3/pages.css"`) || !strings.Contains(body, `src="/assets/v1.2.3/pages.js"`) {
				t.Errorf("page does not load the versioned assets:\n%s", body)
			}
			for _, tag := range scriptTag.FindAllString(body, -1) {
				if !strings.Contains(tag, " src=") {
					t.Errorf("inline script: %s", tag)
				}
			}
			if m := styleAttr.FindString(body); m != "" {
				t.Errorf("inline style attribute %q", m)
			}
			if m := styleTag.FindString(body); m != "" {
				t.Errorf("inline style element %q", m)
			}
			if m := eventAttr.FindString(body); m != "" {
				t.Errorf("inline event handler in %q", m)
			}
			// Pages name no origin. The landing page's data is the one
			// exception: it shows the server's URL for from_uri and links
			// the API root, both built from the request.
			check := body
			if pc.name == "landing" {
				check = strings.ReplaceAll(check, "http://example.org", "")
			}
			if m := anyOriginRe.FindString(check); m != "" {
				t.Errorf("page names an origin (%q):\n%s", m, body)
			}
			// Every form carries the CSRF token the response set.
			if strings.Contains(body, "<form") {
				var tok string
				for _, ck := range rec.Result().Cookies() {
					if ck.Name == CSRFCookie {
						tok = ck.Value
					}
				}
				if tok == "" || strings.Count(body, `name="csrf" value="`+tok+`"`) != strings.Count(body, "<form") {
					t.Errorf("forms do not all carry the csrf token %q:\n%s", tok, body)
				}
			}
		})
	}
}

func TestRenderUnknownTemplate(t *testing.T) {
	c, rec := newContext(httptest.NewRequest(http.MethodGet, "/", nil))
	if err := MustNew("").Render(c, http.StatusOK, "nope", Page{}); err == nil {
		t.Fatal("no error for an unknown template")
	}
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Security-Policy") != "" {
		t.Fatal("a failed render wrote a response")
	}
}

func TestRenderEscapes(t *testing.T) {
	r := MustNew("")
	for i, pc := range pageCases(hostile) {
		t.Run(pc.name+"/"+string(rune('a'+i)), func(t *testing.T) {
			body := render(t, r, pc).Body.String()
			carries := !reflect.DeepEqual(pc, pageCases("")[i]) // has user data
			if carries && !strings.Contains(body, "alert(1)") {
				t.Fatalf("the hostile string is not on the page at all:\n%s", body)
			}
			for _, bad := range []string{hostile, "<script>alert", "alert(1)</script>"} {
				if strings.Contains(body, bad) {
					t.Errorf("unescaped %q in page:\n%s", bad, body)
				}
			}
		})
	}
}

func TestRenderRootPath(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "http://example.org/account", nil)
	req = req.WithContext(links.WithRootPath(req.Context(), "/tiled/"))
	c, rec := newContext(req)
	if err := MustNew("v9").Render(c, http.StatusOK, "notice", Page{Nav: &Nav{Name: "a", SignOut: true},
		Data: Notice{Heading: "h", Message: "m"}}); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	for _, want := range []string{`href="/tiled/assets/v9/pages.css"`, `href="/tiled/"`,
		`href="/tiled/account"`, `action="/tiled/account/logout"`} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in:\n%s", want, body)
		}
	}
}

func TestRootPath(t *testing.T) {
	tests := []struct {
		root string // "" for none
		want string
	}{
		{"", ""},
		{"/", ""},
		{"/tiled", "/tiled"},
		{"/tiled/", "/tiled"},
		{"tiled", "/tiled"},
		{"/a/b/", "/a/b"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "http://example.org:8000/x/y", nil)
		if tt.root != "" {
			req = req.WithContext(links.WithRootPath(req.Context(), tt.root))
		}
		if got := RootPath(req); got != tt.want {
			t.Errorf("RootPath(root %q) = %q, want %q", tt.root, got, tt.want)
		}
	}
}

func TestAssets(t *testing.T) {
	r := MustNew("v1")
	e := echo.New()
	e.GET(AssetsPrefix+"/*", r.Assets)
	css, err := os.ReadFile("assets/pages.css")
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("assets/pages.js")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		status int
		ct     string
		body   []byte
	}{
		{"/assets/v1/pages.css", 200, "text/css; charset=utf-8", css},
		{"/assets/anything/pages.js", 200, "text/javascript; charset=utf-8", js},
		{"/assets/v1/nope.css", 404, "", nil},
		{"/assets/v1/", 404, "", nil},
		{"/assets/pages.css", 404, "", nil},
		{"/assets/", 404, "", nil},
		{"/assets/v1/../assets/pages.css", 404, "", nil},
		{"/assets/v1/..%2fassets%2fpages.css", 404, "", nil},
		{"/assets/v1/%2e%2e/assets/pages.css", 404, "", nil},
		{"/assets/v1/../templates/layout.html", 404, "", nil},
		{"/assets/v1/x/../pages.css", 404, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (body %.80q)", rec.Code, tt.status, rec.Body.String())
			}
			if tt.status != 200 {
				return
			}
			h := rec.Header()
			if got := h.Get("Content-Type"); got != tt.ct {
				t.Errorf("Content-Type = %q, want %q", got, tt.ct)
			}
			if got := h.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q", got)
			}
			if rec.Body.String() != string(tt.body) {
				t.Errorf("body is not the embedded file")
			}
		})
	}
	// The handler's own answer is echo.ErrNotFound.
	for _, param := range []string{"v1/nope.css", "pages.css", "v1/", "", "v1/../assets/pages.css"} {
		c, _ := newContext(httptest.NewRequest(http.MethodGet, "/", nil))
		c.SetParamNames("*")
		c.SetParamValues(param)
		if err := r.Assets(c); !errors.Is(err, echo.ErrNotFound) {
			t.Errorf("Assets(%q) = %v, want echo.ErrNotFound", param, err)
		}
	}
}

func TestCheckForm(t *testing.T) {
	const tok = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo"
	oneOff := tok[:len(tok)-1] + "k"
	noCookie := "\x00none"
	tests := []struct {
		name           string
		posted, cookie string
		site, origin   string
		ok             bool
	}{
		{name: "token equals cookie", posted: tok, cookie: tok, ok: true},
		{name: "token differs by one character", posted: oneOff, cookie: tok},
		{name: "token differs in first character", posted: "X" + tok[1:], cookie: tok},
		{name: "token is a prefix of the cookie", posted: tok[:10], cookie: tok},
		{name: "cookie is a prefix of the token", posted: tok + "a", cookie: tok},
		{name: "empty token, empty cookie", posted: "", cookie: ""},
		{name: "empty token, good cookie", posted: "", cookie: tok},
		{name: "good token, empty cookie", posted: tok, cookie: ""},
		{name: "missing cookie", posted: tok, cookie: noCookie},
		{name: "missing cookie, empty token", posted: "", cookie: noCookie},
		{name: "cross-site", posted: tok, cookie: tok, site: "cross-site"},
		{name: "same-site", posted: tok, cookie: tok, site: "same-site"},
		{name: "none", posted: tok, cookie: tok, site: "none"},
		{name: "unknown Sec-Fetch-Site", posted: tok, cookie: tok, site: "whatever"},
		{name: "same-origin", posted: tok, cookie: tok, site: "same-origin", ok: true},
		{name: "same-origin, bad token", posted: oneOff, cookie: tok, site: "same-origin"},
		{name: "same-origin wins over a foreign Origin", posted: tok, cookie: tok, site: "same-origin", origin: "http://evil.example", ok: true},
		{name: "no fetch metadata, foreign Origin", posted: tok, cookie: tok, origin: "http://evil.example"},
		{name: "no fetch metadata, other port", posted: tok, cookie: tok, origin: "http://example.org:8080"},
		{name: "no fetch metadata, other scheme", posted: tok, cookie: tok, origin: "https://example.org"},
		{name: "no fetch metadata, suffix host", posted: tok, cookie: tok, origin: "http://example.org.evil.example"},
		{name: "no fetch metadata, unparseable Origin", posted: tok, cookie: tok, origin: "http://[::1"},
		{name: "no fetch metadata, same Origin", posted: tok, cookie: tok, origin: "http://example.org", ok: true},
		{name: "no fetch metadata, same Origin other case", posted: tok, cookie: tok, origin: "HTTP://EXAMPLE.ORG", ok: true},
		{name: "no fetch metadata, same Origin, bad token", posted: oneOff, cookie: tok, origin: "http://example.org"},
		{name: "Origin null, good token", posted: tok, cookie: tok, origin: "null", ok: true},
		{name: "Origin null, bad token", posted: oneOff, cookie: tok, origin: "null"},
		{name: "no headers, good token", posted: tok, cookie: tok, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://example.org/account/logout", nil)
			if tt.cookie != noCookie {
				req.Header.Set("Cookie", CSRFCookie+"="+tt.cookie)
			}
			if tt.site != "" {
				req.Header.Set("Sec-Fetch-Site", tt.site)
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			c, _ := newContext(req)
			err := CheckForm(c, tt.posted)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckForm = %v, want nil", err)
				}
				return
			}
			var he *httperr.Error
			if !errors.As(err, &he) {
				t.Fatalf("CheckForm = %v (%T), want *httperr.Error", err, err)
			}
			if he.Status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", he.Status)
			}
			if s, _ := he.Detail.(string); s == "" {
				t.Fatalf("no message for a person: %#v", he.Detail)
			}
		})
	}
}

// Behind a trusted TLS proxy the base is https, and an https Origin is ours.
func TestCheckFormOriginBehindProxy(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "http://example.org/account/logout", nil)
	req = req.WithContext(forwarded.WithClient(req.Context(), forwarded.Client{Scheme: "https"}))
	req.Header.Set("Cookie", CSRFCookie+"=t0k")
	for origin, ok := range map[string]bool{"https://example.org": true, "http://example.org": false} {
		req.Header.Set("Origin", origin)
		c, _ := newContext(req)
		if err := CheckForm(c, "t0k"); (err == nil) != ok {
			t.Errorf("Origin %s: err = %v, want ok=%v", origin, err, ok)
		}
	}
}

func csrfCookies(rec *httptest.ResponseRecorder) []*http.Cookie {
	var out []*http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == CSRFCookie {
			out = append(out, ck)
		}
	}
	return out
}

func TestCSRFToken(t *testing.T) {
	t.Run("request cookie", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		req.AddCookie(&http.Cookie{Name: CSRFCookie, Value: "from-browser"})
		c, rec := newContext(req)
		if got := CSRFToken(c); got != "from-browser" {
			t.Fatalf("CSRFToken = %q", got)
		}
		if got := CSRFToken(c); got != "from-browser" {
			t.Fatalf("second CSRFToken = %q", got)
		}
		if h := rec.Header().Values("Set-Cookie"); len(h) != 0 {
			t.Fatalf("Set-Cookie %q for a browser that has the cookie", h)
		}
	})
	for _, tt := range []struct {
		name   string
		req    func() *http.Request
		secure bool
	}{
		{"http", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/login", nil) }, false},
		{"empty cookie", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/login", nil)
			r.Header.Set("Cookie", CSRFCookie+"=")
			return r
		}, false},
		{"untrusted X-Forwarded-Proto", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/login", nil)
			r.Header.Set("X-Forwarded-Proto", "https")
			return r
		}, false},
		{"tls", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "https://example.org/login", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		}, true},
		{"trusted proxy", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/login", nil)
			return r.WithContext(forwarded.WithClient(context.Background(), forwarded.Client{Scheme: "https"}))
		}, true},
	} {
		t.Run("new/"+tt.name, func(t *testing.T) {
			c, rec := newContext(tt.req())
			first := CSRFToken(c)
			if len(first) < 32 {
				t.Fatalf("token %q too short", first)
			}
			if second := CSRFToken(c); second != first {
				t.Fatalf("second call = %q, want %q", second, first)
			}
			if n := len(rec.Header().Values("Set-Cookie")); n != 1 {
				t.Fatalf("%d Set-Cookie headers, want 1", n)
			}
			cks := csrfCookies(rec)
			if len(cks) != 1 {
				t.Fatalf("%d %s cookies, want 1", len(cks), CSRFCookie)
			}
			ck := cks[0]
			if ck.Value != first || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure != tt.secure {
				t.Fatalf("cookie %+v: want value %q, HttpOnly, SameSite=Lax, Path=/, Secure=%v", ck, first, tt.secure)
			}
		})
	}
	// Two requests get two tokens.
	c1, _ := newContext(httptest.NewRequest(http.MethodGet, "/", nil))
	c2, _ := newContext(httptest.NewRequest(http.MethodGet, "/", nil))
	if CSRFToken(c1) == CSRFToken(c2) {
		t.Fatal("two fresh tokens are equal")
	}
}

// A page rendered in the response that sets the cookie embeds its token.
func TestRenderEmbedsIssuedToken(t *testing.T) {
	c, rec := newContext(httptest.NewRequest(http.MethodGet, "/account", nil))
	p := Page{Nav: &Nav{Name: "a", SignOut: true}, Data: Notice{Heading: "h", Message: "m"}}
	if err := MustNew("").Render(c, http.StatusOK, "notice", p); err != nil {
		t.Fatal(err)
	}
	cks := csrfCookies(rec)
	if len(cks) != 1 || !strings.Contains(rec.Body.String(), `name="csrf" value="`+cks[0].Value+`"`) {
		t.Fatalf("cookies %v; page does not embed the issued token", cks)
	}
}

func TestWhen(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	var nilTime *time.Time
	for _, tt := range []struct {
		in   any
		want string
	}{
		{ts, "2024-01-02 02:04 UTC"},
		{&ts, "2024-01-02 02:04 UTC"},
		{time.Time{}, "—"},
		{&time.Time{}, "—"},
		{nilTime, "—"},
		{nil, "—"},
		{"2024", "—"},
	} {
		if got := when(tt.in); got != tt.want {
			t.Errorf("when(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMessage(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  *httperr.Error
		want string
	}{
		{"string", httperr.Forbidden("Only administrators."), "Only administrators."},
		{"empty string", httperr.NotFound(""), ""},
		{"422 list", httperr.Unprocessable([]map[string]any{
			{"type": "missing", "loc": []any{"query", "role"}, "msg": "Field required"},
			{"msg": "second"},
		}), "Field required"},
		{"422 list without msg", httperr.Unprocessable([]map[string]any{{"type": "missing"}}), "<nil>"},
		{"empty list", httperr.Unprocessable([]map[string]any{}), "Unprocessable Entity"},
		{"map", httperr.Conflict(map[string]any{"msg": "x"}), "Conflict"},
		{"nil", httperr.New(http.StatusTooManyRequests, nil), "Too Many Requests"},
		{"number", httperr.BadRequest(42), "Bad Request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Message(tt.err); got != tt.want {
				t.Errorf("Message = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSetCookie: every cookie the server sets is HttpOnly and SameSite=Lax,
// and Secure exactly when the client came over HTTPS.
func TestSetCookie(t *testing.T) {
	for _, tc := range []struct {
		name   string
		https  bool
		maxAge int
	}{
		{"http, session cookie", false, 0},
		{"https, session cookie", true, 0},
		{"https, deleted", true, -1},
		{"http, with a lifetime", false, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://example.org/", nil)
			if tc.https {
				req.TLS = &tls.ConnectionState{}
			}
			c, rec := newContext(req)
			SetCookie(c, "k", "v", "/account", tc.maxAge)
			cks := rec.Result().Cookies()
			if len(cks) != 1 {
				t.Fatalf("%d cookies set", len(cks))
			}
			ck := cks[0]
			if ck.Name != "k" || ck.Path != "/account" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode ||
				ck.Secure != tc.https || ck.MaxAge != tc.maxAge {
				t.Fatalf("cookie %+v", ck)
			}
		})
	}
}
