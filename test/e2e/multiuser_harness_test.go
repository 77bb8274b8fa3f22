package e2e

// What the multi-user tests (issue 4, "Private multi-user service") share:
// the two session-database backends every scenario runs on, service
// configs written as YAML into the test's temporary directory, a server
// started on a port chosen in advance (an OIDC provider must know the
// redirect URIs before the server starts), requests that may answer 5xx on
// purpose, token helpers, bounded polling and comparison of JSON shapes
// with the multi-user captures of real Tiled (testdata/multiuser).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

// The dictionary users, passed to the server in the environment as
// ${ALICE_PASSWORD}..., as examples/configs/dictionary_config.yml does.
var muPasswords = map[string]string{"alice": "alice-e2e-pw-1", "bob": "bob-e2e-pw-2", "cara": "cara-e2e-pw-3"}

// muSecretKey is the fixed secret_keys entry: replicas sharing it accept
// each other's tokens.
const muSecretKey = "e2e-multiuser-fixed-secret-key-7f3a9c51d2e84b06"

// Provider names used in the configs.
const (
	provToy   = "toy"   // DictionaryAuthenticator: alice, bob, cara
	provDummy = "dummy" // DummyAuthenticator
	provPAM   = "local" // PAMAuthenticator over a dedicated service file
	provIdP   = "idp"   // OIDCAuthenticator against oidcprovider
)

// OIDC client registered with the test provider.
const (
	oidcClientID     = "tiled-e2e"
	oidcClientSecret = "tiled-e2e-client-secret"
)

// Tiled's messages (spec sections 4, 6, 7; captures).
const (
	msgSessionExpired = "Session has expired. Please re-authenticate."
	msgBadCreds       = "Could not validate credentials"
	msgAccessExpired  = "Access token has expired. Refresh token."
	msgWrongPassword  = "Incorrect username or password"
	msgInvalidAPIKey  = "Invalid API key"
)

func muEnv() []string {
	return []string{
		"ALICE_PASSWORD=" + muPasswords["alice"],
		"BOB_PASSWORD=" + muPasswords["bob"],
		"CARA_PASSWORD=" + muPasswords["cara"],
	}
}

// backend is a session database a server is configured with.
type backend struct {
	name string // "sqlite" or "postgres"
	uri  string
}

// forEachBackend runs fn, in parallel, on a fresh embedded SQLite file and
// on a fresh PostgreSQL database (pgtest: TEST_DATABASE_URL, else a
// container, else a loud skip that CI=true turns into a failure).
func forEachBackend(t *testing.T, fn func(t *testing.T, db backend)) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newBackend(t, name))
		})
	}
}

func newBackend(t *testing.T, name string) backend {
	t.Helper()
	if name == "postgres" {
		return backend{name: name, uri: pgtest.NewDatabase(t)}
	}
	// sqlite:////abs/path.db: TempDir is absolute, so this has four slashes.
	return backend{name: name, uri: "sqlite:///" + filepath.Join(t.TempDir(), "auth.db")}
}

// muConfig is a multi-user service config: Tiled's example tree (the tree
// the captures were recorded on), the dictionary provider toy with alice as
// admin, fixed secret_keys, and db migrated at start.
func muConfig(db backend) map[string]any {
	return map[string]any{
		"authentication": map[string]any{
			"secret_keys":  []any{muSecretKey},
			"providers":    []any{toyProvider()},
			"tiled_admins": []any{map[string]any{"provider": provToy, "id": "alice"}},
		},
		"database": map[string]any{"uri": db.uri, "init_if_not_exists": true},
		"trees":    []any{tiledTree("/", nil)},
	}
}

func toyProvider() map[string]any {
	return map[string]any{
		"provider":      provToy,
		"authenticator": "tiled.authenticators:DictionaryAuthenticator",
		"args": map[string]any{"users_to_passwords": map[string]any{
			"alice": "${ALICE_PASSWORD}", "bob": "${BOB_PASSWORD}", "cara": "${CARA_PASSWORD}",
		}},
	}
}

// tiledTree mounts Tiled's example tree at path, with an access blob when
// blob is not nil.
func tiledTree(path string, blob map[string]any) map[string]any {
	tr := map[string]any{"path": path, "tree": "tiled.examples.generated_minimal:tree"}
	if blob != nil {
		tr["args"] = map[string]any{"top_level_access_blob": blob}
	}
	return tr
}

// authOf is the authentication block of a config made by muConfig.
func authOf(cfg map[string]any) map[string]any { return cfg["authentication"].(map[string]any) }

func addProvider(cfg map[string]any, p map[string]any) {
	a := authOf(cfg)
	a["providers"] = append(a["providers"].([]any), p)
}

// writeConfig writes cfg as YAML into a fresh temporary directory.
func writeConfig(t *testing.T, cfg map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serverCase is a check against a running server, one of many sharing it.
type serverCase struct {
	name string
	run  func(t *testing.T, s *server)
}

// runOnServer runs each case against s, in parallel.
func runOnServer(t *testing.T, s *server, cases []serverCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { t.Parallel(); tc.run(t, s) })
	}
}

// startMU serves cfg on a free port.
func startMU(t *testing.T, cfg map[string]any) *server {
	t.Helper()
	return startServer(t, []string{"config", writeConfig(t, cfg)}, muEnv()...)
}

// startMUAt serves cfg on port, chosen by the caller beforehand.
func startMUAt(t *testing.T, port int, cfg map[string]any) *server {
	t.Helper()
	s := launchAt(t, port, []string{"config", writeConfig(t, cfg)}, muEnv())
	if err := waitReady(s); err != nil {
		t.Fatalf("server on port %d did not become ready: %v\n%s", port, err, s.output())
	}
	return s
}

// launchAt is the harness's launch on a given port: the redirect URIs an
// OIDC provider registers must name the server's port before it starts.
func launchAt(t *testing.T, port int, args, env []string) *server {
	t.Helper()
	return launchOn(t, serverBinary(t), port, args, env)
}

// startOIDC runs a real OpenID Connect provider in-process, with the
// server's redirect URIs for provider idp registered for every port.
func startOIDC(t *testing.T, ports ...int) *oidcprovider.Provider {
	t.Helper()
	var redirects []string
	for _, p := range ports {
		base := "http://127.0.0.1:" + strconv.Itoa(p) + "/api/v1/auth/provider/" + provIdP
		redirects = append(redirects, base+"/code", base+"/device_code")
	}
	return oidcprovider.Start(t, oidcprovider.Options{
		ClientID: oidcClientID, ClientSecret: oidcClientSecret, RedirectURIs: redirects,
		Users: []string{"alice", "bob", "dora"},
	})
}

// oidcProviderConfig is the provider entry of the config, by discovery.
func oidcProviderConfig(op *oidcprovider.Provider) map[string]any {
	return map[string]any{
		"provider":      provIdP,
		"authenticator": "tiled.authenticators:OIDCAuthenticator",
		"args": map[string]any{
			"client_id": oidcClientID, "client_secret": oidcClientSecret,
			"well_known_uri":       op.WellKnownURI(),
			"confirmation_message": "You have logged in with the test provider as {id}.",
		},
	}
}

// rawDo sends one request without the checks of client.do, for answers
// that are 5xx on purpose (503 while the database is not ready); err is the
// transport's error, such as the client timeout.
func rawDo(method, url string, h http.Header, body []byte, timeout time.Duration) (reply, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	hc := &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := hc.Do(req)
	if err != nil {
		return reply{Method: method, URL: url}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{Method: method, URL: url}, err
	}
	return reply{Method: method, URL: url, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// jarClient keeps cookies (keyed by host, not port, so replicas on
// 127.0.0.1 share them as behind one host name) and never follows
// redirects, so each step of a browser flow can be checked and sent to the
// replica of the test's choice.
func jarClient(t *testing.T, s *server) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, s: s, http: &http.Client{
		Timeout: 15 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// on is the same client (same cookies) talking to another replica.
func (c *client) on(s *server) *client { return &client{t: c.t, s: s, http: c.http} }

func bearer(token string) http.Header { return hdr("Authorization", "Bearer "+token) }

// postJSON POSTs v as JSON (a string is sent as is).
func (c *client) postJSON(path string, h http.Header, v any) reply {
	c.t.Helper()
	var body []byte
	if s, ok := v.(string); ok {
		body = []byte(s)
	} else {
		var err error
		if body, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	return c.do(http.MethodPost, path, with(h, "Content-Type", "application/json"), body)
}

// postForm POSTs form-encoded values.
func (c *client) postForm(path string, h http.Header, v url.Values) reply {
	c.t.Helper()
	return c.do(http.MethodPost, path, with(h, "Content-Type", "application/x-www-form-urlencoded"), []byte(v.Encode()))
}

// login is a password login (spec section 4).
func (c *client) login(provider, user, password string) reply {
	c.t.Helper()
	return c.postForm("/api/v1/auth/provider/"+provider+"/token", nil, url.Values{"username": {user}, "password": {password}})
}

func (c *client) refresh(token string) reply {
	c.t.Helper()
	return c.postJSON("/api/v1/auth/session/refresh", nil, map[string]string{"refresh_token": token})
}

// tokenPair is a decoded token JSON.
type tokenPair struct {
	Access, Refresh, Principal string
	Body                       map[string]any
}

// tokensOf decodes a 200 token JSON, failing the test otherwise.
func tokensOf(t *testing.T, r reply) tokenPair {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("want a token JSON, got %s", r)
	}
	m := object(t, r)
	str := func(k string) string { s, _ := m[k].(string); return s }
	tp := tokenPair{Access: str("access_token"), Refresh: str("refresh_token"), Principal: str("principal"), Body: m}
	if tp.Access == "" || tp.Refresh == "" {
		t.Fatalf("token JSON without access_token or refresh_token: %s", r)
	}
	return tp
}

// mustLogin logs in with the dictionary password of user at toy.
func mustLogin(t *testing.T, c *client, user string) tokenPair {
	t.Helper()
	return tokensOf(t, c.login(provToy, user, muPasswords[user]))
}

func mustRefresh(t *testing.T, c *client, token string) tokenPair {
	t.Helper()
	return tokensOf(t, c.refresh(token))
}

// whoami returns the caller's principal as JSON.
func whoami(t *testing.T, c *client, h http.Header) map[string]any {
	t.Helper()
	m, ok := c.getObject("/api/v1/auth/whoami", h)
	if !ok {
		t.FailNow()
	}
	return m
}

// poll calls try every interval until it reports done or timeout passes;
// then the test fails with try's last account of what it saw.
func poll(t *testing.T, timeout, interval time.Duration, what string, try func() (done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, last := try()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		}
		time.Sleep(interval) // polling interval, bounded by the deadline above
	}
}

// muCapture names a file of testdata/multiuser for loadCapture, which
// reads testdata/captures.
func muCapture(name string) string { return filepath.Join("..", "multiuser", name) }

// captureBody decodes the JSON body of a multi-user capture (.txt) or a
// JSON capture file (.json).
func captureBody(t *testing.T, name string) any {
	t.Helper()
	var raw []byte
	if strings.HasSuffix(name, ".json") {
		var err error
		if raw, err = os.ReadFile(filepath.Join("testdata", "multiuser", name)); err != nil {
			t.Fatal(err)
		}
	} else {
		raw = loadCapture(t, muCapture(name)).rbody
	}
	v, err := decodeBytes(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// expectShape checks that got has the members of the capture's body, no
// others, and values of the same JSON kinds (arrays element by element
// against the capture's first element).
func expectShape(t *testing.T, capture string, got any) {
	t.Helper()
	if d := shapeDiff("body", captureBody(t, capture), got); len(d) > 0 {
		t.Errorf("shape differs from Tiled's %s:\n%s", capture, strings.Join(d, "\n"))
	}
}

func shapeDiff(path string, want, got any) []string {
	if got == nil && nullableMember(path) {
		return nil
	}
	if jsonKind(want) != jsonKind(got) {
		return []string{fmt.Sprintf("%s: %s %s, Tiled has %s %s", path, jsonKind(got), compact(got), jsonKind(want), compact(want))}
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		var out []string
		for _, k := range sortedKeys(w) {
			if _, ok := g[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing (Tiled has %s)", path, k, compact(w[k])))
				continue
			}
			out = append(out, shapeDiff(path+"."+k, w[k], g[k])...)
		}
		for _, k := range sortedKeys(g) {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: member Tiled does not have: %s", path, k, compact(g[k])))
			}
		}
		return out
	case []any:
		g := got.([]any)
		if len(w) == 0 {
			return nil
		}
		var out []string
		for i := range g {
			out = append(out, shapeDiff(fmt.Sprintf("%s[%d]", path, i), w[0], g[i])...)
		}
		return out
	}
	return nil
}

// nullableMember reports whether the member at path is Optional in
// Tiled's schemas (tiled/server/schemas.py), so null is a valid value even
// where the capture happens to show one.
func nullableMember(path string) bool {
	switch path[strings.LastIndex(path, ".")+1:] {
	case "latest_activity", "latest_login", "expiration_time", "note", "access_tags":
		return true
	}
	return false
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// number reads a JSON number (as decode keeps it) as a float.
func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

var (
	hex32RE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hex72RE = regexp.MustCompile(`^[0-9a-f]{72}$`)
	hex64RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// dashedUUID turns Tiled's principal hex into the uuid form of principal JSON.
func dashedUUID(hex string) string {
	if len(hex) != 32 {
		return hex
	}
	return hex[:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:]
}

// stringsAt reads an array of strings at path.
func stringsAt(v any, path ...any) []string {
	a, _ := at(v, path...)
	list, _ := a.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// testCtx bounds a call to the in-process OIDC provider.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}
