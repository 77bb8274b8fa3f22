package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The keys the captures were recorded with.
const (
	recordedGeneratedKey = "0513c8dcf22a8da2500b45bb7db660fc725c164224196bec642092b934c257fb"
	recordedFixedKey     = "secret"
)

// Spec section 2: any Authorization scheme other than Bearer or Apikey.
const badSchemeDetail = "Authorization header must include the authorization type followed by a " +
	"space and then the secret, as in 'Bearer SECRET' or 'Apikey SECRET'."

const noCredentialsDetail = "Not enough permissions. Requires scopes ['read:metadata']. Request had scopes []"

// bannerRE is seed 000's start-up announcement of a generated key.
var bannerRE = regexp.MustCompile(`Use the following URL to connect to Tiled:\s*\n\s*(http://\S+)[ \t]*\r?\n`)

// publicNoticeRE is seed 000's public-mode notice, three lines verbatim.
var publicNoticeRE = regexp.MustCompile(`(?m)^[ \t]*Tiled server is running in "public" mode, permitting open, anonymous access\.[ \t]*\r?\n` +
	`[ \t]*Any data that is not specifically controlled with an access policy[ \t]*\r?\n` +
	`[ \t]*will be visible to anyone who can connect to this server\.[ \t]*$`)

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// otherKey is a key of the same length and alphabet as key, but wrong.
func otherKey(key string) string {
	first := "0"
	if key[0] == '0' {
		first = "1"
	}
	return first + key[1:]
}

func TestSingleUserGeneratedKey(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"config", tiledDemoConfig(t, "")})
	m := s.waitOutput(t, bannerRE)
	startURL := m[1]
	keyRE := regexp.MustCompile("^" + regexp.QuoteMeta(s.base+"/api/v1?api_key=") + "([0-9a-f]{64})$")
	km := keyRE.FindStringSubmatch(startURL)
	if km == nil {
		t.Fatalf("start-up URL %q, want %s/api/v1?api_key=<64 hex characters>", startURL, s.base)
	}
	key := km[1]

	t.Run("replay", func(t *testing.T) {
		t.Parallel()
		replayAll(t, s, recordedGeneratedKey, key,
			"single-metadata-header-key.txt",
			"single-metadata-query-key.txt",
			"single-metadata-no-key.txt",
			"single-metadata-wrong-key.txt",
			"single-metadata-nonhex-key.txt",
			"single-metadata-bearer-key.txt",
			"single-whoami-key.txt",
			"single-apikey-info.txt",
			"single-apikey-create.txt",
		)
	})

	t.Run("visiting the start-up URL sets the cookie", func(t *testing.T) {
		t.Parallel()
		checkStartURLCookie(t, s, startURL, key)
	})

	t.Run("credentials", func(t *testing.T) {
		t.Parallel()
		checkCredentials(t, s, key)
	})

	t.Run("data needs read:data", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		for _, path := range []string{"/api/v1/array/full/A?slice=0:2,0:3", "/api/v1/table/full/C"} {
			r := c.get(path, nil)
			expectDetail(t, r, http.StatusUnauthorized, "Not enough permissions. Requires scopes ['read:data']. Request had scopes []")
			if got := r.Header.Get("Www-Authenticate"); got != `Bearer scope="read:data"` {
				t.Errorf("%s: WWW-Authenticate %q, want %q", path, got, `Bearer scope="read:data"`)
			}
		}
		r := c.get("/api/v1/search/", nil)
		expectDetail(t, r, http.StatusUnauthorized, noCredentialsDetail)
	})

	t.Run("about", func(t *testing.T) { t.Parallel(); checkAbout(t, s, true) })
	t.Run("probes", func(t *testing.T) { t.Parallel(); checkProbes(t, s, key) })
	t.Run("unknown paths", func(t *testing.T) { t.Parallel(); checkUnknownPaths(t, s, apikey(key)) })
}

// checkStartURLCookie visits the printed URL as a browser would. Tiled
// answers 307 to /api/v1/?api_key=... without a cookie; this server sets
// the cookie on the way (a deliberate difference), either directly or on
// the redirect's target.
func checkStartURLCookie(t *testing.T, s *server, startURL, key string) {
	c := s.client(t)
	next := startURL
	var set []*http.Cookie
	var raw []string
	var last reply
	for hop := 0; ; hop++ {
		if hop == 5 {
			t.Fatalf("more than 5 redirects from %s", startURL)
		}
		last = c.get(next, nil)
		raw = append(raw, last.Header.Values("Set-Cookie")...)
		if ck := findCookie(last, "tiled_api_key"); ck != nil {
			set = append(set, ck)
		}
		if last.Status < 300 || last.Status >= 400 {
			break
		}
		loc, err := url.Parse(last.Header.Get("Location"))
		if err != nil {
			t.Fatalf("bad Location %q: %v", last.Header.Get("Location"), err)
		}
		base, _ := url.Parse(last.URL)
		next = base.ResolveReference(loc).String()
	}
	if expectStatus(t, last, http.StatusOK) {
		if _, ok := object(t, last)["api_version"]; !ok {
			t.Errorf("start-up URL does not lead to the about document: %s", last)
		}
	}
	if len(set) != 1 {
		t.Fatalf("want exactly one tiled_api_key cookie on the way, got %d; Set-Cookie headers %q", len(set), raw)
	}
	ck := set[0]
	if ck.Value != key {
		t.Errorf("cookie value %q, want the key", ck.Value)
	}
	if !ck.HttpOnly {
		t.Errorf("cookie is not HttpOnly: %q", ck.Raw)
	}
	if ck.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie SameSite is not Lax: %q", ck.Raw)
	}
	if ck.Path != "/" {
		t.Errorf("cookie Path %q, want /: %q", ck.Path, ck.Raw)
	}
	if l := strings.ToLower(ck.Raw); strings.Contains(l, "expires") || strings.Contains(l, "max-age") {
		t.Errorf("cookie must last for the browser session (no Expires or Max-Age): %q", ck.Raw)
	}

	// A browser that visited the URL is then authorised by the cookie alone.
	b := s.browser(t)
	expectStatus(t, b.get(startURL, hdr("Sec-Fetch-Site", "none")), http.StatusOK)
	r := b.get("/api/v1/metadata/", nil)
	if expectStatus(t, r, http.StatusOK) {
		expectAt(t, object(t, r), "container", "data", "attributes", "structure_family")
	}

	// A link or image on another site cannot plant a key in the browser
	// (login CSRF): a cross-site or same-site request gets no cookie, while
	// the key in its query still authenticates it.
	for _, site := range []string{"cross-site", "same-site"} {
		r := s.client(t).get(startURL, hdr("Sec-Fetch-Site", site))
		expectStatus(t, r, http.StatusOK)
		if ck := findCookie(r, "tiled_api_key"); ck != nil {
			t.Errorf("Sec-Fetch-Site %s: the key was set in a cookie: %q", site, r.Header.Values("Set-Cookie"))
		}
	}
	if ck := findCookie(s.client(t).get(startURL, hdr("Sec-Fetch-Site", "same-origin")), "tiled_api_key"); ck == nil {
		t.Errorf("Sec-Fetch-Site same-origin: no cookie")
	}
}

// checkCredentials tries every way a request may carry (or botch) the
// single-user key against GET /api/v1/metadata/ (spec section 2, captures).
func checkCredentials(t *testing.T, s *server, key string) {
	wrong := otherKey(key)
	cookie := func(v string) string { return "tiled_api_key=" + v }
	cases := []struct {
		name     string
		query    string
		header   http.Header
		status   int
		detail   string // when status is not 200
		wwwAuth  string // exact, when not empty
		wwwAuthP string // prefix, when not empty
	}{
		{name: "Apikey header", header: apikey(key), status: 200},
		{name: "api_key query", query: "?api_key=" + key, status: 200},
		{name: "cookie alone", header: hdr("Cookie", cookie(key)), status: 200},
		{name: "scheme is case-insensitive", header: hdr("Authorization", "apikey "+key), status: 200},
		{name: "header beats cookie", header: with(apikey(key), "Cookie", cookie(wrong)), status: 200},
		{name: "wrong key of the right length", header: apikey(wrong), status: 401, detail: "Invalid API key"},
		{name: "wrong key in query", query: "?api_key=" + wrong, status: 401, detail: "Invalid API key"},
		{name: "wrong key in cookie", header: hdr("Cookie", cookie(wrong)), status: 401, detail: "Invalid API key"},
		{name: "query beats header", query: "?api_key=" + wrong, header: apikey(key), status: 401, detail: "Invalid API key"},
		{name: "non-hex key", header: apikey("not-hex"), status: 401, detail: "Invalid API key"},
		{name: "key much too long", header: apikey(strings.Repeat(key, 64)), status: 401, detail: "Invalid API key"},
		{name: "key with one character more", header: apikey(key + "0"), status: 401, detail: "Invalid API key"},
		{name: "key with its last character dropped", header: apikey(key[:len(key)-1]), status: 401, detail: "Invalid API key"},
		{name: "key as the prefix of the query value", query: "?api_key=" + key + "00", status: 401, detail: "Invalid API key"},
		{name: "key as Bearer token", header: hdr("Authorization", "Bearer "+key), status: 401,
			detail: "Could not validate credentials", wwwAuthP: "Bearer"},
		{name: "garbage Bearer token", header: hdr("Authorization", "Bearer a.b.c"), status: 401,
			detail: "Could not validate credentials", wwwAuthP: "Bearer"},
		{name: "no credentials", status: 401, detail: noCredentialsDetail, wwwAuth: `Bearer scope="read:metadata"`},
		{name: "Basic scheme", header: hdr("Authorization", "Basic eDp5"), status: 400, detail: badSchemeDetail},
		{name: "scheme without secret", header: hdr("Authorization", "Token"), status: 400, detail: badSchemeDetail},
	}
	c := s.client(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.get("/api/v1/metadata/"+tc.query, tc.header)
			if !expectStatus(t, r, tc.status) {
				return
			}
			if tc.status == http.StatusOK {
				expectAt(t, object(t, r), "", "data", "id")
				return
			}
			got, _ := at(object(t, r), "detail")
			d, _ := got.(string)
			// Tiled's bad-scheme message ends with a space; either is fine.
			if strings.TrimRight(d, " ") != tc.detail {
				t.Errorf("detail %q, want %q", got, tc.detail)
			}
			if w := r.Header.Get("Www-Authenticate"); tc.wwwAuth != "" && w != tc.wwwAuth {
				t.Errorf("WWW-Authenticate %q, want %q", w, tc.wwwAuth)
			}
			if w := r.Header.Get("Www-Authenticate"); tc.wwwAuthP != "" && !strings.HasPrefix(w, tc.wwwAuthP) {
				t.Errorf("WWW-Authenticate %q, want it to start with %q", w, tc.wwwAuthP)
			}
		})
	}
}

// checkUnknownPaths: routes that do not exist are 404 JSON, with or
// without credentials (FastAPI routes before it authenticates).
func checkUnknownPaths(t *testing.T, s *server, auth http.Header) {
	c := s.client(t)
	for _, path := range []string{"/api/v1/no-such-route", "/api/v1/metadata-nope/", "/api/v1/array/nope/A"} {
		for _, h := range []http.Header{auth, nil} {
			expectDetail(t, c.get(path, h), http.StatusNotFound, "Not Found")
		}
	}
	for _, path := range []string{"/api/v1/search/no/such", "/api/v1/array/full/nope", "/api/v1/table/full/nope", "/api/v1/metadata/A/nope"} {
		expectStatus(t, c.get(path, auth), http.StatusNotFound)
	}
}

// tiledDemoConfig writes a service config that serves exactly Tiled's
// example tree (tiled.examples.generated_minimal:tree), the tree the
// captures were recorded on, so that replies can match byte for byte;
// `serve demo` adds entries of this server's own. authentication is the
// indented body of the authentication block, or empty.
func tiledDemoConfig(t *testing.T, authentication string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	body := "trees:\n  - path: /\n    tree: tiled.examples.generated_minimal:tree\n"
	if authentication != "" {
		body = "authentication:\n" + authentication + body
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixedKeyConfig writes a service config that sets the single-user key.
func fixedKeyConfig(t *testing.T, key string) string {
	t.Helper()
	return tiledDemoConfig(t, "  single_user_api_key: \""+key+"\"\n")
}

// TestFixedKey: a key given by flag, environment or config works, loses to
// the source above it (flags > env > config), and is never printed.
func TestFixedKey(t *testing.T) {
	t.Parallel()
	type setup struct {
		args []string
		env  []string
		good string   // the key that must work
		bad  []string // keys from lower-precedence sources, refused
	}
	cases := []struct {
		name string
		make func(t *testing.T) setup
	}{
		{"flag", func(t *testing.T) setup {
			k := randomHex(t, 32)
			return setup{args: []string{"config", tiledDemoConfig(t, ""), "--api-key", k}, good: k}
		}},
		{"environment", func(t *testing.T) setup {
			k := randomHex(t, 32)
			return setup{args: []string{"config", tiledDemoConfig(t, "")}, env: []string{"TILED_SINGLE_USER_API_KEY=" + k}, good: k}
		}},
		{"config", func(t *testing.T) setup {
			k := randomHex(t, 32)
			return setup{args: []string{"config", fixedKeyConfig(t, k)}, good: k}
		}},
		{"flag over environment", func(t *testing.T) setup {
			f, e := randomHex(t, 32), randomHex(t, 32)
			return setup{args: []string{"config", tiledDemoConfig(t, ""), "--api-key", f}, env: []string{"TILED_SINGLE_USER_API_KEY=" + e}, good: f, bad: []string{e}}
		}},
		{"environment over config", func(t *testing.T) setup {
			e, c := randomHex(t, 32), randomHex(t, 32)
			return setup{args: []string{"config", fixedKeyConfig(t, c)}, env: []string{"TILED_SINGLE_USER_API_KEY=" + e}, good: e, bad: []string{c}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := tc.make(t)
			s := startServer(t, st.args, st.env...)
			c := s.client(t)
			replay(t, s, "single-fixed-header-key.txt", recordedFixedKey, st.good)
			replay(t, s, "single-fixed-wrong-key.txt", recordedFixedKey, st.good)
			expectStatus(t, c.get("/api/v1/metadata/?api_key="+st.good, nil), http.StatusOK)
			for _, k := range st.bad {
				expectDetail(t, c.get("/api/v1/metadata/", apikey(k)), http.StatusUnauthorized, "Invalid API key")
			}
			expectDetail(t, c.get("/api/v1/metadata/", nil), http.StatusUnauthorized, noCredentialsDetail)
			out := s.stoppedOutput(t)
			for _, k := range append([]string{st.good}, st.bad...) {
				if lines := linesContaining(out, k); len(lines) > 0 {
					t.Errorf("a key given by flag, environment or config was printed:\n%s", strings.Join(lines, "\n"))
				}
			}
			if m := bannerRE.FindString(out); m != "" {
				t.Errorf("start-up URL printed although the key was given:\n%s", m)
			}
		})
	}
}

func linesContaining(out, sub string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestJSONLogs: with --log-format json every line the server writes is a
// JSON object with a message, and the key given on the command line
// appears in none of them, even after requests that carried it.
func TestJSONLogs(t *testing.T) {
	t.Parallel()
	key := randomHex(t, 32)
	s := startServer(t, []string{"demo", "--api-key", key, "--log-format", "json"})
	c := s.client(t)
	expectStatus(t, c.get("/api/v1/metadata/?api_key="+key, nil), http.StatusOK)
	expectStatus(t, c.get("/api/v1/metadata/A", apikey(key)), http.StatusOK)
	expectDetail(t, c.get("/api/v1/metadata/", apikey(otherKey(key))), http.StatusUnauthorized, "Invalid API key")
	out := s.stoppedOutput(t)
	lines := nonEmptyLines(out)
	if len(lines) == 0 {
		t.Fatal("no log lines")
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not a JSON log line: %q", l)
			continue
		}
		if _, ok := rec["msg"]; !ok {
			t.Errorf("log line without msg: %q", l)
		}
	}
	if leaked := linesContaining(out, key); len(leaked) > 0 {
		t.Errorf("the key was logged:\n%s", strings.Join(leaked, "\n"))
	}
}

// stoppedOutput stops the server (SIGTERM) and returns all it printed,
// shutdown included, failing the test unless it exited cleanly.
func (s *server) stoppedOutput(t *testing.T) string {
	t.Helper()
	s.stopAndWait(t)
	if s.err != nil {
		t.Errorf("server exited with %v after SIGTERM", s.err)
	}
	return s.output()
}

// TestPublicMode: --public and allow_anonymous_access print seed 000's
// notice and let anonymous callers read; a wrong key is still refused.
func TestPublicMode(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"flag", func(t *testing.T) []string { return []string{"config", tiledDemoConfig(t, ""), "--public"} }},
		{"config", func(*testing.T) []string {
			return []string{"config", filepath.Join(root, "examples", "configs", "public.yml")}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tc.args(t))
			s.waitOutput(t, publicNoticeRE)
			replayAll(t, s, "", "",
				"public-metadata-anonymous.txt",
				"public-metadata-wrong-key.txt",
				"public-whoami-anonymous.txt",
				"public-apikey-create-anonymous.txt",
			)
			c := s.client(t)
			r := c.get("/api/v1/search/", nil)
			if expectStatus(t, r, http.StatusOK) {
				expectAt(t, object(t, r), 4, "meta", "count")
			}
			r = c.get("/api/v1/array/full/A?slice=0:2,0:3", hdr("Accept", "application/json"))
			if expectStatus(t, r, http.StatusOK) {
				expectAt(t, decode(t, r), [][]float64{{1, 1, 1}, {1, 1, 1}})
			}
			r = c.get("/api/v1/table/full/C", hdr("Accept", "text/csv"))
			if expectStatus(t, r, http.StatusOK) {
				if want := loadCapture(t, "single-table-csv.txt").rbody; string(r.Body) != string(want) {
					t.Errorf("CSV of C differs from Tiled's: %s", truncate(r.Body, 200))
				}
			}
			expectDetail(t, c.get("/api/v1/metadata/", apikey("0000")), http.StatusUnauthorized, "Invalid API key")
			t.Run("about", func(t *testing.T) { checkAbout(t, s, false) })
			t.Run("probes", func(t *testing.T) { checkProbes(t, s) })
		})
	}
}
