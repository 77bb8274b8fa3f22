package e2e

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sessionConfig is muConfig plus the dummy provider, whose users (any
// name) give each test a principal of its own, and the given
// authentication and server settings.
func sessionConfig(db backend, auth, srv map[string]any) map[string]any {
	cfg := muConfig(db)
	addProvider(cfg, map[string]any{"provider": provDummy, "authenticator": "dummy"})
	for k, v := range auth {
		authOf(cfg)[k] = v
	}
	if srv != nil {
		cfg["server"] = srv
	}
	return cfg
}

// loginAs opens a session for a principal of the test's own (a dummy
// user named after it).
func loginAs(t *testing.T, c *client, name string) tokenPair {
	t.Helper()
	return tokensOf(t, c.login(provDummy, name, "any password"))
}

// uniqueName is a dummy user name no other test uses.
func uniqueName(t *testing.T, prefix string) string { return prefix + "-" + randomHex(t, 4) }

// TestMultiSessions: refresh and rotation, the grace window and reuse,
// revocation by token and by id, logout, whoami (spec section 6; captures
// multiuser-refresh*.txt, multiuser-session-revoke*.txt, multiuser-whoami*.txt).
// The limit of 200 sessions per principal is left to the unit tests: it
// takes 200 logins to reach.
func TestMultiSessions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, db backend) {
		s := startMU(t, sessionConfig(db, nil, nil))
		runOnServer(t, s, []serverCase{
			{"refresh rotates", checkRefreshRotates},
			{"concurrent refreshes with one token", checkConcurrentRefresh},
			{"old token inside the grace window", checkGraceReuse},
			{"malformed refresh requests", checkMalformedRefresh},
			{"revoke by refresh token", checkRevokeByToken},
			{"revoke by id", checkRevokeByID},
			{"logout", checkLogout},
			{"whoami", checkWhoami},
			{"rejected bearer tokens", checkRejectedBearers},
		})
	})
}

func checkRefreshRotates(t *testing.T, s *server) {
	c := s.client(t)
	tp := mustLogin(t, c, "cara")
	r := c.refresh(tp.Refresh)
	next := tokensOf(t, r)
	expectShape(t, "multiuser-refresh.txt", next.Body)
	expectAt(t, next.Body, "bearer", "token_type")
	expectNumberAt(t, next.Body, 900, "expires_in")
	expectNumberAt(t, next.Body, 604800, "refresh_token_expires_in")
	if next.Refresh == tp.Refresh {
		t.Errorf("refresh returned the same refresh token: no rotation")
	}
	if sub := jwtClaims(t, next.Access)["sub"]; sub != tp.Principal {
		t.Errorf("refreshed access token sub %v, want the login's principal %s", sub, tp.Principal)
	}
	expectStatus(t, c.get("/api/v1/metadata/", bearer(next.Access)), http.StatusOK)
	third := mustRefresh(t, c, next.Refresh)
	if third.Refresh == next.Refresh || third.Refresh == tp.Refresh {
		t.Errorf("second refresh did not rotate")
	}
	expectStatus(t, c.get("/api/v1/metadata/", bearer(third.Access)), http.StatusOK)
}

// checkConcurrentRefresh: several clients refresh with the same token at
// once (two tabs, a retry behind a load balancer): all succeed and end on
// the same new refresh token, which then works.
func checkConcurrentRefresh(t *testing.T, s *server) {
	const rounds, clients = 4, 4
	c := s.client(t)
	for round := 0; round < rounds; round++ {
		tp := loginAs(t, c, uniqueName(t, "race"))
		var wg sync.WaitGroup
		start := make(chan struct{})
		replies := make([]reply, clients)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				replies[i] = c.refresh(tp.Refresh)
			}()
		}
		close(start)
		wg.Wait()
		var refreshTokens []string
		for _, r := range replies {
			if !expectStatus(t, r, http.StatusOK) {
				return
			}
			refreshTokens = append(refreshTokens, tokensOf(t, r).Refresh)
		}
		for i, rt := range refreshTokens {
			if rt != refreshTokens[0] {
				t.Fatalf("round %d: concurrent refresh %d got refresh token %q, refresh 0 got %q", round, i, rt, refreshTokens[0])
			}
		}
		if refreshTokens[0] == tp.Refresh {
			t.Fatalf("round %d: no rotation", round)
		}
		mustRefresh(t, c, refreshTokens[0])
	}
}

// checkGraceReuse: the previous token, presented again shortly after the
// rotation, gets the same new refresh token (Tiled's captured answer to a
// second refresh with the old token is a 200 too).
func checkGraceReuse(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "grace"))
	next := mustRefresh(t, c, tp.Refresh)
	again := mustRefresh(t, c, tp.Refresh)
	if again.Refresh != next.Refresh {
		t.Errorf("old token inside the grace window got refresh token %q, the first refresh %q", again.Refresh, next.Refresh)
	}
	mustRefresh(t, c, next.Refresh)
}

func checkMalformedRefresh(t *testing.T, s *server) {
	replay(t, s, muCapture("multiuser-refresh-garbage.txt"), "", "")
	c := s.client(t)
	// multiuser-refresh-empty-body.txt (its curl line lost the empty -d
	// argument, so it cannot be loaded as a capture).
	r := c.postJSON("/api/v1/auth/session/refresh", nil, "")
	if expectStatus(t, r, http.StatusUnprocessableEntity) {
		expectAt(t, decode(t, r), mustDecode(t, `{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}`))
	}
	for _, garbage := range []string{"abc", "", strings.Repeat("a", 64) + ".0.xyz", "00000000000000000000000000000000.1.AAAA"} {
		r := c.refresh(garbage)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("refresh %q: status %d, want 401: %s", garbage, r.Status, r)
		}
	}
	r = c.postJSON("/api/v1/auth/session/refresh", nil, map[string]any{"refresh_token": 42})
	expectStatus(t, r, http.StatusUnprocessableEntity)
	r = c.postJSON("/api/v1/auth/session/refresh", nil, map[string]any{})
	if expectStatus(t, r, http.StatusUnprocessableEntity) {
		expectAt(t, object(t, r), []any{"body", "refresh_token"}, "detail", 0, "loc")
	}
}

// checkRevokeByToken: POST /auth/session/revoke ends the session: its
// refresh token and, at once, its access token are refused.
func checkRevokeByToken(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "revoke"))
	expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
	// A well-formed token for this session that the server did not issue
	// (its session id and generation, another MAC) proves nothing: anyone
	// who learned a session id could make one.
	parts := strings.Split(tp.Refresh, ".")
	if len(parts) != 3 {
		t.Fatalf("refresh token %q is not id.generation.mac", tp.Refresh)
	}
	forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	expectDetail(t, c.postJSON("/api/v1/auth/session/revoke", nil, map[string]string{"refresh_token": forged}),
		http.StatusUnauthorized, msgBadCreds)
	expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
	r := c.postJSON("/api/v1/auth/session/revoke", nil, map[string]string{"refresh_token": tp.Refresh})
	if expectStatus(t, r, http.StatusNoContent) && len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r)
	}
	expectCaptured(t, c.refresh(tp.Refresh), "multiuser-refresh-after-revoke.txt")
	expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusUnauthorized)
	expectStatus(t, c.get("/api/v1/auth/whoami", bearer(tp.Access)), http.StatusUnauthorized)
	// Revoking again is harmless: Tiled finds the (revoked) session and
	// answers 204 again; its 409 is for a session it no longer has.
	r = c.postJSON("/api/v1/auth/session/revoke", nil, map[string]string{"refresh_token": tp.Refresh})
	expectStatus(t, r, http.StatusNoContent)
	expectDetail(t, c.postJSON("/api/v1/auth/session/revoke", nil, map[string]string{"refresh_token": "abc"}),
		http.StatusUnauthorized, msgBadCreds)
}

// sessionIDs lists the uuids of the caller's sessions that are not revoked.
func sessionIDs(t *testing.T, c *client, access string) []string {
	t.Helper()
	v, _ := at(whoami(t, c, bearer(access)), "sessions")
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		m, _ := x.(map[string]any)
		if id, ok := m["uuid"].(string); ok && m["revoked"] == false {
			out = append(out, id)
		}
	}
	return out
}

// checkRevokeByID: DELETE /auth/session/revoke/{id} ends one's own
// session; another user's is 404 as if absent; an admin may end anyone's.
func checkRevokeByID(t *testing.T, s *server) {
	c := s.client(t)
	name := uniqueName(t, "byid")
	first := loginAs(t, c, name)
	only := sessionIDs(t, c, first.Access)
	if len(only) != 1 {
		t.Fatalf("a new principal with one login has sessions %v", only)
	}
	firstID := only[0]
	second := loginAs(t, c, name)
	var secondID string
	for _, id := range sessionIDs(t, c, second.Access) {
		if id != firstID {
			secondID = id
		}
	}
	if secondID == "" {
		t.Fatalf("second login's session not listed by whoami")
	}
	del := func(id string, h http.Header) reply {
		return c.do(http.MethodDelete, "/api/v1/auth/session/revoke/"+id, h, nil)
	}

	// Another principal cannot, and learns nothing.
	other := loginAs(t, c, uniqueName(t, "other"))
	expectDetail(t, del(firstID, bearer(other.Access)), http.StatusNotFound,
		"Sessions does not exist or requester has insufficient permissions")
	expectStatus(t, c.get("/api/v1/metadata/", bearer(first.Access)), http.StatusOK)
	expectStatus(t, del(firstID, nil), http.StatusUnauthorized)

	// One's own, by the hex form Tiled's client uses (capture), from another session.
	r := del(strings.ReplaceAll(firstID, "-", ""), bearer(second.Access))
	expectStatus(t, r, http.StatusNoContent)
	expectStatus(t, c.get("/api/v1/metadata/", bearer(first.Access)), http.StatusUnauthorized)
	expectDetail(t, c.refresh(first.Refresh), http.StatusUnauthorized, msgSessionExpired)
	expectStatus(t, c.get("/api/v1/metadata/", bearer(second.Access)), http.StatusOK)
	if ids := sessionIDs(t, c, second.Access); len(ids) != 1 || ids[0] != secondID {
		t.Errorf("live sessions after revoking one: %v, want [%s]", ids, secondID)
	}
	// Again: Tiled finds the revoked session and answers 204 again.
	expectStatus(t, del(firstID, bearer(second.Access)), http.StatusNoContent)
	r = del("00000000-0000-4000-8000-000000000000", bearer(second.Access))
	if expectStatus(t, r, http.StatusNotFound) {
		// Tiled says "No session <id>"; hiding whether it exists is fine too.
		d, _ := object(t, r)["detail"].(string)
		if d != "No session 00000000-0000-4000-8000-000000000000" && d != "Sessions does not exist or requester has insufficient permissions" {
			t.Errorf("unknown session: detail %q", d)
		}
	}

	// An admin (alice, in tiled_admins) may end anyone's.
	admin := mustLogin(t, c, "alice")
	expectStatus(t, del(secondID, bearer(admin.Access)), http.StatusNoContent)
	expectStatus(t, c.get("/api/v1/metadata/", bearer(second.Access)), http.StatusUnauthorized)
	expectDetail(t, c.refresh(second.Refresh), http.StatusUnauthorized, msgSessionExpired)
}

// checkLogout: POST /auth/logout answers {} and clears the API-key cookie
// (multiuser-logout.txt); here it also ends the bearer's session.
func checkLogout(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "logout"))
	keep := loginAs(t, c, uniqueName(t, "bystander"))
	r := c.do(http.MethodPost, "/api/v1/auth/logout", bearer(tp.Access), nil)
	expectCaptured(t, r, "multiuser-logout.txt")
	if r.Status == http.StatusOK {
		ck := findCookie(r, "tiled_api_key")
		switch {
		case ck == nil:
			t.Errorf("logout does not clear tiled_api_key; Set-Cookie %q", r.Header.Values("Set-Cookie"))
		case ck.MaxAge >= 0 && (ck.Expires.IsZero() || ck.Expires.After(time.Now())):
			t.Errorf("tiled_api_key cookie not expired: %q", ck.Raw)
		case ck.Value != "" || ck.Path != "/":
			t.Errorf("tiled_api_key cookie %q, want an empty value on Path=/", ck.Raw)
		}
	}
	expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusUnauthorized)
	expectDetail(t, c.refresh(tp.Refresh), http.StatusUnauthorized, msgSessionExpired)
	expectStatus(t, c.get("/api/v1/metadata/", bearer(keep.Access)), http.StatusOK)
	// Without credentials (a browser with only the cookie gone) it still answers.
	expectStatus(t, c.do(http.MethodPost, "/api/v1/auth/logout", nil, nil), http.StatusOK)
}

// checkWhoami: null when anonymous; the principal in Tiled's shape
// (multiuser-whoami.txt) for a bearer.
func checkWhoami(t *testing.T, s *server) {
	replay(t, s, muCapture("multiuser-whoami-anonymous.txt"), "", "")
	c := s.client(t)
	tp := mustLogin(t, c, "alice")
	me := whoami(t, c, bearer(tp.Access))
	expectShape(t, "multiuser-whoami.txt", me)
	expectAt(t, me, dashedUUID(tp.Principal), "uuid")
	expectAt(t, me, "user", "type")
	expectAt(t, me, "alice", "identities", 0, "id")
	expectAt(t, me, provToy, "identities", 0, "provider")
	var roles []string
	v, _ := at(me, "roles")
	list, _ := v.([]any)
	for _, r := range list {
		if n, ok := r.(map[string]any)["name"].(string); ok {
			roles = append(roles, n)
		}
	}
	// alice is in tiled_admins: Tiled gives her both roles (capture).
	if got := strings.Join(sortedCopy(roles), ","); got != "admin,user" {
		t.Errorf("alice's roles %v, want admin and user", roles)
	}
	bob := mustLogin(t, c, "bob")
	bm := whoami(t, c, bearer(bob.Access))
	expectAt(t, bm, dashedUUID(bob.Principal), "uuid")
	v, _ = at(bm, "roles")
	if list, _ := v.([]any); len(list) != 1 {
		t.Errorf("bob's roles %s, want only user", compact(v))
	}
	expectAt(t, bm, "user", "roles", 0, "name")
	fresh := loginAs(t, c, uniqueName(t, "whoami"))
	fm := whoami(t, c, bearer(fresh.Access))
	expectAt(t, fm, []any{}, "api_keys")
	if v, _ := at(fm, "sessions"); len(v.([]any)) != 1 {
		t.Errorf("a principal with one login lists sessions %s", compact(v))
	}
	expectAt(t, fm, false, "sessions", 0, "revoked")
}

// checkRejectedBearers: Tiled's answers to requests without or with bad
// credentials (captures).
func checkRejectedBearers(t *testing.T, s *server) {
	replay(t, s, muCapture("multiuser-metadata-anonymous.txt"), "", "")
	replay(t, s, muCapture("multiuser-metadata-garbage-bearer.txt"), "", "")
	c := s.client(t)
	// Tiled's own token, signed with a key this server does not hold.
	expectDetail(t, c.get("/api/v1/metadata/", bearer(recordedAliceAccess)), http.StatusUnauthorized, msgBadCreds)
	// A refresh token is not an access token.
	tp := loginAs(t, c, uniqueName(t, "swap"))
	expectDetail(t, c.get("/api/v1/metadata/", bearer(tp.Refresh)), http.StatusUnauthorized, msgBadCreds)
	// The server's own claims, signed with its own key: accepted as issued,
	// refused with any other type (Tiled's "type" claim tells access tokens
	// from the others it signs).
	claims := jwt.MapClaims(jwtClaims(t, tp.Access))
	resign := func(typ any) string {
		m := jwt.MapClaims{}
		for k, v := range claims {
			m[k] = v
		}
		if typ == nil {
			delete(m, "type")
		} else {
			m["type"] = typ
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, m).SignedString([]byte(muSecretKey))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expectStatus(t, c.get("/api/v1/metadata/", bearer(resign("access"))), http.StatusOK)
	for _, typ := range []any{"refresh", "Access", "", nil, 1} {
		expectDetail(t, c.get("/api/v1/metadata/", bearer(resign(typ))), http.StatusUnauthorized, msgBadCreds)
	}
}

// TestMultiSessionExpiry: short lifetimes. An access token is refused with
// Tiled's message once expired and a refresh brings a working one; an old
// refresh token presented after the grace window ends the whole session;
// a session not refreshed for refresh_token_max_age ends.
func TestMultiSessionExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, db backend) {
		t.Run("access token and grace window", func(t *testing.T) {
			t.Parallel()
			s := startMU(t, sessionConfig(db, map[string]any{"access_token_max_age": 1},
				map[string]any{"refresh_grace_period": "1s"}))
			t.Run("access token expires", func(t *testing.T) { t.Parallel(); checkAccessExpiry(t, s) })
			t.Run("old token after the grace window", func(t *testing.T) { t.Parallel(); checkReuseAfterGrace(t, s) })
		})
		t.Run("inactivity", func(t *testing.T) {
			t.Parallel()
			// A server of its own, so a database of its own (SQLite serves one process).
			s := startMU(t, sessionConfig(newBackend(t, db.name), map[string]any{"refresh_token_max_age": 2}, nil))
			checkInactivity(t, s)
		})
	})
}

func checkAccessExpiry(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "expiry"))
	expectNumberAt(t, tp.Body, 1, "expires_in")
	var last reply
	poll(t, 10*time.Second, 100*time.Millisecond, "access token refused after access_token_max_age", func() (bool, string) {
		last = c.get("/api/v1/metadata/", bearer(tp.Access))
		return last.Status != http.StatusOK, last.String()
	})
	expectDetail(t, last, http.StatusUnauthorized, msgAccessExpired)
	// A refresh brings a new access token that works (it lives 1 s: retry
	// with a fresh one if this machine is slower than that).
	refresh := tp.Refresh
	for attempt := 0; ; attempt++ {
		next := mustRefresh(t, c, refresh)
		r := c.get("/api/v1/metadata/", bearer(next.Access))
		if r.Status == http.StatusOK {
			break
		}
		if attempt == 2 || !strings.Contains(string(r.Body), msgAccessExpired) {
			t.Fatalf("refreshed access token refused: %s", r)
		}
		refresh = next.Refresh
	}
}

// checkReuseAfterGrace: inside the 1 s window the old token keeps getting
// the same new token; after it, the old token is a replay: 401, and the
// session is revoked, so the current token is refused too.
func checkReuseAfterGrace(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "reuse"))
	next := mustRefresh(t, c, tp.Refresh)
	var last reply
	poll(t, 10*time.Second, 100*time.Millisecond, "old refresh token refused after refresh_grace_period", func() (bool, string) {
		last = c.refresh(tp.Refresh)
		if last.Status == http.StatusOK {
			if got := tokensOf(t, last).Refresh; got != next.Refresh {
				t.Fatalf("old token inside the grace window got %q, want the rotated %q", got, next.Refresh)
			}
			return false, last.String()
		}
		return true, last.String()
	})
	expectDetail(t, last, http.StatusUnauthorized, msgSessionExpired)
	expectDetail(t, c.refresh(next.Refresh), http.StatusUnauthorized, msgSessionExpired)
}

// checkInactivity: refreshes within refresh_token_max_age (2 s) keep the
// session going past it; then, with none for longer than that, the
// session ends. Session liveness cannot be probed without refreshing (which
// would extend it), so the test waits for the deadline the configuration
// sets, measured from the last refresh's answer.
func checkInactivity(t *testing.T, s *server) {
	c := s.client(t)
	tp := loginAs(t, c, uniqueName(t, "idle"))
	expectNumberAt(t, tp.Body, 2, "refresh_token_expires_in")
	refresh := tp.Refresh
	began := time.Now()
	for time.Since(began) < 3*time.Second {
		time.Sleep(500 * time.Millisecond) // well inside the 2 s window
		refresh = mustRefresh(t, c, refresh).Refresh
	}
	lastActive := time.Now()
	time.Sleep(time.Until(lastActive.Add(2*time.Second + 500*time.Millisecond)))
	expectDetail(t, c.refresh(refresh), http.StatusUnauthorized, msgSessionExpired)
}
