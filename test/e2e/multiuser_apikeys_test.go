package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// The API key in the multi-user captures.
const recordedUserKey = "fa41d3705b7ced11566c23532f8f06a79b912e5cc4ac634e3acac74e2334d879ceada12d"

// TestMultiAPIKeys: a principal's API keys from creation to revocation,
// the admin routes for principals and their keys, and the double-submit
// CSRF check on cookie-authenticated requests (spec sections 2, 7, 8;
// captures multiuser-apikey-*.txt, multiuser-whoami-apikey.txt).
func TestMultiAPIKeys(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, db backend) {
		s := startMU(t, sessionConfig(db, nil, nil))
		runOnServer(t, s, []serverCase{
			{"lifecycle", checkKeyLifecycle},
			{"requested scopes", checkKeyScopes},
			{"inherit", checkKeyInherit},
			{"a key cannot mint a broader key", checkKeyNarrowing},
			{"expiry", checkKeyExpiry},
			{"admin: principals", checkAdminPrincipals},
			{"admin: service principal and its keys", checkServicePrincipal},
			{"csrf", checkCSRF},
			{"managing credentials through a key needs revoke:apikeys", checkKeyManagesCredentials},
		})
	})
}

// createKey POSTs /auth/apikey with body, authenticated by h.
func createKey(c *client, h http.Header, body any) reply {
	c.t.Helper()
	return c.postJSON("/api/v1/auth/apikey", h, body)
}

// mustCreateKey returns the new key's JSON, with its secret.
func mustCreateKey(t *testing.T, c *client, h http.Header, body any) map[string]any {
	t.Helper()
	r := createKey(c, h, body)
	if !expectStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	return object(t, r)
}

func secretOf(t *testing.T, key map[string]any) string {
	t.Helper()
	s, _ := key["secret"].(string)
	if !hex72RE.MatchString(s) {
		t.Fatalf("secret %q, want 72 hex characters", s)
	}
	return s
}

// expectScopesDenied checks Tiled's 401 for a caller lacking scope.
func expectScopesDenied(t *testing.T, r reply, scope string) {
	t.Helper()
	if !expectStatus(t, r, http.StatusUnauthorized) {
		return
	}
	d, _ := object(t, r)["detail"].(string)
	if want := "Not enough permissions. Requires scopes ['" + scope + "']. Request had scopes ["; !strings.HasPrefix(d, want) {
		t.Errorf("detail %q, want it to start with %q", d, want)
	}
	if got, want := r.Header.Get("Www-Authenticate"), `Bearer scope="`+scope+`"`; got != want {
		t.Errorf("WWW-Authenticate %q, want %q", got, want)
	}
}

func checkKeyLifecycle(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "keys"))
	before := time.Now()
	key := mustCreateKey(t, c, bearer(tp.Access), map[string]any{
		"scopes": []string{"read:metadata", "read:data"}, "expires_in": 3600, "note": "capture",
	})
	expectShape(t, "multiuser-apikey-create.txt", key)
	secret := secretOf(t, key)
	first := secret[:8]
	expectAt(t, key, first, "first_eight")
	expectAt(t, key, []any{"read:metadata", "read:data"}, "scopes")
	expectAt(t, key, "capture", "note")
	expectAt(t, key, nil, "access_tags")
	expectAt(t, key, nil, "latest_activity")
	expectTimeNear(t, key["expiration_time"], before.Add(time.Hour))

	// Three ways to present it (spec section 2).
	replay(t, s, muCapture("multiuser-apikey-use.txt"), recordedUserKey, secret)
	r := c.get("/api/v1/metadata/?api_key="+secret, nil)
	expectStatus(t, r, http.StatusOK)
	// Unlike Tiled, a multi-user server never plants the key in a cookie
	// from the query (login CSRF); the cookie still authenticates.
	if ck := findCookie(r, "tiled_api_key"); ck != nil {
		t.Errorf("?api_key= set a tiled_api_key cookie on a multi-user server: %q", r.Header.Values("Set-Cookie"))
	}
	expectStatus(t, c.get("/api/v1/metadata/", hdr("Cookie", "tiled_api_key="+secret)), http.StatusOK)

	// What the key is, and its owner's view of it.
	r = c.get("/api/v1/auth/apikey", apikey(secret))
	if expectStatus(t, r, http.StatusOK) {
		info := object(t, r)
		expectShape(t, "multiuser-apikey-info.txt", info)
		expectAt(t, info, first, "first_eight")
		expectAt(t, info, "capture", "note")
	}
	expectDetail(t, c.get("/api/v1/auth/apikey", bearer(tp.Access)), http.StatusUnauthorized, "No API key was provided with this request.")
	me := whoami(t, c, apikey(secret))
	expectShape(t, "multiuser-whoami-apikey.txt", me)
	expectAt(t, me, dashedUUID(tp.Principal), "uuid")
	// A key without revoke:apikeys does not see its owner's credentials.
	for _, m := range []string{"api_keys", "sessions"} {
		if v, _ := at(me, m); len(v.([]any)) != 0 {
			t.Errorf("whoami through a read-only key lists %s %s", m, compact(v))
		}
	}
	// The key one character off, anywhere (the first eight find it, the
	// rest must match): never the owner.
	for _, off := range []struct{ name, key string }{
		{"first character", otherKey(secret[:1]) + secret[1:]},
		{"ninth character", secret[:8] + otherKey(secret[8:9]) + secret[9:]},
		{"last character", secret[:71] + otherKey(secret[71:])},
		{"one more character", secret + "0"},
		{"one character short", secret[:71]},
	} {
		expectDetail(t, c.get("/api/v1/metadata/", apikey(off.key)), http.StatusUnauthorized, msgInvalidAPIKey)
	}
	// A read-only key may not make keys.
	expectScopesDenied(t, createKey(c, apikey(secret), map[string]any{"scopes": []string{"read:metadata"}}), "create:apikeys")

	// Revocation (multiuser-apikey-delete.txt, multiuser-apikey-after-delete.txt).
	del := func(first string) reply {
		return c.do(http.MethodDelete, "/api/v1/auth/apikey?first_eight="+url.QueryEscape(first), bearer(tp.Access), nil)
	}
	other := loginAs(t, c, uniqueName(t, "notowner"))
	r = c.do(http.MethodDelete, "/api/v1/auth/apikey?first_eight="+first, bearer(other.Access), nil)
	expectDetail(t, r, http.StatusNotFound, "The currently-authenticated user has no such API key.")
	expectStatus(t, c.get("/api/v1/metadata/", apikey(secret)), http.StatusOK)
	if r := del(first); expectStatus(t, r, http.StatusNoContent) && len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r)
	}
	replay(t, s, muCapture("multiuser-apikey-after-delete.txt"), recordedUserKey, secret)
	expectDetail(t, c.get("/api/v1/metadata/?api_key="+secret, nil), http.StatusUnauthorized, msgInvalidAPIKey)
	expectDetail(t, c.get("/api/v1/auth/apikey", apikey(secret)), http.StatusUnauthorized, msgInvalidAPIKey)
	expectDetail(t, del(first), http.StatusNotFound, "The currently-authenticated user has no such API key.")
	r = c.do(http.MethodDelete, "/api/v1/auth/apikey", bearer(tp.Access), nil)
	expectStatus(t, r, http.StatusUnprocessableEntity)
	if v, _ := at(whoami(t, c, bearer(tp.Access)), "api_keys"); len(v.([]any)) != 0 {
		t.Errorf("api_keys after revocation %s, want none", compact(v))
	}
	// The session that made the key is untouched.
	expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
}

// expectTimeNear checks an ISO 8601 time within a minute of want.
func expectTimeNear(t *testing.T, v any, want time.Time) {
	t.Helper()
	s, _ := v.(string)
	var got time.Time
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05"} {
		if got, err = time.Parse(layout, s); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("time %q is not ISO 8601", s)
		return
	}
	if d := got.Sub(want); d < -time.Minute || d > time.Minute {
		t.Errorf("time %s, want about %s", s, want.UTC().Format(time.RFC3339))
	}
}

// checkKeyScopes: a key's scopes must be a subset of its principal's
// (403 otherwise, as Tiled: generate_apikey), and the member types are
// checked (422).
func checkKeyScopes(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "scopes"))
	h := bearer(tp.Access)
	for _, scopes := range [][]string{{"read:principals"}, {"read:metadata", "admin:apikeys"}, {"write:principals"}} {
		r := createKey(c, h, map[string]any{"scopes": scopes})
		if expectStatus(t, r, http.StatusForbidden) {
			d, _ := object(t, r)["detail"].(string)
			if !strings.HasPrefix(d, "Requested scopes ") || !strings.Contains(d, "must be a subset of the principal's scopes") {
				t.Errorf("scopes %v: detail %q", scopes, d)
			}
		}
	}
	t.Run("unknown scope", func(t *testing.T) {
		// Not among the principal's scopes: Tiled answers 403 as for any other.
		expectStatus(t, createKey(c, h, map[string]any{"scopes": []string{"bogus:scope"}}), http.StatusForbidden)
	})
	key := mustCreateKey(t, c, h, map[string]any{"scopes": []string{}})
	expectAt(t, key, []any{}, "scopes")
	expectAt(t, key, nil, "note")
	expectAt(t, key, nil, "expiration_time")
	// A key with no scopes authenticates but may read nothing.
	r := c.get("/api/v1/metadata/", apikey(secretOf(t, key)))
	expectScopesDenied(t, r, "read:metadata")
	for _, bad := range []map[string]any{
		{"scopes": "read:metadata"}, {"expires_in": "soon"}, {"expires_in": 0}, {"expires_in": -5}, {"expires_in": 1.5}, {"note": 7},
	} {
		expectStatus(t, createKey(c, h, bad), http.StatusUnprocessableEntity)
	}
	expectStatus(t, createKey(c, h, ""), http.StatusUnprocessableEntity)
	expectScopesDenied(t, createKey(c, nil, map[string]any{}), "create:apikeys")
}

// checkKeyInherit: scopes null means ["inherit"], whatever the principal
// holds when the key is used.
func checkKeyInherit(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "inherit"))
	key := mustCreateKey(t, c, bearer(tp.Access), map[string]any{"scopes": nil, "note": "all mine"})
	expectAt(t, key, []any{"inherit"}, "scopes")
	secret := secretOf(t, key)
	expectStatus(t, c.get("/api/v1/metadata/", apikey(secret)), http.StatusOK)
	expectStatus(t, c.get("/api/v1/array/full/A?slice=0:1,0:1", with(apikey(secret), "Accept", "application/json")), http.StatusOK)
	// create:apikeys is inherited: the key makes a narrower key.
	sub := mustCreateKey(t, c, apikey(secret), map[string]any{"scopes": []string{"read:metadata"}})
	expectStatus(t, c.get("/api/v1/metadata/", apikey(secretOf(t, sub))), http.StatusOK)
	// An empty body is the same as scopes null.
	key2 := mustCreateKey(t, c, bearer(tp.Access), map[string]any{})
	expectAt(t, key2, []any{"inherit"}, "scopes")
}

// checkKeyNarrowing: a key may hand out only what it holds itself.
func checkKeyNarrowing(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "narrow"))
	limited := secretOf(t, mustCreateKey(t, c, bearer(tp.Access),
		map[string]any{"scopes": []string{"read:metadata", "create:apikeys"}}))
	for _, broader := range []map[string]any{
		{"scopes": []string{"write:data"}},
		{"scopes": []string{"read:metadata", "read:data"}},
		{"scopes": nil}, // inherit would be everything the principal holds
	} {
		r := createKey(c, apikey(limited), broader)
		if r.Status != http.StatusForbidden {
			t.Errorf("limited key asking for %v: status %d, want 403: %s", broader["scopes"], r.Status, r)
		}
	}
	narrower := mustCreateKey(t, c, apikey(limited), map[string]any{"scopes": []string{"read:metadata"}})
	expectAt(t, narrower, []any{"read:metadata"}, "scopes")
	// The limited key reads metadata but not data.
	expectStatus(t, c.get("/api/v1/metadata/A", apikey(limited)), http.StatusOK)
	expectScopesDenied(t, c.get("/api/v1/array/full/A", apikey(limited)), "read:data")
}

// checkKeyExpiry: a key made with expires_in stops working after it.
func checkKeyExpiry(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "shortkey"))
	before := time.Now()
	key := mustCreateKey(t, c, bearer(tp.Access), map[string]any{"scopes": []string{"read:metadata"}, "expires_in": 1})
	expectTimeNear(t, key["expiration_time"], before.Add(time.Second))
	secret := secretOf(t, key)
	var last reply
	poll(t, 10*time.Second, 100*time.Millisecond, "API key refused after expires_in", func() (bool, string) {
		last = c.get("/api/v1/metadata/", apikey(secret))
		return last.Status != http.StatusOK, last.String()
	})
	expectDetail(t, last, http.StatusUnauthorized, msgInvalidAPIKey)
}

// checkAdminPrincipals: GET /auth/principal[/{uuid}] for admins only.
func checkAdminPrincipals(t *testing.T, s *server) {
	c := s.client(t)
	admin := mustLogin(t, c, "alice")
	bob := mustLogin(t, c, "bob")
	r := c.get("/api/v1/auth/principal", bearer(admin.Access))
	if expectStatus(t, r, http.StatusOK) {
		list, _ := decode(t, r).([]any)
		var uuids []string
		for _, p := range list {
			if u, ok := p.(map[string]any)["uuid"].(string); ok {
				uuids = append(uuids, u)
			}
			expectShape(t, "multiuser-whoami.txt", p)
		}
		for _, want := range []string{dashedUUID(admin.Principal), dashedUUID(bob.Principal)} {
			if !slices.Contains(uuids, want) {
				t.Errorf("principal list %v lacks %s", uuids, want)
			}
		}
	}
	r = c.get("/api/v1/auth/principal?page[offset]=0&page[limit]=1", bearer(admin.Access))
	if expectStatus(t, r, http.StatusOK) {
		if list, _ := decode(t, r).([]any); len(list) != 1 {
			t.Errorf("page[limit]=1 gave %d principals", len(list))
		}
	}
	expectScopesDenied(t, c.get("/api/v1/auth/principal", bearer(bob.Access)), "read:principals")
	expectDetail(t, c.get("/api/v1/auth/principal", nil), http.StatusUnauthorized,
		"Not enough permissions. Requires scopes ['read:principals']. Request had scopes []")

	r = c.get("/api/v1/auth/principal/"+dashedUUID(bob.Principal), bearer(admin.Access))
	if expectStatus(t, r, http.StatusOK) {
		p := object(t, r)
		expectShape(t, "multiuser-whoami.txt", p)
		expectAt(t, p, dashedUUID(bob.Principal), "uuid")
		expectAt(t, p, "bob", "identities", 0, "id")
	}
	expectStatus(t, c.get("/api/v1/auth/principal/"+bob.Principal, bearer(admin.Access)), http.StatusOK)
	expectScopesDenied(t, c.get("/api/v1/auth/principal/"+dashedUUID(admin.Principal), bearer(bob.Access)), "read:principals")
	missing := "0b7c1c4e-5d2a-4e27-9a43-2f0d6f1e9b11"
	expectDetail(t, c.get("/api/v1/auth/principal/"+missing, bearer(admin.Access)), http.StatusNotFound, "No such Principal "+missing)
	expectStatus(t, c.get("/api/v1/auth/principal/not-a-uuid", bearer(admin.Access)), http.StatusUnprocessableEntity)
}

// checkServicePrincipal: an admin makes a service principal and keys for
// it; the key acts as the service; the admin revokes it.
func checkServicePrincipal(t *testing.T, s *server) {
	c := s.client(t)
	admin := mustLogin(t, c, "alice")
	bob := mustLogin(t, c, "bob")
	expectScopesDenied(t, c.do(http.MethodPost, "/api/v1/auth/principal?role=user", bearer(bob.Access), nil), "write:principals")
	expectStatus(t, c.do(http.MethodPost, "/api/v1/auth/principal", bearer(admin.Access), nil), http.StatusUnprocessableEntity)

	r := c.do(http.MethodPost, "/api/v1/auth/principal?role=user", bearer(admin.Access), nil)
	if !expectStatus(t, r, http.StatusOK) {
		return
	}
	svc := object(t, r)
	expectAt(t, svc, "service", "type")
	expectAt(t, svc, []any{}, "identities")
	expectAt(t, svc, "user", "roles", 0, "name")
	id, _ := svc["uuid"].(string)
	keyPath := "/api/v1/auth/principal/" + id + "/apikey"

	expectScopesDenied(t, c.postJSON(keyPath, bearer(bob.Access), map[string]any{"scopes": []string{"read:metadata"}}), "admin:apikeys")
	r = c.postJSON(keyPath, bearer(admin.Access), map[string]any{"scopes": []string{"write:principals"}})
	expectStatus(t, r, http.StatusForbidden)
	missing := "6a1d2a0e-9c1b-4f3e-8d7a-1b2c3d4e5f60"
	expectDetail(t, c.postJSON("/api/v1/auth/principal/"+missing+"/apikey", bearer(admin.Access), map[string]any{}),
		http.StatusNotFound, "Principal "+missing+" does not exist or insufficient permissions.")

	r = c.postJSON(keyPath, bearer(admin.Access), map[string]any{"scopes": []string{"read:metadata", "read:data"}, "note": "service", "expires_in": 600})
	if !expectStatus(t, r, http.StatusOK) {
		return
	}
	key := object(t, r)
	expectShape(t, "multiuser-apikey-create.txt", key)
	secret := secretOf(t, key)
	replay(t, s, muCapture("multiuser-apikey-use.txt"), recordedUserKey, secret)
	me := whoami(t, c, apikey(secret))
	expectAt(t, me, id, "uuid")
	expectAt(t, me, "service", "type")
	expectAt(t, me, []any{}, "api_keys") // a read-only key does not list its owner's keys
	// The admin sees it among the service's keys.
	if p, ok := c.getObject("/api/v1/auth/principal/"+id, bearer(admin.Access)); ok {
		expectAt(t, p, secret[:8], "api_keys", 0, "first_eight")
	}

	del := func(h http.Header) reply {
		return c.do(http.MethodDelete, keyPath+"?first_eight="+secret[:8], h, nil)
	}
	expectScopesDenied(t, del(bearer(bob.Access)), "admin:apikeys")
	expectStatus(t, del(bearer(admin.Access)), http.StatusNoContent)
	expectDetail(t, c.get("/api/v1/metadata/", apikey(secret)), http.StatusUnauthorized, msgInvalidAPIKey)
	expectDetail(t, del(bearer(admin.Access)), http.StatusNotFound, "The principal "+id+" has no such API key.")
}

// checkCSRF: a state-changing request authenticated by the tiled_api_key
// cookie must echo the tiled_csrf cookie in X-Csrf (double submit); one
// with the key in a header needs nothing.
func checkCSRF(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "csrf"))
	secret := secretOf(t, mustCreateKey(t, c, bearer(tp.Access), map[string]any{"scopes": nil}))

	b := jarClient(t, s)
	u, _ := url.Parse(s.base + "/api/v1/")
	// A browser holding the key in a cookie (set by a script of the
	// application: a multi-user server does not set it from ?api_key=).
	b.http.Jar.SetCookies(u, []*http.Cookie{{Name: "tiled_api_key", Value: secret, Path: "/"}})
	expectStatus(t, b.get("/api/v1/metadata/", nil), http.StatusOK)
	cookies := map[string]string{}
	for _, ck := range b.http.Jar.Cookies(u) {
		cookies[ck.Name] = ck.Value
	}
	if cookies["tiled_api_key"] != secret || cookies["tiled_csrf"] == "" {
		t.Fatalf("browser cookies after a first request %v, want tiled_api_key and tiled_csrf", cookies)
	}
	body := map[string]any{"scopes": []string{"read:metadata"}}
	// The cookie alone authenticates a read.
	expectStatus(t, b.get("/api/v1/auth/whoami", nil), http.StatusOK)
	expectStatus(t, b.postJSON("/api/v1/auth/apikey", nil, body), http.StatusForbidden)
	expectStatus(t, b.postJSON("/api/v1/auth/apikey", hdr("X-Csrf", "not-"+cookies["tiled_csrf"]), body), http.StatusForbidden)
	r := b.postJSON("/api/v1/auth/apikey", hdr("X-Csrf", cookies["tiled_csrf"]), body)
	if expectStatus(t, r, http.StatusOK) {
		expectAt(t, object(t, r), []any{"read:metadata"}, "scopes")
	}
	// Tiled also takes the token in the csrf query parameter.
	expectStatus(t, b.postJSON("/api/v1/auth/apikey?csrf="+url.QueryEscape(cookies["tiled_csrf"]), nil, body), http.StatusOK)
	// Not a cookie request: no CSRF token needed.
	expectStatus(t, c.postJSON("/api/v1/auth/apikey", apikey(secret), body), http.StatusOK)
}

// checkKeyManagesCredentials: through an API key, whoami lists the owner's
// keys and sessions, and a session can be ended by id, only when the key
// holds revoke:apikeys (a key of scopes ["inherit"] does, as the user role
// has it); a read-only key handed to a notebook can do neither.
func checkKeyManagesCredentials(t *testing.T, s *server) {
	c := s.client(t)
	name := uniqueName(t, "manage")
	tp := loginAs(t, c, name)
	reader := secretOf(t, mustCreateKey(t, c, bearer(tp.Access), map[string]any{"scopes": []string{"read:metadata", "read:data"}}))
	manager := secretOf(t, mustCreateKey(t, c, bearer(tp.Access), map[string]any{"scopes": []string{"read:metadata", "revoke:apikeys"}}))
	inherit := secretOf(t, mustCreateKey(t, c, bearer(tp.Access), map[string]any{"scopes": nil}))

	count := func(key, member string) int {
		v, _ := at(whoami(t, c, apikey(key)), member)
		l, _ := v.([]any)
		return len(l)
	}
	for _, k := range []struct {
		name          string
		key           string
		keys, session int
	}{{"read-only", reader, 0, 0}, {"revoke:apikeys", manager, 3, 1}, {"inherit", inherit, 3, 1}} {
		if got := [2]int{count(k.key, "api_keys"), count(k.key, "sessions")}; got != [2]int{k.keys, k.session} {
			t.Errorf("whoami through the %s key lists %d keys and %d sessions, want %d and %d", k.name, got[0], got[1], k.keys, k.session)
		}
	}
	v, _ := at(whoami(t, c, bearer(tp.Access)), "sessions", 0, "uuid")
	sid, _ := v.(string)
	revoke := func(key string) reply {
		return c.do(http.MethodDelete, "/api/v1/auth/session/revoke/"+sid, apikey(key), nil)
	}
	expectScopesDenied(t, revoke(reader), "revoke:apikeys")
	expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
	expectStatus(t, revoke(manager), http.StatusNoContent)
	expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusUnauthorized)
	second := loginAs(t, c, name)
	v, _ = at(whoami(t, c, bearer(second.Access)), "sessions")
	for _, sess := range v.([]any) {
		if m, _ := sess.(map[string]any); m["revoked"] == false {
			sid, _ = m["uuid"].(string)
		}
	}
	expectStatus(t, revoke(inherit), http.StatusNoContent)
	expectStatus(t, c.get("/api/v1/metadata/", bearer(second.Access)), http.StatusUnauthorized)
	// The read-only key itself keeps working for what it is for.
	expectStatus(t, c.get("/api/v1/metadata/", apikey(reader)), http.StatusOK)
}
