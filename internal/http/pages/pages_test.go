package pages

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
)

func newContext(req *http.Request) (echo.Context, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	return echo.New().NewContext(req, rec), rec
}

func TestLocalPath(t *testing.T) {
	id := uuid.NewString()
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"/account", true},
		{"/account/principals", true},
		{"/account/principals/" + id, true},
		{"/account?x=1", true},
		{"/account/principals?offset=50", true},
		{"", false},
		{"/", false},
		{"/accountx", false},
		{"/account.evil.example", false},
		{"/account@evil.example", false},
		{"/api/v1/", false},
		{"//evil.example", false},
		{"//evil.example/account", false},
		{"/account//evil", false},
		{"/account//evil.example/x", false},
		{"/account?next=//evil", false},
		{"https://evil.example/account", false},
		{"/account\\evil", false},
		{"/account/\\evil.example", false},
		{"/account\r\nSet-Cookie:x", false},
		{"/account\nx", false},
		{"/account\rx", false},
		{"account", false},
		{"/login", false},
		{"/login?next=/account", false},
	} {
		want := ""
		if tt.ok {
			want = tt.in
		}
		if got := localPath(tt.in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", tt.in, got, want)
		}
	}
}

func TestOwnsCSRF(t *testing.T) {
	h := &Handlers{}
	for route, want := range map[string]bool{
		"/login":                               true,
		"/login/:provider":                     true,
		"/account":                             true,
		"/account/logout":                      true,
		"/account/apikeys":                     true,
		"/account/apikeys/:first_eight/revoke": true,
		"/account/sessions/:id/revoke":         true,
		"/account/principals/:id":              true,
		"/api/v1/auth/apikey":                  false,
		"/api/v1/auth/session/refresh":         false,
		"/":                                    false,
		"":                                     false,
		"/loginx":                              false,
		"/accounts":                            false,
		"/api/v1/account":                      false,
		"login":                                false,
	} {
		if got := h.OwnsCSRF(route); got != want {
			t.Errorf("OwnsCSRF(%q) = %v, want %v", route, got, want)
		}
	}
}

func sessionCookies(t *testing.T, rec *httptest.ResponseRecorder) map[string]*http.Cookie {
	t.Helper()
	out := map[string]*http.Cookie{}
	for _, ck := range rec.Result().Cookies() {
		if _, dup := out[ck.Name]; dup {
			t.Fatalf("cookie %s set twice", ck.Name)
		}
		out[ck.Name] = ck
	}
	if len(out) != 2 || out[accessCookie] == nil || out[refreshCookie] == nil {
		t.Fatalf("cookies %v, want exactly %s and %s", out, accessCookie, refreshCookie)
	}
	return out
}

func TestSessionCookies(t *testing.T) {
	tokens := sessions.Tokens{AccessToken: "acc.ess", ExpiresIn: 900, RefreshToken: "ref.resh", RefreshTokenExpiresIn: 604800}
	for _, tt := range []struct {
		name   string
		req    func() *http.Request
		path   string
		secure bool
	}{
		{"plain http", func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/login/toy", nil)
		}, "/account", false},
		{"untrusted X-Forwarded-Proto https", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/login/toy", nil)
			r.Header.Set("X-Forwarded-Proto", "https")
			return r
		}, "/account", false},
		{"tls", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "https://example.org/login/toy", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		}, "/account", true},
		{"trusted proxy says https", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/login/toy", nil)
			return r.WithContext(forwarded.WithClient(r.Context(), forwarded.Client{Scheme: "https"}))
		}, "/account", true},
		{"trusted proxy says http over tls", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/login/toy", nil)
			r.TLS = &tls.ConnectionState{}
			return r.WithContext(forwarded.WithClient(r.Context(), forwarded.Client{Scheme: "http"}))
		}, "/account", false},
		{"root path", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/login/toy", nil)
			return r.WithContext(links.WithRootPath(r.Context(), "/prefix"))
		}, "/prefix/account", false},
		{"root path with slashes, tls", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/login/toy", nil)
			r.TLS = &tls.ConnectionState{}
			return r.WithContext(links.WithRootPath(r.Context(), "/prefix/"))
		}, "/prefix/account", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, cks map[string]*http.Cookie, want map[string]string, maxAge map[string]int) {
				t.Helper()
				for name, ck := range cks {
					if ck.Value != want[name] {
						t.Errorf("%s: %s = %q, want %q", what, name, ck.Value, want[name])
					}
					if !ck.HttpOnly {
						t.Errorf("%s: %s not HttpOnly", what, name)
					}
					if ck.SameSite != http.SameSiteLaxMode {
						t.Errorf("%s: %s SameSite %v, want Lax", what, name, ck.SameSite)
					}
					if ck.Path != tt.path {
						t.Errorf("%s: %s Path %q, want %q", what, name, ck.Path, tt.path)
					}
					if ck.Secure != tt.secure {
						t.Errorf("%s: %s Secure %v, want %v", what, name, ck.Secure, tt.secure)
					}
					if ck.Domain != "" {
						t.Errorf("%s: %s Domain %q, want none", what, name, ck.Domain)
					}
					if ck.MaxAge != maxAge[name] {
						t.Errorf("%s: %s MaxAge %d, want %d", what, name, ck.MaxAge, maxAge[name])
					}
				}
			}
			c, rec := newContext(tt.req())
			setSession(c, tokens)
			check("setSession", sessionCookies(t, rec),
				map[string]string{accessCookie: "acc.ess", refreshCookie: "ref.resh"},
				map[string]int{accessCookie: 900, refreshCookie: 604800})

			c, rec = newContext(tt.req())
			clearSession(c)
			cks := sessionCookies(t, rec)
			check("clearSession", cks, map[string]string{}, map[string]int{accessCookie: -1, refreshCookie: -1})
			for _, v := range rec.Header().Values("Set-Cookie") {
				if !strings.Contains(v, "Max-Age=0") {
					t.Errorf("clearSession: %q does not expire the cookie", v)
				}
			}
		})
	}
}

func TestMessage(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{httperr.Forbidden("No."), "No."},
		{fmt.Errorf("wrapped: %w", httperr.Unprocessable([]map[string]any{{"msg": "Too long"}})), "Too long"},
		{errors.New("pq: connection refused"), "Something went wrong."},
	} {
		if got := message(tt.err); got != tt.want {
			t.Errorf("message(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// toSignIn, land and back redirect only to this server's pages.
func TestRedirects(t *testing.T) {
	h := &Handlers{}
	for _, tt := range []struct {
		name, method, target, root string
		do                         func(c echo.Context) error
		want                       string
	}{
		{name: "to sign in from a principal", method: http.MethodGet, target: "/account/principals?offset=50",
			do: h.toSignIn, want: "/login?next=" + url.QueryEscape("/account/principals?offset=50")},
		{name: "to sign in from the account", method: http.MethodGet, target: "/account", do: h.toSignIn, want: "/login"},
		{name: "to sign in after a post", method: http.MethodPost, target: "/account/apikeys", do: h.toSignIn, want: "/login"},
		{name: "to sign in from a foreign-looking path", method: http.MethodGet, target: "/account//evil.example",
			do: h.toSignIn, want: "/login"},
		{name: "to sign in under a root path", method: http.MethodGet, target: "/account/principals", root: "/p",
			do: h.toSignIn, want: "/p/login?next=%2Faccount%2Fprincipals"},
		{name: "land nowhere", method: http.MethodPost, target: "/login/toy",
			do: func(c echo.Context) error { return h.land(c, "") }, want: "/account"},
		{name: "land on next", method: http.MethodPost, target: "/login/toy", root: "/p",
			do: func(c echo.Context) error { return h.land(c, "/account/principals") }, want: "/p/account/principals"},
		{name: "OIDC sign-in lands on the account", method: http.MethodGet, target: "/api/v1/auth/provider/idp/code",
			do: func(c echo.Context) error {
				return h.SignedIn(c, sessions.Tokens{AccessToken: "a", RefreshToken: "r"}, "")
			},
			want: "/account"},
		{name: "OIDC sign-in lands on next", method: http.MethodGet, target: "/api/v1/auth/provider/idp/code",
			do: func(c echo.Context) error {
				return h.SignedIn(c, sessions.Tokens{AccessToken: "a", RefreshToken: "r"}, "/account/principals")
			}, want: "/account/principals"},
		{name: "OIDC sign-in lands on redirect_on_success", method: http.MethodGet, target: "/api/v1/auth/provider/idp/code",
			do: func(c echo.Context) error {
				return h.SignedIn(c, sessions.Tokens{AccessToken: "a", RefreshToken: "r"}, "https://app.example/after")
			}, want: "https://app.example/after"},
		{name: "OIDC sign-in never lands on a scheme-relative URL", method: http.MethodGet, target: "/api/v1/auth/provider/idp/code",
			do: func(c echo.Context) error {
				return h.SignedIn(c, sessions.Tokens{AccessToken: "a", RefreshToken: "r"}, "//evil.example/account")
			}, want: "/account"},
		{name: "back to a principal", method: http.MethodPost, target: "/account/sessions/x/revoke",
			do: func(c echo.Context) error {
				return h.back(c, url.Values{"return": {"/account/principals/abc"}}, "session-revoked")
			}, want: "/account/principals/abc?done=session-revoked"},
		{name: "back not to another site", method: http.MethodPost, target: "/account/sessions/x/revoke",
			do: func(c echo.Context) error {
				return h.back(c, url.Values{"return": {"//evil.example"}}, "key-revoked")
			}, want: "/account?done=key-revoked"},
		{name: "back with a query", method: http.MethodPost, target: "/account/sessions/x/revoke",
			do: func(c echo.Context) error {
				return h.back(c, url.Values{"return": {"/account?done=x"}}, "key-revoked")
			}, want: "/account?done=key-revoked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.root != "" {
				req = req.WithContext(links.WithRootPath(req.Context(), tt.root))
			}
			c, rec := newContext(req)
			if err := tt.do(c); err != nil {
				t.Fatal(err)
			}
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != tt.want {
				t.Fatalf("%d to %q, want 303 to %q", rec.Code, rec.Header().Get("Location"), tt.want)
			}
		})
	}
}

// The templates meet the pages' own data types (the view package's test
// can only mirror them).
func TestTemplatesTakePageData(t *testing.T) {
	now := time.Now()
	pid := uuid.New()
	acct := func(self bool) view.Account {
		return view.Account{Self: self, ID: pid, Type: "user",
			Identities: []identity.Identity{{Provider: "toy", ID: "alice"}}, Roles: []string{"user"}, Method: "toy",
			Sessions: []view.SessionRow{{ID: uuid.New(), Created: now, LastUsed: now, Expires: now, Current: true}},
			Keys:     []view.KeyRow{{FirstEight: "abcdef12", Note: "n", Expires: &now, LastUsed: &now}},
			CanEnd:   true, CanRevokeKeys: self, CanCreateKey: self, ScopeChoices: []string{"read:data"}, Return: accountPath}
	}
	v := view.MustNew("t")
	for _, tt := range []struct {
		name, page string
		data       any
	}{
		{name: "login", page: "login", data: view.Login{Providers: []view.Provider{{Name: "toy"}, {Name: "o", External: true}}, Next: "/account"}},
		{name: "own account", page: "account", data: acct(true)},
		{name: "single user", page: "account", data: view.Account{SingleUser: true}},
		{name: "another principal", page: "account", data: acct(false)},
		{name: "principals", page: "principals", data: view.Principals{Rows: []view.PrincipalRow{{ID: pid, Type: "user", LatestActivity: &now}}, Next: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := newContext(httptest.NewRequest(http.MethodGet, "/account", nil))
			err := v.Render(c, http.StatusOK, tt.page, view.Page{Nav: &view.Nav{Name: "alice", SignOut: true}, Data: tt.data})
			if err != nil || rec.Code != http.StatusOK {
				t.Fatalf("render: %v (status %d)", err, rec.Code)
			}
		})
	}
}

// TestSignInFormRefusals: the sign-in form is refused before any password
// is checked when it is too large (413, at the edge), not a form, or posted
// without its CSRF token (403); each answer is the sign-in page saying why.
// Accounts is nil: reaching it would panic, so these tests also show that
// nothing was attempted.
func TestSignInFormRefusals(t *testing.T) {
	h := &Handlers{Providers: []view.Provider{{Name: "toy"}}, View: view.MustNew("test"), Now: time.Now}
	e := echo.New()
	h.Register(e.Group(""))
	const token = "tok"
	post := func(body, contentType string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/login/toy", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.AddCookie(&http.Cookie{Name: view.CSRFCookie, Value: token})
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	form := "application/x-www-form-urlencoded"
	// A form whose body is exactly maxForm bytes is read; one byte more is not.
	pad := func(n int) string {
		b := "csrf=wrong&username=alice&password=pw&note="
		return b + strings.Repeat("a", n-len(b))
	}
	for _, tc := range []struct {
		name, body, contentType string
		status                  int
		says                    string
	}{
		{"one byte over the limit", pad(maxForm + 1), form, http.StatusRequestEntityTooLarge, "larger than any page sends"},
		{"at the limit, wrong token", pad(maxForm), form, http.StatusForbidden, "did not come from this server"},
		{"no token", "username=alice&password=pw", form, http.StatusForbidden, "did not come from this server"},
		{"token one byte off", "csrf=tox&username=alice&password=pw", form, http.StatusForbidden, "did not come from this server"},
		{"good token, no password", "csrf=" + token + "&username=alice", form, http.StatusUnprocessableEntity, "Enter a username and a password"},
		{"good token, username too long", "csrf=" + token + "&password=pw&username=" + strings.Repeat("a", maxCredential+1), form, http.StatusUnprocessableEntity, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(tc.body, tc.contentType)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.says) {
				t.Fatalf("%d, want %d saying %q: %s", rec.Code, tc.status, tc.says, rec.Body.String())
			}
		})
	}
}
