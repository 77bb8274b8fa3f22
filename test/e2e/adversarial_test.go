package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// advCase is one hostile request and the answer it must get.
type advCase struct {
	name         string
	method, path string
	h            http.Header
	body         []byte
	status       int
	// detail is the exact "detail" string; "~text" means the body contains
	// text; "" checks the status only.
	detail string
	// raw: the answer comes from Go's HTTP server before any handler (431),
	// plain text, so the JSON error shape is not required.
	raw bool
	// c is the client to send it with (cookies of a browser flow); nil: a
	// fresh one.
	c *client
}

// runAdversarial sends every case and checks its answer. No case may be
// answered 5xx (client.do fails the test on one too).
func runAdversarial(t *testing.T, s *server, cases []advCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r reply
			if tc.raw {
				var err error
				r, err = rawDo(tc.method, s.base+tc.path, tc.h, tc.body, 15*time.Second)
				if err != nil {
					t.Fatalf("%s %s: %v", tc.method, tc.path, err)
				}
				if r.Status >= 500 {
					t.Fatalf("server error: %s", r)
				}
			} else {
				c := tc.c
				if c == nil {
					c = s.client(t)
				}
				r = c.do(tc.method, tc.path, tc.h, tc.body)
			}
			switch {
			case tc.detail == "":
				expectStatus(t, r, tc.status)
			case strings.HasPrefix(tc.detail, "~"):
				if expectStatus(t, r, tc.status) && !strings.Contains(string(r.Body), tc.detail[1:]) {
					t.Errorf("body does not contain %q: %s", tc.detail[1:], r)
				}
			default:
				expectDetail(t, r, tc.status, tc.detail)
			}
		})
	}
}

// signHS256 makes a JWT with the given header and claims, signed with key
// (HMAC-SHA256), by hand so that any header can be forged.
func signHS256(t *testing.T, header, claims map[string]any, key []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	sig, err := jwt.SigningMethodHS256.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// claimsOf decodes a JWT's payload without checking it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func withClaims(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestAdversarial (issue 19): hundreds of hostile requests against the real
// binary, each with the status and message it must get, and not one 5xx:
// malformed credentials in every place they travel, forged and mangled
// tokens, refresh tokens stolen, spliced, expired, revoked and reused, API
// keys one byte off, OIDC callbacks with a wrong state, a replayed code or
// a redirect elsewhere, bodies empty, huge, wrongly typed or deeply nested,
// and paths that try to leave a served directory.
func TestAdversarial(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	op := startOIDC(t, port)
	cfg := muConfig(newBackend(t, "sqlite"))
	addProvider(cfg, oidcProviderConfig(op))
	cfg["server"] = map[string]any{
		"refresh_grace_period":            0, // any reuse is reuse
		"login_failures_per_user_address": 100000, "login_failures_per_address": 100000, "login_failure_max_delay": 0,
	}
	s := startMUAt(t, port, cfg)
	c := s.client(t)
	alice, bob := mustLogin(t, c, "alice"), mustLogin(t, c, "bob")
	key := secretOf(t, mustCreateKey(t, c, bearer(bob.Access), map[string]any{"scopes": []string{"read:metadata"}}))

	var cases []advCase
	add := func(tc advCase) { cases = append(cases, tc) }
	const (
		metadata = "/api/v1/metadata/"
		whoamiP  = "/api/v1/auth/whoami"
		loginP   = "/api/v1/auth/provider/" + provToy + "/token"
		refreshP = "/api/v1/auth/session/refresh"
		revokeP  = "/api/v1/auth/session/revoke"
		keyP     = "/api/v1/auth/apikey"
	)
	badScheme := "Authorization header must include the authorization type followed by a space and then the secret, as in 'Bearer SECRET' or 'Apikey SECRET'. "

	// 1. Malformed Authorization headers, on an open and a guarded route.
	for _, a := range []struct {
		h              string
		status         int
		detail, whoami string
	}{
		{"Basic YWxpY2U6cHc=", 400, badScheme, badScheme},
		{"Digest username=alice", 400, badScheme, badScheme},
		{"Token abc", 400, badScheme, badScheme},
		{"Bearer", 401, noCredentialsDetail, "null"},
		{"Bearer ", 401, noCredentialsDetail, "null"},
		{"Bearer    ", 401, noCredentialsDetail, "null"},
		{"Apikey", 401, noCredentialsDetail, "null"},
		{"Apikey ", 401, noCredentialsDetail, "null"},
		{"Bearer x", 401, msgBadCreds, msgBadCreds},
		{"Bearer a.b", 401, msgBadCreds, msgBadCreds},
		{"Bearer a.b.c", 401, msgBadCreds, msgBadCreds},
		{"Bearer ...", 401, msgBadCreds, msgBadCreds},
		{"Bearer a.b.c.d", 401, msgBadCreds, msgBadCreds},
		{"Bearer " + strings.Repeat("A", 20000), 401, msgBadCreds, msgBadCreds},
		{"Bearer " + alice.Access + " extra", 401, msgBadCreds, msgBadCreds},
		{"Bearer Bearer " + alice.Access, 401, msgBadCreds, msgBadCreds},
		{"Apikey " + key + " " + key, 401, msgInvalidAPIKey, msgInvalidAPIKey},
		{"Apikey not-a-key", 401, msgInvalidAPIKey, msgInvalidAPIKey},
		{"Apikey " + strings.Repeat("z", 72), 401, msgInvalidAPIKey, msgInvalidAPIKey},
		{"Apikey " + strings.Repeat("0", 72), 401, msgInvalidAPIKey, msgInvalidAPIKey},
		{"Apikey %00", 401, msgInvalidAPIKey, msgInvalidAPIKey},
		{"Apikey ' OR '1'='1", 401, msgInvalidAPIKey, msgInvalidAPIKey},
		{"Apikey " + alice.Access, 401, msgInvalidAPIKey, msgInvalidAPIKey},
		{"Bearer " + key, 401, msgBadCreds, msgBadCreds},
		{"Bearer " + alice.Refresh, 401, msgBadCreds, msgBadCreds},
		{"bearer " + alice.Access, 200, "", ""},
		{"BEARER " + alice.Access, 200, "", ""},
		{"apikey " + key, 200, "", ""},
		{"APIKEY " + key, 200, "", ""},
		{" Bearer " + alice.Access, 200, "", ""},
	} {
		name := fmt.Sprintf("authorization %.30q", a.h)
		add(advCase{name: name + " metadata", method: "GET", path: metadata, h: hdr("Authorization", a.h), status: a.status, detail: a.detail})
		ws := a.status
		if a.whoami == "null" || a.status == 200 {
			ws = 200
		}
		wd := a.whoami
		if wd == "null" {
			wd = ""
		}
		add(advCase{name: name + " whoami", method: "GET", path: whoamiP, h: hdr("Authorization", a.h), status: ws, detail: wd})
	}

	// 2. Access tokens: mangled, forged, confused, expired.
	base := claimsOf(t, alice.Access)
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	now := time.Now().Unix()
	parts := strings.Split(alice.Access, ".")
	noneToken := func(alg string) string {
		h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT"})
		return base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + "."
	}
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(base)).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	type tok struct {
		name, token, detail string
	}
	tokens := []tok{
		{"truncated by one", alice.Access[:len(alice.Access)-1], msgBadCreds},
		{"truncated by ten", alice.Access[:len(alice.Access)-10], msgBadCreds},
		{"without signature", parts[0] + "." + parts[1] + ".", msgBadCreds},
		{"header and payload only", parts[0] + "." + parts[1], msgBadCreds},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(bob.Access, ".")[2], msgBadCreds},
		{"payload of another token", parts[0] + "." + strings.Split(bob.Access, ".")[1] + "." + parts[2], msgBadCreds},
		{"one payload byte flipped", parts[0] + "." + flip(parts[1]) + "." + parts[2], msgBadCreds},
		{"one signature byte flipped", parts[0] + "." + parts[1] + "." + flip(parts[2]), msgBadCreds},
		{"padded base64", parts[0] + "==." + parts[1] + "." + parts[2], msgBadCreds},
		{"alg none", noneToken("none"), msgBadCreds},
		{"alg None", noneToken("None"), msgBadCreds},
		{"alg NONE", noneToken("NONE"), msgBadCreds},
		{"alg nOnE", noneToken("nOnE"), msgBadCreds},
		{"alg none with the real signature", noneToken("none") + parts[2], msgBadCreds},
		{"re-signed with another key", signHS256(t, hs, base, []byte("not-the-server-key")), msgBadCreds},
		{"re-signed with an empty key", signHS256(t, hs, base, []byte("")), msgBadCreds},
		{"admin scopes re-signed with another key", signHS256(t, hs, withClaims(base, "scp", []string{"write:principals", "admin:apikeys"}), []byte("x")), msgBadCreds},
		{"HS256 signed with an RSA public key (PEM)", signHS256(t, hs, base, pubPEM), msgBadCreds},
		{"HS256 signed with an RSA public key (DER)", signHS256(t, hs, base, pubDER), msgBadCreds},
		{"RS256", rs256, msgBadCreds},
		{"kid path traversal", signHS256(t, map[string]any{"alg": "HS256", "kid": "../../../../dev/null"}, base, []byte("")), msgBadCreds},
		{"kid SQL", signHS256(t, map[string]any{"alg": "HS256", "kid": "x' UNION SELECT 'key"}, base, []byte("key")), msgBadCreds},
		{"kid 0", signHS256(t, map[string]any{"alg": "HS256", "kid": "0"}, base, []byte("0")), msgBadCreds},
		{"kid huge", signHS256(t, map[string]any{"alg": "HS256", "kid": strings.Repeat("k", 5000)}, base, []byte("k")), msgBadCreds},
		{"jku to elsewhere", signHS256(t, map[string]any{"alg": "HS256", "jku": "http://127.0.0.1:9/jwks"}, base, []byte("k")), msgBadCreds},
		{"jwk embedded", signHS256(t, map[string]any{"alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": "aw"}}, base, []byte("k")), msgBadCreds},
		{"huge claims", signHS256(t, hs, withClaims(base, "junk", strings.Repeat("j", 15000)), []byte("k")), msgBadCreds},
		{"huge claims with the server key", signHS256(t, hs, withClaims(base, "junk", strings.Repeat("j", 17000)), []byte(muSecretKey)), msgBadCreds},
		{"expired (server key)", signHS256(t, hs, withClaims(base, "exp", now-60), []byte(muSecretKey)), msgAccessExpired},
		{"no exp (server key): as if expired at 0", signHS256(t, hs, withClaims(base, "exp", nil), []byte(muSecretKey)), msgAccessExpired},
		{"exp a string (server key)", signHS256(t, hs, withClaims(base, "exp", "tomorrow"), []byte(muSecretKey)), msgBadCreds},
		{"type refresh (server key)", signHS256(t, hs, withClaims(base, "type", "refresh"), []byte(muSecretKey)), msgBadCreds},
		{"no type (server key)", signHS256(t, hs, withClaims(base, "type", nil), []byte(muSecretKey)), msgBadCreds},
		{"sub not a principal (server key)", signHS256(t, hs, withClaims(base, "sub", "../admin"), []byte(muSecretKey)), msgBadCreds},
		{"sid not a uuid (server key)", signHS256(t, hs, withClaims(base, "sid", "x"), []byte(muSecretKey)), msgBadCreds},
		{"alg HS512 (server key)", hs512(t, base, []byte(muSecretKey)), msgBadCreds},
	}
	for _, tk := range tokens {
		add(advCase{name: "token " + tk.name + " metadata", method: "GET", path: metadata, h: bearer(tk.token), status: 401, detail: tk.detail})
		add(advCase{name: "token " + tk.name + " whoami", method: "GET", path: whoamiP, h: bearer(tk.token), status: 401, detail: tk.detail})
	}
	add(advCase{name: "token over the header limit", method: "GET", path: metadata, h: bearer(strings.Repeat("a", 256<<10)), status: 431, raw: true})
	add(advCase{name: "many headers over the limit", method: "GET", path: metadata, h: manyHeaders(400, 600), status: 431, raw: true})
	add(advCase{name: "cookie over the header limit", method: "GET", path: metadata, h: hdr("Cookie", "tiled_api_key="+strings.Repeat("c", 256<<10)), status: 431, raw: true})

	// 3. API keys one byte off, in each place a key travels.
	offs := []struct{ name, key string }{
		{"first char", otherKey(key)},
		{"eighth char", key[:7] + swap(key[7:8]) + key[8:]},
		{"ninth char", key[:8] + swap(key[8:9]) + key[9:]},
		{"middle char", key[:36] + swap(key[36:37]) + key[37:]},
		{"last char", key[:71] + swap(key[71:])},
		{"one char short", key[:71]},
		{"one char long", key + "0"},
		{"non-hex char", key[:71] + "g"},
		{"first eight only", key[:8]},
		{"doubled", key + key},
		{"space inside", key[:36] + " " + key[36:]},
	}
	for _, o := range offs {
		add(advCase{name: "key " + o.name + " in header", method: "GET", path: metadata, h: apikey(o.key), status: 401, detail: msgInvalidAPIKey})
		add(advCase{name: "key " + o.name + " in query", method: "GET", path: metadata + "?api_key=" + url.QueryEscape(o.key), status: 401, detail: msgInvalidAPIKey})
		add(advCase{name: "key " + o.name + " in cookie", method: "GET", path: metadata, h: hdr("Cookie", "tiled_api_key="+url.QueryEscape(o.key)), status: 401, detail: msgInvalidAPIKey})
		add(advCase{name: "key " + o.name + " at GET apikey", method: "GET", path: keyP, h: apikey(o.key), status: 401, detail: msgInvalidAPIKey})
	}
	// Hex is read in either case, as Tiled's bytes.fromhex reads it: the
	// same 36 bytes are the same key.
	add(advCase{name: "key in upper case is the same key", method: "GET", path: metadata, h: apikey(strings.ToUpper(key)), status: 200})
	for _, q := range []struct {
		name, query string
		status      int
		detail      string
	}{
		{"empty api_key", "?api_key=", 401, noCredentialsDetail},
		{"api_key twice, good first", "?api_key=" + key + "&api_key=x", 200, ""},
		{"api_key twice, bad first", "?api_key=x&api_key=" + key, 401, msgInvalidAPIKey},
		{"api_key unicode", "?api_key=%E2%98%83", 401, msgInvalidAPIKey},
		{"api_key NUL", "?api_key=%00", 401, msgInvalidAPIKey},
		{"api_key of a bearer token", "?api_key=" + alice.Access, 401, msgInvalidAPIKey},
		{"api_key with a wrong header", "?api_key=" + key + "&x=1", 200, ""},
		{"API_KEY upper case is not the parameter", "?API_KEY=" + key, 401, noCredentialsDetail},
		{"api_key semicolon (Go drops the pair)", "?api_key=" + key[:10] + ";" + key[10:], 401, noCredentialsDetail},
	} {
		add(advCase{name: "query " + q.name, method: "GET", path: metadata + q.query, status: q.status, detail: q.detail})
	}
	for _, ck := range []struct {
		name, cookie string
		status       int
		detail       string
	}{
		{"empty", "tiled_api_key=", 401, noCredentialsDetail},
		{"quoted", `tiled_api_key="` + key + `"`, 200, ""},
		{"wrong", "tiled_api_key=" + otherKey(key), 401, msgInvalidAPIKey},
		{"twice, good first", "tiled_api_key=" + key + "; tiled_api_key=x", 200, ""},
		{"garbage syntax", "tiled_api_key", 401, noCredentialsDetail},
		{"semicolons only", ";;;;", 401, noCredentialsDetail},
		{"other cookies only", "a=b; c=d", 401, noCredentialsDetail},
		{"name in upper case", "TILED_API_KEY=" + key, 401, noCredentialsDetail},
		{"bearer token in the key cookie", "tiled_api_key=" + alice.Access, 401, msgInvalidAPIKey},
	} {
		add(advCase{name: "cookie " + ck.name, method: "GET", path: metadata, h: hdr("Cookie", ck.cookie), status: ck.status, detail: ck.detail})
	}
	// A cookie-authenticated change needs the double-submit token.
	add(advCase{name: "cookie key POST without csrf", method: "POST", path: keyP, h: hdr("Cookie", "tiled_api_key="+key, "Content-Type", "application/json"), body: []byte(`{}`), status: 403, detail: "Expected tiled_csrf_token cookie"})
	add(advCase{name: "cookie key POST with csrf cookie, no header", method: "POST", path: keyP, h: hdr("Cookie", "tiled_api_key="+key+"; tiled_csrf=t", "Content-Type", "application/json"), body: []byte(`{}`), status: 403, detail: "Expected csrf query parameter or x-csrf header"})
	add(advCase{name: "cookie key POST with mismatched csrf", method: "POST", path: keyP, h: hdr("Cookie", "tiled_api_key="+key+"; tiled_csrf=t", "X-Csrf", "u", "Content-Type", "application/json"), body: []byte(`{}`), status: 403, detail: "Double-submit CSRF tokens do not match"})
	add(advCase{name: "cookie key DELETE session without csrf", method: "DELETE", path: "/api/v1/auth/session/revoke/" + fmt.Sprint(claimsOf(t, bob.Access)["sid"]), h: hdr("Cookie", "tiled_api_key="+key), status: 403, detail: "Expected tiled_csrf_token cookie"})

	// 4. Refresh tokens: malformed, spliced, of another user, revoked, reused.
	ra, rb := strings.Split(alice.Refresh, "."), strings.Split(bob.Refresh, ".")
	for _, rt := range []struct {
		name, token string
		status      int
		detail      string
	}{
		{"empty", "", 401, msgBadCreds},
		{"garbage", "garbage", 401, msgBadCreds},
		{"truncated", alice.Refresh[:len(alice.Refresh)-1], 401, msgBadCreds},
		{"truncated to the session", ra[0], 401, msgBadCreds},
		{"session and generation only", ra[0] + "." + ra[1], 401, msgBadCreds},
		{"four parts", alice.Refresh + ".x", 401, msgBadCreds},
		{"session of alice, secret of bob", ra[0] + "." + ra[1] + "." + rb[2], 401, msgBadCreds},
		{"session of bob, secret of alice", rb[0] + "." + rb[1] + "." + ra[2], 401, msgBadCreds},
		{"generation + 1", ra[0] + ".1." + ra[2], 401, msgBadCreds},
		{"generation - 1", ra[0] + ".-1." + ra[2], 401, msgBadCreds},
		{"generation huge", ra[0] + ".99999999999999999999." + ra[2], 401, msgBadCreds},
		{"session not hex", strings.Repeat("z", 32) + ".0." + ra[2], 401, msgBadCreds},
		{"unknown session", strings.Repeat("0", 32) + ".0." + ra[2], 401, msgBadCreds},
		{"an access token", alice.Access, 401, msgBadCreds},
		{"an API key", key, 401, msgBadCreds},
		{"very long", strings.Repeat("r", 10000), 401, msgBadCreds},
		{"NUL bytes", "\x00\x00\x00", 401, msgBadCreds},
	} {
		body, _ := json.Marshal(map[string]string{"refresh_token": rt.token})
		add(advCase{name: "refresh " + rt.name, method: "POST", path: refreshP, h: hdr("Content-Type", "application/json"), body: body, status: rt.status, detail: rt.detail})
		// Revoking needs a token this server issued: anything else is 401.
		add(advCase{name: "revoke " + rt.name, method: "POST", path: revokeP, h: hdr("Content-Type", "application/json"), body: body, status: 401, detail: msgBadCreds})
	}
	// Reused (grace 0), revoked, and someone else's session by id.
	cara := mustLogin(t, c, "cara")
	next := mustRefresh(t, c, cara.Refresh)
	reuse, _ := json.Marshal(map[string]string{"refresh_token": cara.Refresh})
	// Until the rotation is confirmed (off the request path, within a
	// second or so) the old token is handed the new pair; then it is reuse,
	// and revokes the session.
	poll(t, 15*time.Second, 100*time.Millisecond, "the old refresh token is taken for reuse", func() (bool, string) {
		r := c.postJSON(refreshP, nil, string(reuse))
		return r.Status == http.StatusUnauthorized, r.String()
	})
	for i, tk := range []string{cara.Refresh, next.Refresh} {
		b, _ := json.Marshal(map[string]string{"refresh_token": tk})
		add(advCase{name: fmt.Sprintf("refresh of a session revoked for reuse %d", i), method: "POST", path: refreshP, h: hdr("Content-Type", "application/json"), body: b, status: 401, detail: msgSessionExpired})
	}
	add(advCase{name: "access token of a session revoked for reuse", method: "GET", path: metadata, h: bearer(next.Access), status: 401, detail: msgSessionExpired})
	dora := mustLogin(t, c, "cara")
	doraBody, _ := json.Marshal(map[string]string{"refresh_token": dora.Refresh})
	expectStatus(t, c.postJSON(revokeP, nil, string(doraBody)), http.StatusNoContent)
	add(advCase{name: "refresh of a revoked session", method: "POST", path: refreshP, h: hdr("Content-Type", "application/json"), body: doraBody, status: 401, detail: msgSessionExpired})
	add(advCase{name: "access token of a revoked session", method: "GET", path: whoamiP, h: bearer(dora.Access), status: 401, detail: msgSessionExpired})
	for _, id := range []string{fmt.Sprint(claimsOf(t, alice.Access)["sid"]), strings.ReplaceAll(fmt.Sprint(claimsOf(t, alice.Access)["sid"]), "-", "")} {
		add(advCase{name: "bob revokes alice's session " + id, method: "DELETE", path: "/api/v1/auth/session/revoke/" + id, h: bearer(bob.Access), status: 404, detail: "Sessions does not exist or requester has insufficient permissions"})
	}
	for _, id := range []string{"x", "..", "%2e%2e", "00000000-0000-4000-8000-00000000000g", strings.Repeat("f", 200)} {
		add(advCase{name: "revoke by id " + id, method: "DELETE", path: "/api/v1/auth/session/revoke/" + id, h: bearer(bob.Access), status: 404})
	}
	add(advCase{name: "revoke by id without credentials", method: "DELETE", path: "/api/v1/auth/session/revoke/" + fmt.Sprint(claimsOf(t, alice.Access)["sid"]), status: 401, detail: "Not authenticated"})
	add(advCase{name: "revoke by id with a read-only key", method: "DELETE", path: "/api/v1/auth/session/revoke/" + fmt.Sprint(claimsOf(t, bob.Access)["sid"]), h: apikey(key), status: 401, detail: "~Requires scopes ['revoke:apikeys']"})

	// 5. Bodies: empty, huge, wrongly typed, deeply nested.
	form := "application/x-www-form-urlencoded"
	jsonCT := "application/json"
	bodies := []struct {
		name, path, ct string
		body           []byte
		status         int
		detail         string
		auth           http.Header
	}{
		{"login empty", loginP, form, nil, 422, "~\"username\"", nil},
		{"login no content type", loginP, "", []byte("username=alice&password=x"), 422, "~Field required", nil},
		{"login JSON", loginP, jsonCT, []byte(`{"username":"alice","password":"x"}`), 422, "~\"password\"", nil},
		{"login only username", loginP, form, []byte("username=alice"), 422, "~\"password\"", nil},
		{"login only password", loginP, form, []byte("password=x"), 422, "~\"username\"", nil},
		{"login wrong grant_type", loginP, form, []byte("username=alice&password=x&grant_type=client_credentials"), 422, "~^password$", nil},
		{"login bad percent-encoding", loginP, form, []byte("username=%zz&password=x"), 400, "Malformed form body", nil},
		{"login wrong password", loginP, form, []byte("username=alice&password=x"), 401, msgWrongPassword, nil},
		{"login empty username", loginP, form, []byte("username=&password=x"), 401, msgWrongPassword, nil},
		{"login NUL username", loginP, form, []byte("username=%00&password=x"), 401, msgWrongPassword, nil},
		{"login 10 kB username", loginP, form, []byte("username=" + strings.Repeat("u", 10000) + "&password=x"), 401, msgWrongPassword, nil},
		{"login 17 kB form", loginP, form, []byte("username=" + strings.Repeat("u", 17000) + "&password=x"), 413, "Request body too large", nil},
		{"login 1 MB form", loginP, form, []byte("username=" + strings.Repeat("u", 1<<20)), 413, "Request body too large", nil},
		{"login multipart broken", loginP, "multipart/form-data; boundary=zz", []byte("--zz\r\nbroken"), 400, "Malformed form body", nil},
		{"login unknown provider", "/api/v1/auth/provider/nope/token", form, []byte("username=a&password=b"), 404, "Not Found", nil},
		{"login provider traversal", "/api/v1/auth/provider/..%2Ftoy/token", form, []byte("username=a&password=b"), 404, "", nil},
		{"refresh empty", refreshP, jsonCT, nil, 422, "~Field required", nil},
		{"refresh null", refreshP, jsonCT, []byte("null"), 422, "~JSON decode error", nil},
		{"refresh array", refreshP, jsonCT, []byte(`["x"]`), 422, "~JSON decode error", nil},
		{"refresh number", refreshP, jsonCT, []byte(`{"refresh_token":7}`), 422, "~valid string", nil},
		{"refresh object", refreshP, jsonCT, []byte(`{"refresh_token":{"a":1}}`), 422, "~valid string", nil},
		{"refresh null member", refreshP, jsonCT, []byte(`{"refresh_token":null}`), 422, "~Field required", nil},
		{"refresh truncated JSON", refreshP, jsonCT, []byte(`{"refresh_token":"`), 422, "~JSON decode error", nil},
		{"refresh deeply nested", refreshP, jsonCT, []byte(strings.Repeat(`{"a":`, 2000) + "1" + strings.Repeat("}", 2000)), 422, "~refresh_token", nil},
		{"refresh deeply nested array", refreshP, jsonCT, []byte(`{"refresh_token":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), 422, "~valid string", nil},
		{"refresh 17 kB", refreshP, jsonCT, []byte(`{"refresh_token":"` + strings.Repeat("r", 17000) + `"}`), 413, "Request body too large", nil},
		{"refresh form without the member", refreshP, form, []byte("grant_type=refresh_token"), 422, "~refresh_token", nil},
		{"revoke empty", revokeP, jsonCT, nil, 422, "~Field required", nil},
		{"revoke 20 kB", revokeP, jsonCT, []byte(`{"refresh_token":"` + strings.Repeat("r", 20000) + `"}`), 413, "Request body too large", nil},
		{"key empty", keyP, jsonCT, nil, 422, "~Field required", bearer(alice.Access)},
		{"key null", keyP, jsonCT, []byte("null"), 422, "~JSON decode error", bearer(alice.Access)},
		{"key array", keyP, jsonCT, []byte("[]"), 422, "~JSON decode error", bearer(alice.Access)},
		{"key scopes a string", keyP, jsonCT, []byte(`{"scopes":"read:data"}`), 422, "~valid list of strings", bearer(alice.Access)},
		{"key scopes numbers", keyP, jsonCT, []byte(`{"scopes":[1,2]}`), 422, "~valid list of strings", bearer(alice.Access)},
		{"key scopes nested", keyP, jsonCT, []byte(`{"scopes":` + strings.Repeat("[", 4000) + strings.Repeat("]", 4000) + `}`), 422, "~valid list of strings", bearer(alice.Access)},
		{"key expires_in a string", keyP, jsonCT, []byte(`{"expires_in":"60"}`), 422, "~valid integer", bearer(alice.Access)},
		{"key expires_in a fraction", keyP, jsonCT, []byte(`{"expires_in":1.5}`), 422, "~valid integer", bearer(alice.Access)},
		{"key expires_in zero", keyP, jsonCT, []byte(`{"expires_in":0}`), 422, "~greater than 0", bearer(alice.Access)},
		{"key expires_in negative", keyP, jsonCT, []byte(`{"expires_in":-1}`), 422, "~greater than 0", bearer(alice.Access)},
		{"key expires_in hugely negative", keyP, jsonCT, []byte(`{"expires_in":-1e19}`), 422, "~greater than 0", bearer(alice.Access)},
		{"key expires_in 1e10", keyP, jsonCT, []byte(`{"expires_in":10000000000}`), 422, "~less than or equal to 3153600000 (100 years)", bearer(alice.Access)},
		{"key expires_in one past the cap", keyP, jsonCT, []byte(`{"expires_in":3153600001}`), 422, "~less than or equal to 3153600000", bearer(alice.Access)},
		{"key expires_in at the cap", keyP, jsonCT, []byte(`{"expires_in":3153600000,"scopes":["read:metadata"]}`), 200, "", bearer(alice.Access)},
		{"key expires_in 1e309", keyP, jsonCT, []byte(`{"expires_in":1e309}`), 422, "~valid integer", bearer(alice.Access)},
		{"key expires_in a boolean", keyP, jsonCT, []byte(`{"expires_in":true}`), 422, "~valid integer", bearer(alice.Access)},
		{"key note a number", keyP, jsonCT, []byte(`{"note":5}`), 422, "~valid string", bearer(alice.Access)},
		{"key access_tags an object", keyP, jsonCT, []byte(`{"access_tags":{}}`), 422, "~valid list of strings", bearer(alice.Access)},
		{"key scopes beyond the principal's", keyP, jsonCT, []byte(`{"scopes":["admin:apikeys"]}`), 403, "~must be a subset of the principal's scopes", bearer(bob.Access)},
		{"key unknown scope", keyP, jsonCT, []byte(`{"scopes":["root"]}`), 403, "~must be a subset", bearer(bob.Access)},
		{"key 17 kB note", keyP, jsonCT, []byte(`{"note":"` + strings.Repeat("n", 17000) + `"}`), 413, "Request body too large", bearer(bob.Access)},
		{"key without credentials", keyP, jsonCT, []byte(`{}`), 401, "~Requires scopes ['create:apikeys']", nil},
		{"key through a read-only key", keyP, jsonCT, []byte(`{}`), 401, "~Requires scopes ['create:apikeys']", apikey(key)},
	}
	for _, b := range bodies {
		h := http.Header{}
		if b.ct != "" {
			h.Set("Content-Type", b.ct)
		}
		for k, vs := range b.auth {
			h[k] = vs
		}
		add(advCase{name: "body " + b.name, method: "POST", path: b.path, h: h, body: b.body, status: b.status, detail: b.detail})
	}
	// A huge body announced by Content-Length is refused before it is sent.
	add(advCase{name: "body 100 MB login announced", method: "POST", path: loginP, h: hdr("Content-Type", form), body: make([]byte, 100<<20), status: 413, detail: "Request body too large"})
	add(advCase{name: "body 100 MB refresh announced", method: "POST", path: refreshP, h: hdr("Content-Type", jsonCT), body: make([]byte, 100<<20), status: 413, detail: "Request body too large"})
	for _, q := range []struct{ name, query string }{
		{"missing", ""}, {"empty", "?first_eight="}, {"traversal", "?first_eight=../../.."}, {"SQL", "?first_eight=%27%20OR%201%3D1--"},
		{"unknown", "?first_eight=ffffffff"}, {"long", "?first_eight=" + strings.Repeat("a", 5000)},
	} {
		status, detail := 404, "The currently-authenticated user has no such API key."
		if q.query == "" {
			status, detail = 422, "~first_eight"
		}
		add(advCase{name: "delete key " + q.name, method: "DELETE", path: keyP + q.query, h: bearer(bob.Access), status: status, detail: detail})
	}
	for _, q := range []string{"page[offset]=-1", "page[limit]=100000", "page[offset]=x", "page[limit]=1e3", "page[offset]=99999999999999999999"} {
		add(advCase{name: "principals " + q, method: "GET", path: "/api/v1/auth/principal?" + q, h: bearer(alice.Access), status: 422})
	}
	for _, id := range []string{"x", "..", "00000000-0000-4000-8000-000000000000", "%00"} {
		status := 422
		if strings.HasPrefix(id, "0000") {
			status = 404
		}
		add(advCase{name: "principal " + id, method: "GET", path: "/api/v1/auth/principal/" + id, h: bearer(alice.Access), status: status})
	}
	for _, role := range []string{"root", "", "admin' --", strings.Repeat("r", 3000)} {
		add(advCase{name: "service principal role " + role[:min(len(role), 12)], method: "POST", path: "/api/v1/auth/principal?role=" + url.QueryEscape(role), h: bearer(alice.Access), status: 400, detail: "~No such role"})
	}

	// 6. OIDC: a callback with a wrong, missing or replayed state or code,
	// and attempts to send the browser (or the code) somewhere else.
	codeP := "/api/v1/auth/provider/" + provIdP + "/code"
	authorizeP := "/api/v1/auth/provider/" + provIdP + "/authorize"
	for _, q := range []string{"", "?code=abc", "?state=", "?state=x&code=abc", "?state=" + strings.Repeat("s", 3000) + "&code=c",
		"?code=abc&state=abc&redirect_uri=https://evil.example/", "?error=access_denied&state=x", "?state=%00&code=%00",
		"?state=..%2F..%2F&code=x", "?code[]=1&state[]=2"} {
		add(advCase{name: "oidc code " + q[:min(len(q), 40)], method: "GET", path: codeP + q, status: 401, detail: "Authentication failure"})
	}
	browser := jarClient(t, s)
	dest, err := op.Login(testCtx(t), oidcAuthorize(t, browser, s), "bob")
	if err != nil {
		t.Fatal(err)
	}
	checkLoginTokens(t, browser.get(dest.String(), nil), provIdP, "bob")
	add(advCase{name: "oidc code replayed", method: "GET", path: dest.String(), status: 401, detail: "Authentication failure", c: browser})
	stolen := jarClient(t, s)
	dest2, err := op.Login(testCtx(t), oidcAuthorize(t, stolen, s), "bob")
	if err != nil {
		t.Fatal(err)
	}
	add(advCase{name: "oidc code from another browser", method: "GET", path: dest2.String(), status: 401, detail: "Authentication failure"})
	q := dest2.Query()
	q.Set("state", "forged-"+q.Get("state"))
	add(advCase{name: "oidc code with a forged state", method: "GET", path: codeP + "?" + q.Encode(), status: 401, detail: "Authentication failure", c: stolen})
	for _, evil := range []string{"?state=https://evil.example/", "?redirect_uri=https://evil.example/cb", "?state=//evil.example", "?next=https://evil.example"} {
		add(advCase{name: "oidc authorize " + evil, method: "GET", path: authorizeP + evil, status: 307,
			detail: "", h: nil})
	}
	device := []struct {
		name, body string
		status     int
		detail     string
	}{
		{"device poll empty", "", 422, "~Field required"},
		{"device poll not hex", `{"device_code":"zz","grant_type":"urn:ietf:params:oauth:grant-type:device_code"}`, 401, "Invalid device code"},
		{"device poll unknown", `{"device_code":"` + strings.Repeat("ab", 32) + `","grant_type":"urn:ietf:params:oauth:grant-type:device_code"}`, 404, "~No such device_code"},
		{"device poll huge", `{"device_code":"` + strings.Repeat("ab", 9000) + `"}`, 413, "Request body too large"},
		{"device poll number", `{"device_code":5}`, 422, "~valid string"},
	}
	for _, d := range device {
		add(advCase{name: d.name, method: "POST", path: "/api/v1/auth/provider/" + provIdP + "/token", h: hdr("Content-Type", jsonCT), body: []byte(d.body), status: d.status, detail: d.detail})
	}

	// 7. Paths that try to leave a served directory (single-user, directory).
	dirCases := directoryCases(t)

	n := len(cases) + len(dirCases.cases)
	if n < 300 {
		t.Fatalf("the adversarial table has %d cases, want at least 300", n)
	}
	t.Logf("%d adversarial cases", n)
	t.Run("multi-user", func(t *testing.T) { runAdversarial(t, s, cases) })
	t.Run("directory", func(t *testing.T) { t.Parallel(); runAdversarial(t, dirCases.s, dirCases.cases) })
	t.Run("authorize sends the code only to this server", func(t *testing.T) {
		for _, evil := range []string{"?state=https://evil.example/", "?redirect_uri=https://evil.example/cb", "?state=//evil.example"} {
			r := s.client(t).get(authorizeP+evil, nil)
			loc, err := url.Parse(r.Header.Get("Location"))
			if err != nil || !strings.HasPrefix(loc.String(), op.AuthorizationEndpoint()) {
				t.Fatalf("%s: Location %q is not the provider", evil, r.Header.Get("Location"))
			}
			if got := loc.Query().Get("redirect_uri"); got != s.base+codeP {
				t.Errorf("%s: redirect_uri %q, want %q", evil, got, s.base+codeP)
			}
		}
	})
}

type dirTable struct {
	s     *server
	cases []advCase
}

// directoryCases serves a directory next to a secret file and tries to
// reach the secret (and anything outside the tree) through every spelling
// of a parent path, on every data route.
func directoryCases(t *testing.T) dirTable {
	root := t.TempDir()
	dir := filepath.Join(root, "served")
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		filepath.Join(dir, "t.csv"):        "x,y\n1,2\n",
		filepath.Join(dir, "sub", "u.csv"): "a\n1\n",
		filepath.Join(root, "secret.csv"):  "password\nhunter2\n",
	} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const dkey = "adversarialdirectorykey0123456789"
	s := startServer(t, []string{"directory", dir, "--api-key", dkey})
	var out []advCase
	for _, route := range []string{"/api/v1/metadata/", "/api/v1/table/full/", "/api/v1/search/", "/api/v1/table/partition/", "/api/v1/array/full/"} {
		query := ""
		if strings.Contains(route, "partition") {
			query = "?partition=0"
		}
		for _, p := range []string{
			"..", "../secret", "..%2Fsecret", "%2e%2e/secret", "%2e%2e%2fsecret", "sub/../../secret", "sub%2F..%2F..%2Fsecret",
			"%252e%252e%252fsecret", "..%5csecret", "..\\secret", "sub/%2e%2e/%2e%2e/secret", "%c0%ae%c0%ae/secret",
			"...", "t.csv/..", "sub/..%00/secret", "%00", "//etc/passwd", "secret",
		} {
			out = append(out, advCase{name: route + p, method: "GET", path: route + p + query, h: apikey(dkey), status: 404, detail: "~No such entry"})
		}
	}
	// What is inside stays reachable, and the secret's content never leaks.
	out = append(out,
		advCase{name: "inside: t", method: "GET", path: "/api/v1/table/full/t", h: with(apikey(dkey), "Accept", "text/csv"), status: 200},
		advCase{name: "inside: sub/u", method: "GET", path: "/api/v1/table/full/sub/u", h: with(apikey(dkey), "Accept", "text/csv"), status: 200},
		advCase{name: "inside: sub%2Fu", method: "GET", path: "/api/v1/metadata/sub%2Fu", h: apikey(dkey), status: 200},
	)
	return dirTable{s: s, cases: out}
}

// flip changes one character in the middle of s, staying in base64url.
func flip(s string) string {
	i := len(s) / 2
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// swap changes one hex character.
func swap(c string) string {
	if c == "0" {
		return "1"
	}
	return "0"
}

// hs512 signs claims with HS512 (an algorithm the server does not accept
// even with its own key).
func hs512(t *testing.T, claims map[string]any, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims(claims)).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// manyHeaders is n headers of size bytes each.
func manyHeaders(n, size int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Set(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("j", size))
	}
	return h
}
