package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/config"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
	"github.com/tiledgo/server/internal/version"
)

const (
	testAudience   = "api://tiled"
	testAdminToken = "0123456789abcdef0123456789abcdef"
)

// serveConfig assembles a replica from config YAML and serves it on loopback.
func serveConfig(t *testing.T, yml string, env map[string]string) (*httptest.Server, error) {
	t.Helper()
	a, err := assembleConfig(t, yml, env)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(a.server.Handler())
	t.Cleanup(srv.Close)
	return srv, nil
}

// assembleConfig assembles a replica from config YAML (and env for its
// ${VAR}s), closed when the test ends.
func assembleConfig(t testing.TB, yml string, env map[string]string) (*app, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Build([]string{path}, getenv, config.Flags{})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := assemble(ctx, cfg, logger, version.Info{Version: "test"})
	if err != nil {
		return nil, err
	}
	t.Cleanup(a.close)
	return a, nil
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, u, bearer string, hdr map[string]string, form url.Values) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func resourceConfig(idp *oidcprovider.Provider, extra string) string {
	return fmt.Sprintf(`
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
authentication:
  providers:
    - {provider: toy, authenticator: dictionary, args: {users_to_passwords: {bob: pw}}}
  tiled_admins: [{provider: %q, id: root}]
auth:
  enabled: true
  issuer: %q
  audience: %q
  algorithms: [RS256, ES256, PS256]
  read_scopes: [datasets:read]
  reload_scopes: [datasets:reload]
  tenant_claim: /tid
  allowed_tenants: [t1]
%s`, idp.Issuer(), idp.Issuer(), testAudience, extra)
}

func tokenClaims(idp *oidcprovider.Provider, sub string, scope string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": idp.Issuer(), "aud": testAudience, "sub": sub, "tid": "t1", "scope": scope,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

func startResourceIdP(t *testing.T) *oidcprovider.Provider {
	return oidcprovider.Start(t, oidcprovider.Options{ClientID: "tiled", ClientSecret: "x", Algorithms: []string{"RS256", "ES256", "PS256"}})
}

// TestResourceServer runs seed 001's rules end to end: real provider, real
// HTTP on loopback, the real store (SQLite in memory).
func TestResourceServer(t *testing.T) {
	idp := startResourceIdP(t)
	srv, err := serveConfig(t, resourceConfig(idp, ""), map[string]string{"TILED_ADMIN_TOKEN": testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	api := srv.URL + "/api/v1"
	read := tokenClaims(idp, "alice", "datasets:read")
	with := func(c map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range c {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		token   string
		status  int
		errCode string // in WWW-Authenticate
	}{
		{"RS256 with the read scope", idp.Mint("RS256", read), 200, ""},
		{"ES256 with the read scope", idp.Mint("ES256", read), 200, ""},
		{"PS256 with the read scope", idp.Mint("PS256", read), 200, ""},
		{"scp list with the read scope", idp.Mint("RS256", with(with(read, "scope", nil), "scp", []any{"datasets:read"})), 200, ""},
		{"without the read scope", idp.Mint("RS256", with(read, "scope", "datasets:reload")), 403, "insufficient_scope"},
		{"expired", idp.Mint("RS256", with(read, "exp", time.Now().Add(-2*time.Minute).Unix())), 401, "invalid_token"},
		{"expired within the leeway", idp.Mint("RS256", with(read, "exp", time.Now().Add(-30*time.Second).Unix())), 200, ""},
		{"wrong audience", idp.Mint("RS256", with(read, "aud", "api://other")), 401, "invalid_token"},
		{"wrong issuer", idp.Mint("RS256", with(read, "iss", "https://evil.example")), 401, "invalid_token"},
		{"wrong tenant", idp.Mint("RS256", with(read, "tid", "t2")), 401, "invalid_token"},
		{"alg none", oidcprovider.SignNone(read), 401, "invalid_token"},
		{"HS256 signed with the public key", oidcprovider.SignHS256(read, idp.PublicKeyDER("RS256")), 401, "invalid_token"},
		{"garbage", "not-a-token", 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "GET", api+"/metadata/", tt.token, nil, nil)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.raw)
			}
			if tt.status >= 400 {
				if _, ok := a.body["detail"]; !ok {
					t.Fatalf("no JSON detail: %s", a.raw)
				}
				h := a.header.Get("WWW-Authenticate")
				if !strings.HasPrefix(h, "Bearer") || (tt.errCode != "" && !strings.Contains(h, `error="`+tt.errCode+`"`)) ||
					(tt.errCode != "" && !strings.Contains(h, "error_description=")) {
					t.Fatalf("WWW-Authenticate %q", h)
				}
			}
		})
	}

	t.Run("a POST read needs the read scope too", func(t *testing.T) {
		a := call(t, "POST", api+"/table/full/C", idp.Mint("RS256", with(read, "scope", "datasets:reload")), nil, url.Values{})
		if a.status != 403 || !strings.Contains(a.header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Fatalf("%d %v %s", a.status, a.header, a.raw)
		}
		if b := call(t, "POST", api+"/table/full/C", idp.Mint("RS256", read), nil, url.Values{}); b.status != 200 {
			t.Fatalf("with the read scope: %d %s", b.status, b.raw)
		}
	})
	t.Run("no token, anonymous_read off", func(t *testing.T) {
		a := call(t, "GET", api+"/metadata/", "", nil, nil)
		if a.status != 401 || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%d %v", a.status, a.header)
		}
	})
	t.Run("about and probes stay open", func(t *testing.T) {
		for _, p := range []string{api + "/", srv.URL + "/healthz", srv.URL + "/readyz"} {
			if a := call(t, "GET", p, "garbage", nil, nil); a.status != 200 {
				t.Fatalf("%s: %d", p, a.status)
			}
		}
		if a := call(t, "GET", srv.URL+"/readyz", "", nil, nil); a.body["status"] != "ready" {
			t.Fatalf("readyz %s", a.raw)
		}
	})
	t.Run("whoami maps the token to a principal of the issuer", func(t *testing.T) {
		a := call(t, "GET", api+"/auth/whoami", idp.Mint("RS256", read), nil, nil)
		ids, _ := a.body["identities"].([]any)
		if a.status != 200 || len(ids) != 1 {
			t.Fatalf("%d %s", a.status, a.raw)
		}
		ident := ids[0].(map[string]any)
		if ident["provider"] != idp.Issuer() || ident["id"] != "alice" {
			t.Fatalf("identity %v", ident)
		}
	})
	t.Run("a bearer user creates an API key and uses it", func(t *testing.T) {
		tok := idp.Mint("RS256", tokenClaims(idp, "carol", "datasets:read create:apikeys"))
		req, _ := http.NewRequest("POST", api+"/auth/apikey", strings.NewReader(`{"scopes": ["read:metadata"]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var key map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&key)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("create key: %d %v", resp.StatusCode, key)
		}
		a := call(t, "GET", api+"/metadata/", "", map[string]string{"Authorization": "Apikey " + key["secret"].(string)}, nil)
		if a.status != 200 {
			t.Fatalf("metadata with the key: %d %s", a.status, a.raw)
		}
	})
	t.Run("session tokens of a password provider work side by side", func(t *testing.T) {
		a := call(t, "POST", api+"/auth/provider/toy/token", "", nil, url.Values{"username": {"bob"}, "password": {"pw"}})
		if a.status != 200 {
			t.Fatalf("login: %d %s", a.status, a.raw)
		}
		if b := call(t, "GET", api+"/metadata/", a.body["access_token"].(string), nil, nil); b.status != 200 {
			t.Fatalf("metadata with a session token: %d %s", b.status, b.raw)
		}
	})
	t.Run("tiled_admins of the issuer are admins", func(t *testing.T) {
		a := call(t, "GET", api+"/auth/principal", idp.Mint("RS256", tokenClaims(idp, "root", "datasets:read")), nil, nil)
		if a.status != 200 {
			t.Fatalf("admin route: %d %s", a.status, a.raw)
		}
		if b := call(t, "GET", api+"/auth/principal", idp.Mint("RS256", read), nil, nil); b.status != 401 {
			t.Fatalf("admin route for a user: %d", b.status)
		}
	})

	reloads := []struct {
		name   string
		token  string
		admin  string
		status int
	}{
		{"reload scope", idp.Mint("RS256", tokenClaims(idp, "alice", "datasets:reload")), "", 200},
		{"read scope only", idp.Mint("RS256", read), "", 403},
		{"admin token", "", testAdminToken, 200},
		{"wrong admin token", "", testAdminToken[:31] + "x", 401},
		{"admin token prefix", "", testAdminToken[:16], 401},
		{"nothing", "", "", 401},
		{"invalid bearer", "garbage", "", 401},
		{"admin principal", idp.Mint("RS256", tokenClaims(idp, "root", "")), "", 200},
	}
	for _, tt := range reloads {
		t.Run("reload/"+tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.admin != "" {
				hdr["X-Admin-Token"] = tt.admin
			}
			a := call(t, "POST", api+"/reload", tt.token, hdr, nil)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.raw)
			}
			if a.status == 200 {
				if _, ok := a.body["added"]; !ok {
					t.Fatalf("no changes listed: %s", a.raw)
				}
			} else if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("refusal without a challenge: %v", a.header)
			}
		})
	}
}

// TestStartDegraded: the identity provider is down at start.
func TestStartDegraded(t *testing.T) {
	idp := startResourceIdP(t)
	idp.SetAvailable(false)
	t.Run("start_degraded = false refuses to start", func(t *testing.T) {
		_, err := serveConfig(t, resourceConfig(idp, "  start_degraded: false\n"), nil)
		if err == nil || !strings.Contains(err.Error(), "start_degraded") {
			t.Fatalf("err = %v", err)
		}
	})
	srv, err := serveConfig(t, resourceConfig(idp, "  anonymous_read: true\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := idp.Mint("RS256", tokenClaims(idp, "alice", "datasets:read"))
	a := call(t, "GET", srv.URL+"/api/v1/metadata/", tok, nil, nil)
	if a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("bearer while degraded: %d %v %s", a.status, a.header, a.raw)
	}
	if r := call(t, "GET", srv.URL+"/readyz", "", nil, nil); r.status != 200 || r.body["status"] != "degraded" {
		t.Fatalf("readyz %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", srv.URL+"/api/v1/metadata/", "", nil, nil); r.status != 200 {
		t.Fatalf("anonymous read while degraded: %d", r.status)
	}
	idp.SetAvailable(true)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if a = call(t, "GET", srv.URL+"/api/v1/metadata/", tok, nil, nil); a.status == 200 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a.status != 200 {
		t.Fatalf("after the provider came back: %d %s", a.status, a.raw)
	}
	if r := call(t, "GET", srv.URL+"/readyz", "", nil, nil); r.body["status"] != "ready" {
		t.Fatalf("readyz %s", r.raw)
	}
}

// TestEntra: Tiled's EntraAuthenticator: scopes_map, the uuid5(iss|sub)
// principal id, the user name as identity, and the about document.
func TestEntra(t *testing.T) {
	idp := startResourceIdP(t)
	yml := fmt.Sprintf(`
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
authentication:
  providers:
    - provider: entra
      authenticator: tiled.authenticators:EntraAuthenticator
      args:
        audience: %q
        client_id: tiled
        well_known_uri: %q
        device_flow_client_id: tiled-cli
        scopes_map: {access_as_user: [read:metadata, read:data]}
`, testAudience, idp.WellKnownURI())
	srv, err := serveConfig(t, yml, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := srv.URL + "/api/v1"
	claims := tokenClaims(idp, "opaque-entra-sub", "")
	delete(claims, "scope")
	claims["scp"] = "access_as_user"
	claims["preferred_username"] = "dallan@contoso.example"
	a := call(t, "GET", api+"/auth/whoami", idp.Mint("RS256", claims), nil, nil)
	if a.status != 200 {
		t.Fatalf("whoami %d %s", a.status, a.raw)
	}
	want := uuid.NewSHA1(uuid.NameSpaceURL, []byte(idp.Issuer()+"|opaque-entra-sub")).String()
	if a.body["uuid"] != want {
		t.Fatalf("principal %v, want uuid5(iss|sub) %s", a.body["uuid"], want)
	}
	ident := a.body["identities"].([]any)[0].(map[string]any)
	if ident["id"] != "dallan" || ident["provider"] != "entra" {
		t.Fatalf("identity %v", ident)
	}
	if m := call(t, "GET", api+"/metadata/", idp.Mint("RS256", claims), nil, nil); m.status != 200 {
		t.Fatalf("metadata with a mapped scope: %d %s", m.status, m.raw)
	}
	about := call(t, "GET", api+"/", "", nil, nil)
	auth := about.body["authentication"].(map[string]any)
	p := auth["providers"].([]any)[0].(map[string]any)
	links := p["links"].(map[string]any)
	if p["mode"] != "external" || links["client_id"] != "tiled-cli" || links["token_endpoint"] == nil {
		t.Fatalf("about %v", p)
	}
	if auth["links"].(map[string]any)["refresh_session"] != links["token_endpoint"] {
		t.Fatalf("refresh_session %v", auth["links"])
	}
}

// TestReloadSingleUser: without the auth block, the single-user key and
// seed 001's legacy X-Admin-Token may reload; a directory rescan reports
// what changed.
func TestReloadSingleUser(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.csv"), []byte("x,y\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf("trees: [{path: /, tree: directory, args: {directory: %q}}]\nauthentication: {single_user_api_key: secretkey1}\n", dir)
	srv, err := serveConfig(t, yml, map[string]string{"TILED_ADMIN_TOKEN": testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.csv"), []byte("x\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a.csv")); err != nil {
		t.Fatal(err)
	}
	u := srv.URL + "/api/v1/reload"
	if a := call(t, "POST", u, "", nil, nil); a.status != 401 {
		t.Fatalf("anonymous reload: %d", a.status)
	}
	if a := call(t, "POST", u, "", map[string]string{"X-Admin-Token": "wrong-token-of-some-length"}, nil); a.status != 401 {
		t.Fatalf("wrong admin token: %d", a.status)
	}
	a := call(t, "POST", u, "", map[string]string{"X-Admin-Token": testAdminToken}, nil)
	if a.status != 200 || fmt.Sprint(a.body["added"]) != "[b]" || fmt.Sprint(a.body["removed"]) != "[a]" {
		t.Fatalf("reload: %d %s", a.status, a.raw)
	}
	if m := call(t, "GET", srv.URL+"/api/v1/metadata/b", "", map[string]string{"Authorization": "Apikey secretkey1"}, nil); m.status != 200 {
		t.Fatalf("new entry not served: %d", m.status)
	}
	a = call(t, "POST", u, "", map[string]string{"Authorization": "Apikey secretkey1", "Content-Type": "application/json"}, nil)
	if a.status != 200 || fmt.Sprint(a.body["added"]) != "[]" {
		t.Fatalf("reload with the single-user key: %d %s", a.status, a.raw)
	}
}

// TestAdminTokenFallbackOff: with admin_token_fallback = false the header
// no longer reloads, even with the right token.
func TestAdminTokenFallbackOff(t *testing.T) {
	idp := startResourceIdP(t)
	srv, err := serveConfig(t, resourceConfig(idp, "  admin_token_fallback: false\n"), map[string]string{"TILED_ADMIN_TOKEN": testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	if a := call(t, "POST", srv.URL+"/api/v1/reload", "", map[string]string{"X-Admin-Token": testAdminToken}, nil); a.status != 401 {
		t.Fatalf("admin token with the fallback off: %d", a.status)
	}
}
