package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestMultiReplicas: two server processes on one PostgreSQL database with
// the same secret_keys, as behind a load balancer: every step of every
// flow may land on either (spec "Where we go further"; README "Running
// many replicas"). SQLite serves one process, so this is PostgreSQL only.
func TestMultiReplicas(t *testing.T) {
	t.Parallel()
	db := newBackend(t, "postgres")
	ports := []int{freePort(t), freePort(t)}
	op := startOIDC(t, ports...)
	cfg := muConfig(db)
	addProvider(cfg, oidcProviderConfig(op))
	// Both start at once on an empty database: one migrates, under the
	// advisory lock, the other waits for it.
	var reps [2]*server
	for i, p := range ports {
		reps[i] = launchAt(t, p, []string{"config", writeConfig(t, cfg)}, muEnv())
	}
	for _, s := range reps {
		if err := waitReady(s); err != nil {
			t.Fatalf("replica %s did not become ready: %v\n%s", s.base, err, s.output())
		}
	}
	a, b := reps[0], reps[1]
	for _, s := range reps {
		// Both applied (or waited for) the migrations before serving.
		expectStatus(t, s.client(t).get("/readyz", nil), http.StatusOK)
	}

	t.Run("refresh on the other replica", func(t *testing.T) {
		t.Parallel()
		ca, cb := a.client(t), b.client(t)
		tp := mustLogin(t, ca, "bob")
		expectStatus(t, cb.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
		next := mustRefresh(t, cb, tp.Refresh)
		expectStatus(t, ca.get("/api/v1/metadata/", bearer(next.Access)), http.StatusOK)
		// The old token, inside the grace window, on the first replica.
		if again := mustRefresh(t, ca, tp.Refresh); again.Refresh != next.Refresh {
			t.Errorf("old token on the other replica got %q, want the rotated %q", again.Refresh, next.Refresh)
		}
		mustRefresh(t, ca, next.Refresh)
	})
	t.Run("concurrent refreshes on both replicas", func(t *testing.T) {
		t.Parallel()
		ca, cb := a.client(t), b.client(t)
		tp := mustLogin(t, ca, "cara")
		var wg sync.WaitGroup
		start := make(chan struct{})
		var ra, rb reply
		wg.Add(2)
		go func() { defer wg.Done(); <-start; ra = ca.refresh(tp.Refresh) }()
		go func() { defer wg.Done(); <-start; rb = cb.refresh(tp.Refresh) }()
		close(start)
		wg.Wait()
		if expectStatus(t, ra, http.StatusOK) && expectStatus(t, rb, http.StatusOK) {
			if x, y := tokensOf(t, ra).Refresh, tokensOf(t, rb).Refresh; x != y {
				t.Errorf("replicas handed out different refresh tokens for one rotation: %q, %q", x, y)
			}
		}
	})
	// A replica answers for revocations from memory, kept exact by the
	// revocation log's notifications (issue 16): the other replica refuses a
	// revoked token once the notification has arrived, about a millisecond
	// after the revoking request returns, not in the same instant. The
	// replica that made the change refuses it at once.
	refusedSoon := func(t *testing.T, c *client, what string, cred http.Header) {
		t.Helper()
		poll(t, 10*time.Second, 2*time.Millisecond, what, func() (bool, string) {
			r := c.get("/api/v1/metadata/", cred)
			return r.Status == http.StatusUnauthorized, r.String()
		})
	}
	t.Run("revoke on one, refused on the other once notified", func(t *testing.T) {
		t.Parallel()
		ca, cb := a.client(t), b.client(t)
		tp := mustLogin(t, ca, "alice")
		expectStatus(t, cb.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
		expectStatus(t, ca.postJSON("/api/v1/auth/session/revoke", nil, map[string]string{"refresh_token": tp.Refresh}), http.StatusNoContent)
		expectStatus(t, ca.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusUnauthorized)
		refusedSoon(t, cb, "the other replica refuses a revoked session's token", bearer(tp.Access))
		expectDetail(t, cb.refresh(tp.Refresh), http.StatusUnauthorized, msgSessionExpired)

		// By id, and by logout, the other way round.
		tp = mustLogin(t, cb, "alice")
		ids := sessionIDs(t, cb, tp.Access)
		other := mustLogin(t, ca, "alice")
		for _, id := range ids {
			if r := cb.do(http.MethodDelete, "/api/v1/auth/session/revoke/"+id, bearer(other.Access), nil); r.Status != http.StatusNoContent {
				t.Errorf("revoke %s: %s", id, r)
			}
		}
		refusedSoon(t, ca, "a session revoked by id on the other replica", bearer(tp.Access))
		expectStatus(t, cb.do(http.MethodPost, "/api/v1/auth/logout", bearer(other.Access), nil), http.StatusOK)
		refusedSoon(t, ca, "a session logged out on the other replica", bearer(other.Access))
	})
	t.Run("API key made on one, used and revoked on the other", func(t *testing.T) {
		t.Parallel()
		ca, cb := a.client(t), b.client(t)
		tp := mustLogin(t, ca, "bob")
		secret := secretOf(t, mustCreateKey(t, ca, bearer(tp.Access), map[string]any{"scopes": []string{"read:metadata"}}))
		expectStatus(t, cb.get("/api/v1/metadata/", apikey(secret)), http.StatusOK)
		expectStatus(t, cb.do(http.MethodDelete, "/api/v1/auth/apikey?first_eight="+secret[:8], bearer(tp.Access), nil), http.StatusNoContent)
		refusedSoon(t, ca, "a key deleted on the other replica", apikey(secret))
		expectDetail(t, ca.get("/api/v1/metadata/", apikey(secret)), http.StatusUnauthorized, msgInvalidAPIKey)
	})
	t.Run("oidc code flow across replicas", func(t *testing.T) {
		t.Parallel()
		c := jarClient(t, a)
		checkLoginTokens(t, oidcCodeLogin(t, op, c, a, b, "alice"), provIdP, "alice")
		checkLoginTokens(t, oidcCodeLogin(t, op, c, b, a, "bob"), provIdP, "bob")
	})
	t.Run("oidc device flow across replicas", func(t *testing.T) {
		t.Parallel()
		c := jarClient(t, a)
		r, _ := oidcDeviceLogin(t, op, c, a, b, b, "dora")
		tp := checkTokenJSON(t, r, provIdP, "dora", 60)
		expectStatus(t, c.on(a).get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
	})
}
