package authapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/audit"
)

// lockedBuffer is a log sink shared by the replicas' loggers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAuditTrail: each security event is one structured log record and
// one row, with event, outcome, principal, provider, identity, client
// address and session; and no password, token or key is in either.
func TestAuditTrail(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		logs := &lockedBuffer{}
		rec := &audit.Recorder{Store: e.store, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: e.clock.now}
		for _, r := range e.replicas {
			r.h.Audit = rec
			r.h.APIKeys = &apikeys.Service{Identities: e.store, Now: e.clock.now, Logger: slog.New(slog.DiscardHandler)}
			r.h.LoginLimit = LoginLimit{PerUserAddress: 10, PerAddress: 100, Window: time.Hour}
		}
		const addr = "198.51.100.42"
		start := e.clock.now().Add(-time.Second)
		secrets := []string{"pw", "wrong-password-xyz"}

		expect(t, e.loginFrom(0, addr, provPassword, "carl", "wrong-password-xyz"), http.StatusUnauthorized, "wrong password")
		ok := e.loginFrom(1, addr, provPassword, "carl", "pw")
		expect(t, ok, http.StatusOK, "login")
		tok := ok.json(t)
		access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
		secrets = append(secrets, access, refresh)
		bearer := func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+access) }
		send := func(method, path, body string, opts ...func(*http.Request)) response {
			req, _ := http.NewRequest(method, e.api(0, path), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", addr)
			for _, o := range opts {
				o(req)
			}
			return e.do(req)
		}
		r := send("POST", "session/refresh", `{"refresh_token":"`+refresh+`"}`)
		expect(t, r, http.StatusOK, "refresh")
		next := r.json(t)
		access = next["access_token"].(string)
		secrets = append(secrets, access, next["refresh_token"].(string))
		e.clock.advance(time.Minute) // past the grace window: the old token is now reuse
		expect(t, send("POST", "session/refresh", `{"refresh_token":"`+refresh+`"}`), http.StatusUnauthorized, "reuse")

		// A new session for the rest.
		ok = e.loginFrom(0, addr, provPassword, "carl", "pw")
		tok = ok.json(t)
		access, refresh = tok["access_token"].(string), tok["refresh_token"].(string)
		secrets = append(secrets, access, refresh)
		r = send("POST", "apikey", `{"scopes":["read:metadata"]}`, bearer)
		expect(t, r, http.StatusOK, "create key")
		key := r.json(t)["secret"].(string)
		secrets = append(secrets, key)
		expect(t, send("DELETE", "apikey?first_eight="+key[:8], "", bearer), http.StatusNoContent, "delete key")
		second := e.loginFrom(0, addr, provPassword, "carl", "pw").json(t)
		secrets = append(secrets, second["access_token"].(string), second["refresh_token"].(string))
		expect(t, send("POST", "session/revoke", `{"refresh_token":"`+second["refresh_token"].(string)+`"}`), http.StatusNoContent, "revoke by token")
		expect(t, send("POST", "logout", "", bearer), http.StatusOK, "logout")

		events, err := e.store.AuditEvents(t.Context(), start, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range events {
			got = append(got, ev.Name+":"+ev.Outcome)
			if ev.ClientAddr != addr {
				t.Errorf("%s: client %q, want %q", ev.Name, ev.ClientAddr, addr)
			}
			if ev.RequestID == "" {
				t.Errorf("%s: no request id", ev.Name)
			}
		}
		want := []string{"login:failure", "principal.create:success", "login:success", "session.reuse:failure",
			"login:success", "apikey.create:success", "apikey.delete:success", "login:success",
			"session.revoke:success", "session.revoke:success"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
		byName := func(name string, n int) audit.Event {
			for _, ev := range events {
				if ev.Name == name {
					if n == 0 {
						return ev
					}
					n--
				}
			}
			t.Fatalf("no %s", name)
			return audit.Event{}
		}
		if f := byName(audit.Login, 0); f.IdentityID != "carl" || f.Provider != provPassword || f.Detail["pair_attempts"] != 1.0 {
			t.Errorf("failed login %+v", f)
		}
		if s := byName(audit.Login, 1); s.PrincipalID.String() == "" || s.SessionID.String() == "00000000-0000-0000-0000-000000000000" {
			t.Errorf("successful login without principal or session: %+v", s)
		}
		if ru := byName(audit.RefreshReuse, 0); ru.SessionID != byName(audit.Login, 1).SessionID || ru.PrincipalID != byName(audit.Login, 1).PrincipalID {
			t.Errorf("reuse names session %s principal %s, want the first login's", ru.SessionID, ru.PrincipalID)
		}
		if k := byName(audit.APIKeyCreate, 0); k.Detail["first_eight"] != key[:8] {
			t.Errorf("key created: %+v", k)
		}
		if lo := byName(audit.SessionRevoke, 1); lo.Detail["by"] != "logout" || lo.SessionID != byName(audit.Login, 2).SessionID {
			t.Errorf("logout: %+v", lo)
		}

		// The log has one "audit" record per event, with the same fields.
		var records int
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if m["msg"] == "audit" {
				records++
				for _, k := range []string{"event", "outcome", "principal", "provider", "identity", "client", "session"} {
					if _, ok := m[k]; !ok {
						t.Errorf("audit record without %s: %s", k, line)
					}
				}
			}
		}
		if records != len(events) {
			t.Errorf("%d audit log records for %d events", records, len(events))
		}
		rows, _ := json.Marshal(events)
		for i, s := range secrets {
			if strings.Contains(logs.String(), s) || strings.Contains(string(rows), s) {
				t.Errorf("secret %d (%s...) is in the audit trail", i, s[:min(len(s), 4)])
			}
		}
	})
}
