package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/storeerr"
)

// testRotateRefreshPrincipal: a successful rotation returns, from the same
// statement, the principal's type, roles and identities, sorted.
func testRotateRefreshPrincipal(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0, identity.RoleUser, identity.RoleAdmin)
	ok(t, st.AddIdentity(ctx, p.ID, "toy", "alice"), "add identity")
	ok(t, st.AddIdentity(ctx, p.ID, "abc", "zed"), "add identity")
	s := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("p0") })
	got, who, err := rotate(ctx, st, rotation(s, "p0", "p1", time.Minute))
	ok(t, err, "rotate")
	equal(t, got.Generation, int64(1), "generation")
	equal(t, who.ID, p.ID, "principal id")
	equal(t, who.Type, identity.TypeUser, "principal type")
	equal(t, roleNamesOf(who.Roles), []string{identity.RoleAdmin, identity.RoleUser}, "roles, sorted")
	admin, _ := identity.RoleByName(identity.RoleAdmin)
	equal(t, who.Roles[0].Scopes, admin.Scopes, "a role carries its scopes")
	equal(t, who.Identities, []identity.Identity{
		{Provider: "abc", ID: "zed", PrincipalID: p.ID},
		{Provider: "toy", ID: "alice", PrincipalID: p.ID},
	}, "identities, sorted by provider")

	// A role change is seen by the next rotation.
	ok(t, st.RevokeRole(ctx, p.ID, identity.RoleAdmin), "revoke role")
	_, who, err = rotate(ctx, st, rotation(s, "p1", "p2", 2*time.Minute))
	ok(t, err, "rotate")
	equal(t, roleNamesOf(who.Roles), []string{identity.RoleUser}, "roles after a revocation")

	svc, err := st.CreatePrincipal(ctx, identity.Principal{ID: uuid.New(), Type: identity.TypeService, CreatedAt: t0})
	ok(t, err, "create service principal")
	s2 := newSession(t, st, svc.ID, func(s *sessions.Session) { s.RefreshHash = hash("q0") })
	_, who, err = rotate(ctx, st, rotation(s2, "q0", "q1", time.Minute))
	ok(t, err, "rotate")
	equal(t, who.Type, identity.TypeService, "service type")
	equal(t, len(who.Roles)+len(who.Identities), 0, "no roles, no identities")

	_, who, err = rotate(ctx, st, rotation(s2, "q0", "x", 2*time.Minute))
	isErr(t, err, sessions.ErrStaleRefresh, "stale rotation")
	equal(t, who.ID, uuid.Nil, "a stale rotation returns no principal")
}

// testRotateRefreshLogCursor: a rotation that leaves the principal to the
// caller's cache says instead whether the revocation log moved past the
// cursor the cache has applied: at the cursor it has not, one below it has.
func testRotateRefreshLogCursor(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0, identity.RoleUser)
	s := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("c0") })
	newest := func() int64 {
		t.Helper()
		// From a time after every entry, the start is the newest entry.
		cur, err := st.RevocationLogStart(ctx, t0.Add(100*365*24*time.Hour))
		ok(t, err, "log start")
		return cur
	}
	skipping := func(r sessions.Rotation, cursor int64) sessions.Rotation {
		r.SkipPrincipal, r.LogCursor = true, cursor
		return r
	}

	ok(t, st.GrantRole(ctx, p.ID, identity.RoleAdmin), "grant role (logged)")
	cursor := newest()
	got, err := st.RotateRefresh(ctx, skipping(rotation(s, "c0", "c1", time.Minute), cursor))
	ok(t, err, "rotate at the newest cursor")
	equal(t, got.LogAhead, false, "log ahead of its newest entry")
	equal(t, got.Principal.ID, uuid.Nil, "principal read although skipped")
	equal(t, got.Session.ID, s.ID, "session id")
	equal(t, got.Session.PrincipalID, p.ID, "principal id")
	equal(t, got.Session.Generation, int64(1), "generation")
	equal(t, got.Session.RotationPending, true, "pending")
	equal(t, got.Session.RefreshHash, hash("c1"), "new hash")

	got, err = st.RotateRefresh(ctx, skipping(rotation(s, "c1", "c2", 2*time.Minute), cursor-1))
	ok(t, err, "rotate one entry behind")
	equal(t, got.LogAhead, true, "log ahead of a cursor one entry behind")

	// A change logged after the cache's cursor is reported.
	ok(t, st.RevokeRole(ctx, p.ID, identity.RoleAdmin), "revoke role (logged)")
	got, err = st.RotateRefresh(ctx, skipping(rotation(s, "c2", "c3", 3*time.Minute), cursor))
	ok(t, err, "rotate after a change")
	equal(t, got.LogAhead, true, "log ahead after a change")
	got, err = st.RotateRefresh(ctx, skipping(rotation(s, "c3", "c4", 4*time.Minute), newest()))
	ok(t, err, "rotate caught up")
	equal(t, got.LogAhead, false, "log ahead once caught up")

	// A stale rotation still returns the session as it is.
	got, err = st.RotateRefresh(ctx, skipping(rotation(s, "c3", "x", 5*time.Minute), newest()))
	isErr(t, err, sessions.ErrStaleRefresh, "stale rotation")
	equal(t, got.Session.Generation, int64(4), "stale rotation's session")
}

func roleNamesOf(roles []identity.Role) []string {
	var out []string
	for _, r := range roles {
		out = append(out, r.Name)
	}
	return out
}

// testAuthLog: every change a replica may have cached is logged once, in
// the transaction that makes it; failed and no-op changes log nothing.
func testAuthLog(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0, identity.RoleUser)
	k := newKey(p.ID, "abcdef01", 0, nil)
	ok(t, st.CreateAPIKey(ctx, k, 0), "create key")
	s := newSession(t, st, p.ID)
	start, err := st.RevocationLogStart(ctx, time.Time{})
	ok(t, err, "log start")

	type step struct {
		name    string
		do      func() error
		wantErr error
		want    *sessions.Revocation // nil: nothing logged
	}
	changed := &sessions.Revocation{Kind: sessions.ChangedPrincipal, PrincipalID: p.ID}
	for _, tc := range []step{
		{"grant a role", func() error { return st.GrantRole(ctx, p.ID, identity.RoleAdmin) }, nil, changed},
		{"grant a role held", func() error { return st.GrantRole(ctx, p.ID, identity.RoleAdmin) }, nil, nil},
		{"revoke a role", func() error { return st.RevokeRole(ctx, p.ID, identity.RoleAdmin) }, nil, changed},
		{"revoke a role not held", func() error { return st.RevokeRole(ctx, p.ID, identity.RoleAdmin) }, storeerr.ErrNotFound, nil},
		{"add an identity", func() error { return st.AddIdentity(ctx, p.ID, "toy", "al") }, nil, changed},
		{"add a taken identity", func() error { return st.AddIdentity(ctx, p.ID, "toy", "al") }, storeerr.ErrConflict, nil},
		// A provider naming the principal (Entra) joins a new identity to it.
		{"log in a new identity as the principal", func() error {
			_, _, err := st.LoginIdentityAs(ctx, "entra", "al.renamed", p.ID, nil, t0)
			return err
		}, nil, changed},
		{"log in a known identity as the principal", func() error {
			_, _, err := st.LoginIdentityAs(ctx, "entra", "al.renamed", p.ID, nil, t0)
			return err
		}, nil, nil},
		{"log in a new identity as a new principal", func() error {
			_, _, err := st.LoginIdentityAs(ctx, "entra", "newcomer", uuid.New(), nil, t0)
			return err
		}, nil, nil},
		{"delete a key", func() error { return st.DeleteAPIKey(ctx, p.ID, k.FirstEight) },
			nil, &sessions.Revocation{Kind: sessions.DeletedAPIKey, PrincipalID: p.ID, APIKeyID: k.ID}},
		{"delete a missing key", func() error { return st.DeleteAPIKey(ctx, p.ID, k.FirstEight) }, storeerr.ErrNotFound, nil},
		{"revoke a session", func() error { return st.RevokeSession(ctx, s.ID, "logout", at(time.Minute)) },
			nil, &sessions.Revocation{Kind: sessions.RevokedSession, SessionID: s.ID}},
		{"delete the principal", func() error { return st.DeletePrincipal(ctx, p.ID) },
			nil, &sessions.Revocation{Kind: sessions.DeletedPrincipal, PrincipalID: p.ID}},
		{"delete a missing principal", func() error { return st.DeletePrincipal(ctx, p.ID) }, storeerr.ErrNotFound, nil},
	} {
		err := tc.do()
		if tc.wantErr == nil {
			ok(t, err, tc.name)
		} else {
			isErr(t, err, tc.wantErr, tc.name)
		}
		got, err := st.RevocationsSince(ctx, start, 10)
		ok(t, err, "revocations since")
		if tc.want == nil {
			equal(t, len(got), 0, tc.name+": entries logged")
			continue
		}
		equal(t, len(got), 1, tc.name+": entries logged")
		if got[0].Seq <= start {
			t.Fatalf("%s: seq %d after cursor %d", tc.name, got[0].Seq, start)
		}
		if got[0].RevokedAt.IsZero() {
			t.Fatalf("%s: no time logged", tc.name)
		}
		want := *tc.want
		want.Seq, want.RevokedAt = got[0].Seq, got[0].RevokedAt
		equal(t, got[0], want, tc.name+": entry")
		start = got[0].Seq
	}
}

// testRevocationLogStart: the cursor from which every entry at or after a
// time is read.
func testRevocationLogStart(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	n, err := st.RevocationLogStart(ctx, t0)
	ok(t, err, "start of an empty log")
	equal(t, n, int64(0), "start of an empty log")
	p := newPrincipal(t, st, t0)
	var seqs []int64
	for i := range 3 {
		s := newSession(t, st, p.ID)
		ok(t, st.RevokeSession(ctx, s.ID, "", at(time.Duration(i)*time.Minute)), "revoke")
		log, err := st.RevocationsSince(ctx, 0, 10)
		ok(t, err, "log")
		seqs = append(seqs, log[len(log)-1].Seq)
	}
	for _, tc := range []struct {
		since time.Duration
		want  int64
	}{
		{-time.Hour, seqs[0] - 1},
		{0, seqs[0] - 1},                // an entry exactly at since is read
		{time.Microsecond, seqs[1] - 1}, // just after the first
		{2 * time.Minute, seqs[2] - 1},
		{time.Hour, seqs[2]}, // none that late: from the newest on
	} {
		got, err := st.RevocationLogStart(ctx, at(tc.since))
		ok(t, err, "log start")
		equal(t, got, tc.want, "log start at t0+"+tc.since.String())
	}
}

func testTouchAPIKeys(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	a, b := newKey(p.ID, "0000000a", 0, nil), newKey(p.ID, "0000000b", time.Second, nil) // listed a, b
	ok(t, st.CreateAPIKey(ctx, a, 0), "create key")
	ok(t, st.CreateAPIKey(ctx, b, 0), "create key")
	latest := func() []*time.Time {
		keys, err := st.ListAPIKeys(ctx, p.ID)
		ok(t, err, "list keys")
		return []*time.Time{keys[0].LatestActivity, keys[1].LatestActivity}
	}
	ok(t, st.TouchAPIKeys(ctx, nil, at(time.Second), time.Minute), "touch no keys")
	ok(t, st.TouchAPIKeys(ctx, []uuid.UUID{a.ID}, at(time.Second), time.Minute), "touch one")
	got := latest()
	sameTimePtr(t, got[0], ptr(at(time.Second)), "touched")
	sameTimePtr(t, got[1], nil, "not named")
	ok(t, st.TouchAPIKeys(ctx, []uuid.UUID{a.ID, b.ID, uuid.New()}, at(30*time.Second), time.Minute), "touch both and a missing key")
	got = latest()
	sameTimePtr(t, got[0], ptr(at(time.Second)), "inside the interval: no write")
	sameTimePtr(t, got[1], ptr(at(30*time.Second)), "first use writes")
	ok(t, st.TouchAPIKeys(ctx, []uuid.UUID{a.ID, b.ID}, at(time.Second+time.Minute), time.Minute), "touch both")
	got = latest()
	sameTimePtr(t, got[0], ptr(at(time.Second+time.Minute)), "one interval later writes")
	sameTimePtr(t, got[1], ptr(at(30*time.Second)), "inside its interval: no write")
}

// recorder is a LogFollower that keeps what it read.
type recorder struct {
	mu      sync.Mutex
	cursor  int64
	resyncs int
	seen    []sessions.Revocation
	lost    []error
}

func (r *recorder) Resync(ctx context.Context, log sessions.LogReader) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cursor, err := log.RevocationLogStart(ctx, time.Time{})
	if err != nil {
		return err
	}
	r.cursor, r.seen = cursor, nil
	r.resyncs++
	return r.read(ctx, log)
}

func (r *recorder) CatchUp(ctx context.Context, log sessions.LogReader) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.read(ctx, log)
}

func (r *recorder) read(ctx context.Context, log sessions.LogReader) error {
	for {
		page, err := log.RevocationsSince(ctx, r.cursor, 2)
		if err != nil || len(page) == 0 {
			return err
		}
		r.seen = append(r.seen, page...)
		r.cursor = page[len(page)-1].Seq
	}
}

func (r *recorder) Apply(e sessions.Revocation) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case e.Seq <= r.cursor:
		return true
	case e.Seq != r.cursor+1:
		return false
	}
	r.seen = append(r.seen, e)
	r.cursor = e.Seq
	return true
}

func (r *recorder) Lost(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lost = append(r.lost, err)
}

func (r *recorder) state() (resyncs int, seen []uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.seen {
		seen = append(seen, e.SessionID)
	}
	return r.resyncs, seen
}

// eventually polls cond until it holds or ten seconds pass. It bounds a
// wait for something asynchronous (a notification); it times nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
	}
}

// testFollow: the feed rebuilds a follower at start, then wakes it after
// every commit that appended to the log; a write made through this store
// has been caught up with before it returns.
func testFollow(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	before := newSession(t, st, p.ID)
	ok(t, st.RevokeSession(ctx, before.ID, "", at(0)), "revoke")

	rec := &recorder{}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Follow(fctx, rec) }()
	eventually(t, "rebuilt at start", func() bool { n, _ := rec.state(); return n == 1 })
	_, seen := rec.state()
	equal(t, seen, []uuid.UUID{before.ID}, "the rebuild reads the log")

	var want []uuid.UUID
	want = append(want, before.ID)
	for range 3 {
		s := newSession(t, st, p.ID)
		ok(t, st.RevokeSession(ctx, s.ID, "", at(time.Minute)), "revoke")
		want = append(want, s.ID)
		// This process's own changes: before the write returns.
		_, seen := rec.state()
		equal(t, seen, want, "caught up before the write returned")
	}
	n, _ := rec.state()
	equal(t, n, 1, "no rebuild while connected")
	rec.mu.Lock()
	equal(t, len(rec.lost), 0, "nothing lost")
	rec.mu.Unlock()

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("follow after cancel: %v, want context.Canceled", err)
	}
}

// rotate is st.RotateRefresh reading the principal, its results spread.
func rotate(ctx context.Context, st store.Store, r sessions.Rotation) (sessions.Session, identity.Principal, error) {
	rot, err := st.RotateRefresh(ctx, r)
	return rot.Session, rot.Principal, err
}
