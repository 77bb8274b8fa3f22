package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/store/sqlstore"
	"github.com/tiledgo/server/internal/storeerr"
)

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// lockSession holds session id's row in a transaction of another
// connection, as another replica's statement would, until the transaction
// ends (rolled back when the test ends).
func lockSession(t *testing.T, uri string, id uuid.UUID) pgx.Tx {
	t.Helper()
	blocker, err := pgx.Connect(ctx(t), uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = blocker.Close(context.Background()) })
	tx, err := blocker.Begin(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx(t), `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestBusyDatabaseIsUnavailable: a statement stuck behind another
// transaction's lock gives up at the statement timeout with ErrUnavailable
// rather than holding the request.
func TestBusyDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	uri := pgtest.NewDatabase(t)
	opts := store.DefaultOptions()
	opts.URI, opts.Migrate, opts.StatementTimeout = uri, true, 300*time.Millisecond
	st, err := store.Open(ctx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	s := sessions.Session{ID: uuid.New(), PrincipalID: newPrincipal(t, st), CreatedAt: now,
		RefreshExpiresAt: now.Add(time.Hour), RefreshHash: sha("r0")}
	if err := st.CreateSession(ctx(t), s, 0); err != nil {
		t.Fatal(err)
	}

	tx := lockSession(t, uri, s.ID)
	_, err = st.RotateRefresh(ctx(t), sessions.Rotation{SessionID: s.ID, PresentedHash: sha("r0"), NewHash: sha("r1"),
		Now: now, NewRefreshExpiresAt: now.Add(time.Hour)})
	if !errors.Is(err, storeerr.ErrUnavailable) {
		t.Fatalf("rotate a locked session: %v, want ErrUnavailable", err)
	}
	if err := tx.Rollback(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// ErrUnavailable on a write means "outcome unknown": the cancel request
	// races the lock's release, so the rotation may or may not have landed.
	got, err := st.GetSession(ctx(t), s.ID)
	if err != nil {
		t.Fatalf("get session once the lock is gone: %v", err)
	}
	if got.Generation > 1 {
		t.Fatalf("generation %d after one rotation attempt", got.Generation)
	}
}

// TestLockedRotationWaitsAlone: rotations share statements, but a session
// whose row another transaction holds does not hold the others up: they
// rotate meanwhile, and it rotates once the lock is released.
func TestLockedRotationWaitsAlone(t *testing.T) {
	t.Parallel()
	uri := pgtest.NewDatabase(t)
	opts := store.DefaultOptions()
	opts.URI, opts.Migrate, opts.StatementTimeout = uri, true, 10*time.Second
	st, err := store.Open(ctx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	newSession := func() sessions.Session {
		s := sessions.Session{ID: uuid.New(), PrincipalID: newPrincipal(t, st), CreatedAt: now,
			RefreshExpiresAt: now.Add(time.Hour), RefreshHash: sha("r0")}
		if err := st.CreateSession(ctx(t), s, 0); err != nil {
			t.Fatal(err)
		}
		return s
	}
	rotate := func(s sessions.Session) error {
		_, err := st.RotateRefresh(ctx(t), sessions.Rotation{SessionID: s.ID, PresentedHash: sha("r0"), NewHash: sha("r1"),
			Now: now, NewRefreshExpiresAt: now.Add(time.Hour)})
		return err
	}
	locked := newSession()
	tx := lockSession(t, uri, locked.ID)
	waiting := make(chan error, 1)
	go func() { waiting <- rotate(locked) }()
	// Others rotate, alone and together, while it waits.
	errs := make(chan error, 20)
	for range 20 {
		s := newSession()
		go func() { errs <- rotate(s) }()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatalf("a rotation beside a locked session: %v", err)
		}
	}
	select {
	case err := <-waiting:
		t.Fatalf("the locked session's rotation answered while the lock was held: %v", err)
	default:
	}
	if err := tx.Commit(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("the locked session's rotation once released: %v", err)
	}
	got, err := st.GetSession(ctx(t), locked.ID)
	if err != nil || got.Generation != 1 || !bytes.Equal(got.RefreshHash, sha("r1")) {
		t.Fatalf("the locked session after its rotation: %+v, %v", got, err)
	}
}

// TestGCOneReplicaAtATime: while another replica holds the GC lock, GC
// deletes nothing and says so with an empty result; then it collects.
func TestGCOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	uri := pgtest.NewDatabase(t)
	st := open(t, uri)
	defer st.Close()
	now := time.Now()
	if err := st.PutAuthState(ctx(t), sessions.AuthState{StateHash: sha("s"), Provider: "toy",
		CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx(t), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx(t))
	if _, err := other.Exec(ctx(t), `SELECT pg_advisory_lock($1)`, sqlstore.GCLockKey); err != nil {
		t.Fatal(err)
	}
	res, err := st.GC(ctx(t), now, sessions.GCPolicy{Retain: time.Hour, Batch: 100})
	if err != nil || res != (sessions.GCResult{}) {
		t.Fatalf("gc while another replica collects: %+v, %v; want nothing done", res, err)
	}
	if _, err := other.Exec(ctx(t), `SELECT pg_advisory_unlock($1)`, sqlstore.GCLockKey); err != nil {
		t.Fatal(err)
	}
	res, err = st.GC(ctx(t), now, sessions.GCPolicy{Retain: time.Hour, Batch: 100})
	if err != nil || res.AuthStates != 1 {
		t.Fatalf("gc: %+v, %v; want the expired auth state", res, err)
	}
}
