package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/storeerr"
)

func testSessions(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	full := sessions.Session{
		ID: uuid.New(), PrincipalID: p.ID, CreatedAt: t0, ExpiresAt: ptr(t0.Add(365 * 24 * time.Hour)),
		RefreshExpiresAt: t0.Add(7 * 24 * time.Hour), RefreshHash: hash("current"), PrevRefreshHash: hash("previous"),
		RotatedAt: ptr(t0.Add(time.Second)), Generation: 3, LastUsedAt: t0.Add(2 * time.Second),
		State: map[string]any{"theme": "dark", "n": 2.0, "nested": map[string]any{"ok": true}},
	}
	ok(t, st.CreateSession(ctx, full, 0), "create session")
	got, err := st.GetSession(ctx, full.ID)
	ok(t, err, "get session")
	equal(t, got.ID, full.ID, "id")
	equal(t, got.PrincipalID, p.ID, "principal")
	sameTime(t, got.CreatedAt, at(0), "created_at")
	sameTimePtr(t, got.ExpiresAt, ptr(at(365*24*time.Hour)), "expires_at")
	sameTime(t, got.RefreshExpiresAt, at(7*24*time.Hour), "refresh_expires_at")
	equal(t, got.RefreshHash, full.RefreshHash, "refresh hash")
	equal(t, got.PrevRefreshHash, full.PrevRefreshHash, "previous refresh hash")
	sameTimePtr(t, got.RotatedAt, ptr(at(time.Second)), "rotated_at")
	equal(t, got.Generation, int64(3), "generation")
	sameTimePtr(t, got.RevokedAt, nil, "revoked_at")
	equal(t, got.RevokedReason, "", "revoked reason")
	sameTime(t, got.LastUsedAt, at(2*time.Second), "last_used_at")
	equal(t, got.State, full.State, "state")

	fresh := newSession(t, st, p.ID, func(s *sessions.Session) {
		s.CreatedAt, s.LastUsedAt, s.State = at(time.Minute), time.Time{}, nil
	})
	got, err = st.GetSession(ctx, fresh.ID)
	ok(t, err, "get session")
	equal(t, got.PrevRefreshHash, []byte(nil), "no previous hash")
	sameTimePtr(t, got.ExpiresAt, nil, "no hard expiry")
	sameTimePtr(t, got.RotatedAt, nil, "never rotated")
	sameTime(t, got.LastUsedAt, at(time.Minute), "a zero last use is the creation time")
	equal(t, got.State, map[string]any{}, "nil state reads back empty")

	list, err := st.ListSessions(ctx, p.ID)
	ok(t, err, "list sessions")
	equal(t, []uuid.UUID{list[0].ID, list[1].ID}, []uuid.UUID{fresh.ID, full.ID}, "sessions, newest first")
	list, err = st.ListSessions(ctx, uuid.New())
	ok(t, err, "list sessions of a missing principal")
	equal(t, len(list), 0, "sessions of a missing principal")

	isErr(t, st.CreateSession(ctx, full, 0), storeerr.ErrConflict, "create session with a taken id")
	orphan := full
	orphan.ID, orphan.PrincipalID = uuid.New(), uuid.New()
	isErr(t, st.CreateSession(ctx, orphan, 0), storeerr.ErrNotFound, "create session for a missing principal")
	_, err = st.GetSession(ctx, uuid.New())
	isErr(t, err, storeerr.ErrNotFound, "get missing session")
}

func testCountActiveSessions(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	other := newPrincipal(t, st, t0)
	newSession(t, st, other.ID) // not p's
	newSession(t, st, p.ID)     // refreshable until t0+1h
	newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshExpiresAt = at(2 * time.Hour) })
	newSession(t, st, p.ID, func(s *sessions.Session) { s.ExpiresAt = ptr(at(30 * time.Minute)) })
	revoked := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshExpiresAt = at(3 * time.Hour) })
	ok(t, st.RevokeSession(ctx, revoked.ID, "logout", at(time.Minute)), "revoke")

	for _, tc := range []struct {
		now  time.Duration
		want int
	}{
		{0, 3},
		{30*time.Minute - time.Microsecond, 3},
		{30 * time.Minute, 2}, // exactly at the hard expiry
		{time.Hour, 1},        // exactly at a refresh expiry
		{2 * time.Hour, 0},
	} {
		n, err := st.CountActiveSessions(ctx, p.ID, at(tc.now))
		ok(t, err, "count active sessions")
		equal(t, n, tc.want, fmt.Sprintf("active sessions at t0+%s", tc.now))
	}
}

func rotation(s sessions.Session, presented, next string, now time.Duration) sessions.Rotation {
	return sessions.Rotation{
		SessionID: s.ID, PresentedHash: hash(presented), NewHash: hash(next),
		Now: at(now), NewRefreshExpiresAt: at(now + time.Hour),
	}
}

func testRotateRefresh(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	s := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("r0") })

	got, _, err := rotate(ctx, st, rotation(s, "r0", "r1", time.Minute))
	ok(t, err, "rotate")
	equal(t, got.Generation, int64(1), "generation")
	equal(t, got.RefreshHash, hash("r1"), "new hash")
	equal(t, got.PrevRefreshHash, hash("r0"), "previous hash")
	sameTimePtr(t, got.RotatedAt, ptr(at(time.Minute)), "rotated_at")
	sameTime(t, got.RefreshExpiresAt, at(time.Minute+time.Hour), "refresh expiry slides")
	sameTime(t, got.LastUsedAt, at(time.Minute), "last used")
	equal(t, got.RotationPending, true, "a rotation is pending until confirmed")
	stored, err := st.GetSession(ctx, s.ID)
	ok(t, err, "get session")
	equal(t, stored.RefreshHash, got.RefreshHash, "the returned session is the stored one")
	equal(t, stored.RotationPending, true, "stored as pending")

	// Presenting the replaced token: the caller gets the current session to
	// judge grace window against replay.
	cur, _, err := rotate(ctx, st, rotation(s, "r0", "r1bis", 2*time.Minute))
	isErr(t, err, sessions.ErrStaleRefresh, "rotate with the previous hash")
	equal(t, cur.PrevRefreshHash, hash("r0"), "stale rotation returns the current session")
	sameTimePtr(t, cur.RotatedAt, ptr(at(time.Minute)), "stale rotation returns the current session")
	_, _, err = rotate(ctx, st, rotation(s, "never-issued", "x", 2*time.Minute))
	isErr(t, err, sessions.ErrStaleRefresh, "rotate with an unknown hash")
	stored, err = st.GetSession(ctx, s.ID)
	ok(t, err, "get session")
	equal(t, stored.Generation, int64(1), "failed rotations change nothing")

	_, _, err = rotate(ctx, st, rotation(s, "r1", "r2", 2*time.Minute))
	ok(t, err, "rotate again")

	for _, tc := range []struct {
		name string
		edit func(*sessions.Session)
		now  time.Duration
	}{
		{"exactly at refresh expiry", nil, time.Hour},
		{"after refresh expiry", nil, 2 * time.Hour},
		{"exactly at hard expiry", func(s *sessions.Session) { s.ExpiresAt = ptr(at(time.Minute)) }, time.Minute},
	} {
		var edits []func(*sessions.Session)
		if tc.edit != nil {
			edits = append(edits, tc.edit)
		}
		s := newSession(t, st, p.ID, append(edits, func(s *sessions.Session) { s.RefreshHash = hash("e0") })...)
		_, _, err := rotate(ctx, st, rotation(s, "e0", "e1", tc.now))
		isErr(t, err, storeerr.ErrNotFound, "rotate "+tc.name)
		_, _, err = rotate(ctx, st, rotation(s, "stale", "e1", tc.now))
		isErr(t, err, storeerr.ErrNotFound, "rotate a stale hash "+tc.name)
	}

	revoked := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("v0") })
	ok(t, st.RevokeSession(ctx, revoked.ID, "logout", at(time.Second)), "revoke")
	_, _, err = rotate(ctx, st, rotation(revoked, "v0", "v1", time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "rotate a revoked session")
	_, _, err = rotate(ctx, st, sessions.Rotation{SessionID: uuid.New(), PresentedHash: hash("a"), NewHash: hash("b"), Now: t0})
	isErr(t, err, storeerr.ErrNotFound, "rotate a missing session")
}

func testConfirmRotations(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	a := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("a0") })
	b := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("b0") })
	c := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("c0") })
	fresh, err := st.GetSession(ctx, a.ID)
	ok(t, err, "get session")
	equal(t, fresh.RotationPending, false, "a session never rotated is not pending")
	for _, r := range []sessions.Rotation{rotation(a, "a0", "a1", time.Minute), rotation(b, "b0", "b1", time.Minute),
		rotation(c, "c0", "c1", time.Minute), rotation(c, "c1", "c2", 2*time.Minute)} {
		_, _, err := rotate(ctx, st, r)
		ok(t, err, "rotate")
	}
	ok(t, st.ConfirmRotations(ctx, nil), "confirm nothing")
	ok(t, st.ConfirmRotations(ctx, []sessions.RotationRef{
		{SessionID: a.ID, Generation: 1},
		{SessionID: c.ID, Generation: 1}, // superseded by generation 2: left pending
		{SessionID: uuid.New(), Generation: 1},
	}), "confirm")
	for _, tc := range []struct {
		name    string
		id      uuid.UUID
		pending bool
	}{{"confirmed", a.ID, false}, {"not named", b.ID, true}, {"named with a superseded generation", c.ID, true}} {
		got, err := st.GetSession(ctx, tc.id)
		ok(t, err, "get session")
		equal(t, got.RotationPending, tc.pending, "pending, "+tc.name)
	}
	ok(t, st.ConfirmRotations(ctx, []sessions.RotationRef{{SessionID: c.ID, Generation: 2}}), "confirm the current generation")
	got, err := st.GetSession(ctx, c.ID)
	ok(t, err, "get session")
	equal(t, got.RotationPending, false, "confirmed at its current generation")

	// The next rotation is pending again; a stale presentation reports it.
	_, _, err = rotate(ctx, st, rotation(a, "a1", "a2", 3*time.Minute))
	ok(t, err, "rotate a confirmed session")
	cur, _, err := rotate(ctx, st, rotation(a, "a1", "x", 4*time.Minute))
	isErr(t, err, sessions.ErrStaleRefresh, "stale rotation")
	equal(t, cur.RotationPending, true, "a stale rotation returns the pending state")

	// Confirming many at once (one statement) works too.
	var refs []sessions.RotationRef
	for range 300 {
		refs = append(refs, sessions.RotationRef{SessionID: uuid.New(), Generation: 3})
	}
	ok(t, st.ConfirmRotations(ctx, append(refs, sessions.RotationRef{SessionID: a.ID, Generation: 2})), "confirm 301")
	got, err = st.GetSession(ctx, a.ID)
	ok(t, err, "get session")
	equal(t, got.RotationPending, false, "confirmed in a large batch")
}

func testRotateRefreshRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	s := newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash("shared") })
	const n = 50
	errs := race(n, func(i int) error {
		_, _, err := rotate(ctx, st, rotation(s, "shared", fmt.Sprintf("next-%d", i), time.Minute))
		return err
	})
	winner := oneWinner(t, errs, sessions.ErrStaleRefresh, "50 rotations of one refresh token")
	got, err := st.GetSession(ctx, s.ID)
	ok(t, err, "get session")
	equal(t, got.Generation, int64(1), "generation after the race")
	equal(t, got.RefreshHash, hash(fmt.Sprintf("next-%d", winner)), "the winner's hash")
	equal(t, got.PrevRefreshHash, hash("shared"), "previous hash")
}

func testRevokeSession(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	s := newSession(t, st, p.ID)
	ok(t, st.RevokeSession(ctx, s.ID, "logout", at(time.Minute)), "revoke")
	ok(t, st.RevokeSession(ctx, s.ID, "admin", at(2*time.Minute)), "revoke again is not an error")
	got, err := st.GetSession(ctx, s.ID)
	ok(t, err, "get revoked session")
	sameTimePtr(t, got.RevokedAt, ptr(at(time.Minute)), "the first revocation stands")
	equal(t, got.RevokedReason, "logout", "reason")
	equal(t, got.Active(at(time.Minute)), false, "revoked session is not active")
	log, err := st.RevocationsSince(ctx, 0, 100)
	ok(t, err, "revocation log")
	equal(t, len(log), 1, "one log entry for two revocations")
	equal(t, log[0].SessionID, s.ID, "logged session")
	sameTime(t, log[0].RevokedAt, at(time.Minute), "logged time")
	isErr(t, st.RevokeSession(ctx, uuid.New(), "x", t0), storeerr.ErrNotFound, "revoke a missing session")
}

func testRevocationLog(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	const n = 5
	var ids []uuid.UUID
	for i := range n {
		s := newSession(t, st, p.ID)
		ok(t, st.RevokeSession(ctx, s.ID, "", at(time.Duration(i)*time.Second)), "revoke")
		ids = append(ids, s.ID)
	}
	all, err := st.RevocationsSince(ctx, 0, 100)
	ok(t, err, "revocation log")
	equal(t, len(all), n, "entries")
	for i, r := range all {
		equal(t, r.SessionID, ids[i], "entries in revocation order")
		if i > 0 && r.Seq <= all[i-1].Seq {
			t.Fatalf("seq %d after %d", r.Seq, all[i-1].Seq)
		}
	}
	// A follower pages through with its cursor.
	var followed []uuid.UUID
	for cursor := int64(0); ; {
		page, err := st.RevocationsSince(ctx, cursor, 2)
		ok(t, err, "revocations since")
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d entries, limit 2", len(page))
		}
		for _, r := range page {
			followed = append(followed, r.SessionID)
		}
		cursor = page[len(page)-1].Seq
	}
	equal(t, followed, ids, "followed entries")
	if _, err := st.RevocationsSince(ctx, 0, 0); err == nil {
		t.Fatal("revocations since with limit 0: no error")
	}

	// Concurrent revocations each log exactly once.
	var more []uuid.UUID
	for range 10 {
		more = append(more, newSession(t, st, p.ID).ID)
	}
	errs := race(2*len(more), func(i int) error {
		return st.RevokeSession(ctx, more[i%len(more)], "race", at(time.Hour))
	})
	for i, err := range errs {
		ok(t, err, fmt.Sprintf("concurrent revoke %d", i))
	}
	tail, err := st.RevocationsSince(ctx, all[n-1].Seq, 100)
	ok(t, err, "revocations since")
	equal(t, len(tail), len(more), "one entry per session revoked concurrently")
}

// testSessionLimitRace: concurrent session creations for one principal stop
// exactly at the limit; revoked and expired sessions do not count.
func testSessionLimitRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	const n, limit = 30, 5
	revoked := newSession(t, st, p.ID)
	ok(t, st.RevokeSession(ctx, revoked.ID, "logout", t0), "revoke")
	newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshExpiresAt = t0 }) // expired at t0
	errs := race(n, func(int) error {
		return st.CreateSession(ctx, sessions.Session{
			ID: uuid.New(), PrincipalID: p.ID, CreatedAt: t0, RefreshExpiresAt: at(time.Hour), RefreshHash: hash(uuid.NewString()),
		}, limit)
	})
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, storeerr.ErrLimit):
			t.Fatalf("create session: %v, want nil or ErrLimit", err)
		}
	}
	equal(t, created, limit, fmt.Sprintf("sessions created by %d concurrent calls under limit %d", n, limit))
	active, err := st.CountActiveSessions(ctx, p.ID, t0)
	ok(t, err, "count sessions")
	equal(t, active, limit, "active sessions")
	isErr(t, st.CreateSession(ctx, sessions.Session{ID: uuid.New(), PrincipalID: uuid.New(), CreatedAt: t0,
		RefreshExpiresAt: at(time.Hour), RefreshHash: hash("x")}, limit), storeerr.ErrNotFound, "limited create for a missing principal")
}

// testRotateRefreshTogether: rotations of many sessions at once (which a
// backend may run as one statement) each get their own answer: the
// session they rotated, its principal or the log's position as each asked,
// and ErrStaleRefresh or ErrNotFound for those that cannot rotate.
func testRotateRefreshTogether(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	const n = 48
	ps := make([]identity.Principal, n)
	ss := make([]sessions.Session, n)
	for i := range n {
		roles := []string{identity.RoleUser}
		if i%3 == 0 {
			roles = append(roles, identity.RoleAdmin)
		}
		ps[i] = newPrincipal(t, st, t0, roles...)
		ss[i] = newSession(t, st, ps[i].ID, func(s *sessions.Session) { s.RefreshHash = hash(fmt.Sprintf("t%d", i)) })
	}
	ok(t, st.RevokeSession(ctx, ss[5].ID, "logout", t0), "revoke one")
	newest, err := st.RevocationLogStart(ctx, t0.Add(100*365*24*time.Hour))
	ok(t, err, "log start")

	results := make([]sessions.Rotated, n)
	errs := race(n, func(i int) error {
		presented := fmt.Sprintf("t%d", i)
		if i == 7 {
			presented = "not-the-current-one"
		}
		r := rotation(ss[i], presented, fmt.Sprintf("t%d-next", i), time.Minute)
		switch i % 4 {
		case 1:
			r.SkipPrincipal, r.LogCursor = true, newest
		case 2:
			r.SkipPrincipal, r.LogCursor = true, newest-1
		}
		var err error
		results[i], err = st.RotateRefresh(ctx, r)
		return err
	})
	for i := range n {
		what := fmt.Sprintf("rotation %d", i)
		switch i {
		case 5:
			isErr(t, errs[i], storeerr.ErrNotFound, what+" of a revoked session")
			continue
		case 7:
			isErr(t, errs[i], sessions.ErrStaleRefresh, what+" with a stale hash")
			equal(t, results[i].Session.ID, ss[i].ID, what+": the session as it is")
			equal(t, results[i].Session.Generation, int64(0), what+": generation")
			continue
		}
		ok(t, errs[i], what)
		got := results[i]
		equal(t, got.Session.ID, ss[i].ID, what+": session")
		equal(t, got.Session.PrincipalID, ps[i].ID, what+": principal id")
		equal(t, got.Session.Generation, int64(1), what+": generation")
		equal(t, got.Session.RefreshHash, hash(fmt.Sprintf("t%d-next", i)), what+": new hash")
		switch i % 4 {
		case 1, 2:
			equal(t, got.LogAhead, i%4 == 2, what+": log ahead")
			equal(t, got.Principal.ID, uuid.Nil, what+": principal read although skipped")
		default:
			equal(t, got.LogAhead, false, what+": log ahead when the principal was read")
			equal(t, got.Principal.ID, ps[i].ID, what+": principal")
			equal(t, roleNamesOf(got.Principal.Roles), roleNamesOf(ps[i].Roles), what+": roles")
		}
	}
}

// testRotateAndConfirmTogether: chains of rotations of many sessions,
// each rotation confirmed in batches as it is answered (as a replica's
// refreshes and its ConfirmBatcher do), all running at once, all succeed:
// no statement waits on another in a cycle, and each chain ends where it
// should, confirmed.
func testRotateAndConfirmTogether(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	const (
		chains = 16
		steps  = 200
	)
	ss := make([]sessions.Session, chains)
	for i := range chains {
		p := newPrincipal(t, st, t0)
		ss[i] = newSession(t, st, p.ID, func(s *sessions.Session) { s.RefreshHash = hash(fmt.Sprintf("c%d-0", i)) })
	}
	answered := make(chan sessions.RotationRef, chains*steps)
	confirmErr := make(chan error, 1)
	go func() {
		var err error
		defer func() { confirmErr <- err }()
		for ref := range answered {
			refs := []sessions.RotationRef{ref}
			for more := true; more; {
				select {
				case r, ok := <-answered:
					if more = ok; ok {
						refs = append(refs, r)
					}
				default:
					more = false
				}
			}
			// Newest first: the reverse of the order rotations lock in.
			slices.Reverse(refs)
			if err = st.ConfirmRotations(ctx, refs); err != nil {
				return
			}
		}
	}()
	errs := race(chains, func(i int) error {
		for g := range steps {
			r := rotation(ss[i], fmt.Sprintf("c%d-%d", i, g), fmt.Sprintf("c%d-%d", i, g+1), time.Duration(g+1)*time.Second)
			got, err := st.RotateRefresh(ctx, r)
			if err != nil {
				return fmt.Errorf("step %d: %w", g, err)
			}
			answered <- sessions.RotationRef{SessionID: got.Session.ID, Generation: got.Session.Generation}
		}
		return nil
	})
	close(answered)
	for i, err := range errs {
		ok(t, err, fmt.Sprintf("chain %d", i))
	}
	ok(t, <-confirmErr, "confirmations")
	for i := range chains {
		got, err := st.GetSession(ctx, ss[i].ID)
		ok(t, err, "get session")
		equal(t, got.Generation, int64(steps), "generation at the end of a chain")
		equal(t, got.RotationPending, false, "the last rotation confirmed")
	}
}
