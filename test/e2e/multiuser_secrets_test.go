package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/store"
)

// auditRows reads every row of the audit_events table of db (the server
// has stopped), as JSON text to search.
func auditRows(t *testing.T, db backend) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts := store.DefaultOptions()
	opts.URI = db.uri
	st, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open the session database: %v", err)
	}
	defer st.Close()
	events, err := st.AuditEvents(ctx, time.Time{}, 10000)
	if err != nil {
		t.Fatalf("read audit events: %v", err)
	}
	if len(events) == 0 {
		t.Fatal("no audit events stored")
	}
	b, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMultiNoSecretInLogs runs the flows that handle secrets (password
// login, refresh, API key creation and use in header, query and cookie,
// revocation) at debug level, in text and in JSON, and then searches the
// whole server output for every secret it saw: none may appear.
func TestMultiNoSecretInLogs(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			db := newBackend(t, "sqlite")
			cfg := muConfig(db)
			cfg["server"] = map[string]any{"log_format": format, "log_level": "debug"}
			s := startMU(t, cfg)
			c := jarClient(t, s)

			secrets := map[string]string{"password": muPasswords["alice"], "secret key": muSecretKey}
			wrong := c.login(provToy, "alice", "not-the-password-"+format)
			if wrong.Status != http.StatusUnauthorized {
				t.Fatalf("wrong password: %s", wrong)
			}
			secrets["wrong password"] = "not-the-password-" + format
			tp := mustLogin(t, c, "alice")
			secrets["access token"], secrets["refresh token"] = tp.Access, tp.Refresh
			next := mustRefresh(t, c, tp.Refresh)
			secrets["rotated refresh token"] = next.Refresh

			created := c.postJSON("/api/v1/auth/apikey", bearer(next.Access), map[string]any{"scopes": []string{"read:metadata"}})
			key, _ := object(t, created)["secret"].(string)
			if created.Status != http.StatusOK || key == "" {
				t.Fatalf("create key: %s", created)
			}
			secrets["API key"] = key
			for _, r := range []reply{
				c.get("/api/v1/metadata/", hdr("Authorization", "Apikey "+key)),
				c.get("/api/v1/metadata/?api_key="+key, nil),
				c.get("/api/v1/metadata/", hdr("Cookie", "tiled_api_key="+key)),
				c.get("/api/v1/auth/apikey?api_key="+key, nil),
			} {
				if r.Status != http.StatusOK {
					t.Fatalf("using the key: %s", r)
				}
			}
			// A client without the API-key cookie: with it, CSRF rules apply
			// and the cookie (an API key) would outrank the bearer token.
			fresh := jarClient(t, s)
			if r := fresh.postJSON("/api/v1/auth/session/revoke", nil, map[string]string{"refresh_token": next.Refresh}); r.Status != http.StatusNoContent {
				t.Fatalf("revoke: %s", r)
			}
			if r := fresh.get("/api/v1/metadata/", bearer(next.Access)); r.Status != http.StatusUnauthorized {
				t.Fatalf("revoked token: %s", r)
			}

			// What the audit trail must have recorded (and the scan below
			// covers): a failed and a successful login, a key, a revocation.
			s.stopAndWait(t)
			out := s.output()
			rows := auditRows(t, db)
			for _, ev := range []string{`"event":"login","outcome":"failure"`, `"event":"login","outcome":"success"`,
				`"event":"apikey.create"`, `"event":"session.revoke"`} {
				if !strings.Contains(rows, strings.ReplaceAll(strings.ReplaceAll(ev, `"event"`, `"Name"`), `"outcome"`, `"Outcome"`)) {
					t.Errorf("no audit row %s in\n%s", ev, rows)
				}
				if format == "json" && !strings.Contains(out, ev) {
					t.Errorf("no audit log record %s", ev)
				}
			}
			if !strings.Contains(out, "level=DEBUG") && !strings.Contains(out, `"level":"DEBUG"`) {
				t.Fatalf("the server did not log at debug level; the check would prove little:\n%s", out)
			}
			for what, secret := range secrets {
				if strings.Contains(out, secret) {
					t.Errorf("the %s appears in the server output", what)
				}
				if strings.Contains(rows, secret) {
					t.Errorf("the %s appears in the audit_events table", what)
				}
			}
		})
	}
}
