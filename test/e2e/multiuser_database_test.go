package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// migrationNames lists the embedded migrations of a dialect, as
// `server migrate status` names them.
func migrationNames(t *testing.T, dialect string) []string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "migrations", dialect, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations in migrations/%s: %v", dialect, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	return names
}

// migrate runs `server migrate ARGS... --database URI` and returns stdout.
func migrate(t *testing.T, uri string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, minimalEnv(), append(append([]string{"migrate"}, args...), "--database", uri)...)
	if code != 0 {
		t.Fatalf("server migrate %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
	}
	return stdout
}

// expectStatusLines checks `migrate status`: one line per migration in
// state (pending or applied), and the pending notice exactly when pending.
func expectStatusLines(t *testing.T, out string, names []string, state string) {
	t.Helper()
	for _, n := range names {
		found := false
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			found = found || (len(f) >= 3 && f[0] == n[:5] && f[1] == state && f[len(f)-1] == n)
		}
		if !found {
			t.Errorf("migrate status does not list %s as %s:\n%s", n, state, out)
		}
	}
	if pending := strings.Contains(out, "migrations are pending: run `server migrate up`"); pending != (state == "pending") {
		t.Errorf("migrate status with every migration %s: pending notice shown = %v:\n%s", state, pending, out)
	}
}

// TestMultiMigrate: `server migrate status | up | down-to 0` on a fresh
// database, then a server started on an unmigrated database with
// init_if_not_exists false: probes answer, /readyz and every API route
// that needs the database answer 503 with Retry-After, until the schema
// is migrated; then it serves without a restart (PostgreSQL) or after one
// (SQLite, which one process holds at a time).
func TestMultiMigrate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, db backend) {
		names := migrationNames(t, db.name)
		expectStatusLines(t, migrate(t, db.uri, "status"), names, "pending")
		out := migrate(t, db.uri, "up")
		for _, n := range names {
			if !strings.Contains(out, "applied "+n[:5]+" "+n) {
				t.Errorf("migrate up does not report %s:\n%s", n, out)
			}
		}
		expectStatusLines(t, migrate(t, db.uri, "status"), names, "applied")
		if out := migrate(t, db.uri, "up"); !strings.Contains(out, "schema is current; nothing to apply") {
			t.Errorf("second migrate up:\n%s", out)
		}
		out = migrate(t, db.uri, "down-to", "0")
		for _, n := range names {
			if !strings.Contains(out, "rolled back "+n[:5]+" "+n) {
				t.Errorf("migrate down-to 0 does not report %s:\n%s", n, out)
			}
		}
		expectStatusLines(t, migrate(t, db.uri, "status"), names, "pending")
		if code, _, stderr := runCLI(t, minimalEnv(), "migrate", "sideways", "--database", db.uri); code != 2 {
			t.Errorf("migrate sideways: exit %d, want 2 (usage)\n%s", code, stderr)
		}

		cfg := muConfig(db)
		cfg["database"].(map[string]any)["init_if_not_exists"] = false
		s := startMU(t, cfg)
		expectNotReady(t, s)
		if db.name == "sqlite" {
			// The server holds the file: a second process is refused.
			code, _, stderr := runCLI(t, minimalEnv(), "migrate", "up", "--database", db.uri)
			if code == 0 || !strings.Contains(stderr, "in use") {
				t.Errorf("migrate up while a server holds the SQLite file: exit %d, want a refusal that says the file is in use:\n%s", code, stderr)
			}
			s.stopAndWait(t)
			migrate(t, db.uri, "up")
			s = startMU(t, cfg)
		} else {
			migrate(t, db.uri, "up")
		}
		// The server checks the schema again every 5 s by itself (/readyz
		// would check it too, so it is not asked until the API answers).
		var login reply
		poll(t, 20*time.Second, 250*time.Millisecond, "logins served after `server migrate up`", func() (bool, string) {
			var err error
			login, err = rawDo(http.MethodPost, s.base+"/api/v1/auth/provider/toy/token", formHeader(), aliceForm(), 15*time.Second)
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			return login.Status != http.StatusServiceUnavailable, login.String()
		})
		tp := tokensOf(t, login)
		c := s.client(t)
		expectStatus(t, c.get("/readyz", nil), http.StatusOK)
		expectStatus(t, c.get("/api/v1/metadata/", bearer(tp.Access)), http.StatusOK)
		// tiled_admins could not be applied at start (no schema): the
		// login itself makes alice admin.
		expectStatus(t, c.get("/api/v1/auth/principal", bearer(tp.Access)), http.StatusOK)
	})
}

func formHeader() http.Header { return hdr("Content-Type", "application/x-www-form-urlencoded") }

// aliceForm is alice's password login as a form body.
func aliceForm() []byte {
	return []byte(url.Values{"username": {"alice"}, "password": {muPasswords["alice"]}}.Encode())
}

// expectNotReady: probes answer, /readyz is 503, the API's database-backed
// routes are 503 with Retry-After (never 500, never a hang), the about
// document stays open.
func expectNotReady(t *testing.T, s *server) {
	t.Helper()
	get := func(path string, h http.Header) reply {
		r, err := rawDo(http.MethodGet, s.base+path, h, nil, 15*time.Second)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return r
	}
	expectStatus(t, get("/healthz", nil), http.StatusOK)
	expectStatus(t, get("/readyz", nil), http.StatusServiceUnavailable)
	expectStatus(t, get("/api/v1/", nil), http.StatusOK)
	login, err := rawDo(http.MethodPost, s.base+"/api/v1/auth/provider/toy/token", formHeader(), aliceForm(), 15*time.Second)
	if err != nil {
		t.Fatalf("login: %v (a hang is not an answer)", err)
	}
	for _, r := range []reply{login, get("/api/v1/metadata/", nil), get("/api/v1/auth/whoami", nil)} {
		if !expectStatus(t, r, http.StatusServiceUnavailable) {
			continue
		}
		if ra := r.Header.Get("Retry-After"); ra == "" {
			t.Errorf("503 without Retry-After: %s", r)
		} else if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
			t.Errorf("Retry-After %q, want a positive number of seconds", ra)
		}
		if d, ok := object(t, r)["detail"].(string); !ok || d == "" || mediaType(r.Header) != "application/json" {
			t.Errorf("503 is not JSON with a detail message: %s", r)
		}
	}
	// The pages say it as a page, with the same status and Retry-After.
	for _, path := range []string{"/login", "/account"} {
		r := get(path, nil)
		if expectStatus(t, r, http.StatusServiceUnavailable) &&
			(r.Header.Get("Retry-After") == "" || mediaType(r.Header) != "text/html" || !strings.Contains(string(r.Body), "not ready")) {
			t.Errorf("%s while not ready: %s", path, r)
		}
	}
}

// TestMultiDatabaseUnreachable: PostgreSQL down (a port nothing listens
// on) at start, with init_if_not_exists false: the process must still
// start, its probes answer, and logins answer 503 with Retry-After, not
// 500 and not a hang (README "Running many replicas", docs/configuration.md).
func TestMultiDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	dead := freePort(t)
	cfg := muConfig(backend{name: "postgres", uri: "postgresql://postgres@127.0.0.1:" + strconv.Itoa(dead) + "/tiled?sslmode=disable"})
	cfg["database"].(map[string]any)["init_if_not_exists"] = false
	s := launchAt(t, freePort(t), []string{"config", writeConfig(t, cfg)}, muEnv())
	if err := waitReady(s); err != nil {
		t.Fatalf("with PostgreSQL unreachable the server must start and answer 503 until the database is back; "+
			"it did not (%v). Its output:\n%s", err, s.output())
	}
	expectNotReady(t, s)
}

// TestMultiSQLiteSingleProcess: a second server on the same SQLite file is
// refused at start with a clear reason (docs/configuration.md).
func TestMultiSQLiteSingleProcess(t *testing.T) {
	t.Parallel()
	db := newBackend(t, "sqlite")
	cfg := muConfig(db)
	first := startMU(t, cfg)
	second := launchAt(t, freePort(t), []string{"config", writeConfig(t, cfg)}, muEnv())
	select {
	case <-second.exited:
	case <-time.After(readyTimeout):
		t.Fatalf("a second server on the same SQLite file is still running")
	}
	path := strings.TrimPrefix(db.uri, "sqlite:///")
	if out := second.output(); !strings.Contains(out, "in use by another process") || !strings.Contains(out, path) {
		t.Errorf("second server's refusal does not say the file %s is in use:\n%s", path, out)
	}
	expectStatus(t, first.client(t).get("/readyz", nil), http.StatusOK)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}
