// Package storetest is the conformance suite every session-database backend
// passes: the semantics identity.Store and sessions.Store document, checked
// the same way against PostgreSQL and SQLite, including the races that only
// a database can settle (N goroutines rotating one refresh token, taking one
// auth state, logging in one new user).
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... a fresh, migrated store ... })
//	}
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
)

// NewStore returns a fresh, empty, migrated store for one test; it is
// closed by the suite (through t.Cleanup registered by the suite).
type NewStore func(t *testing.T) store.Store

// Run runs the whole suite. Each subtest gets its own store and runs in
// parallel with the others.
func Run(t *testing.T, newStore NewStore) {
	groups := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Principals", testPrincipals},
		{"ListPrincipals", testListPrincipals},
		{"Identities", testIdentities},
		{"LoginIdentity", testLoginIdentity},
		{"LoginIdentityRace", testLoginIdentityRace},
		{"LoginIdentityAs", testLoginIdentityAs},
		{"Roles", testRoles},
		{"TouchPrincipal", testTouchPrincipal},
		{"APIKeys", testAPIKeys},
		{"APIKeyConflicts", testAPIKeyConflicts},
		{"TouchAPIKey", testTouchAPIKey},
		{"Sessions", testSessions},
		{"CountActiveSessions", testCountActiveSessions},
		{"RotateRefresh", testRotateRefresh},
		{"RotateRefreshRace", testRotateRefreshRace},
		{"RotateRefreshTogether", testRotateRefreshTogether},
		{"RotateAndConfirmTogether", testRotateAndConfirmTogether},
		{"ConfirmRotations", testConfirmRotations},
		{"RevokeSession", testRevokeSession},
		{"RevocationLog", testRevocationLog},
		{"RotateRefreshPrincipal", testRotateRefreshPrincipal},
		{"RotateRefreshLogCursor", testRotateRefreshLogCursor},
		{"AuthLog", testAuthLog},
		{"RevocationLogStart", testRevocationLogStart},
		{"TouchAPIKeys", testTouchAPIKeys},
		{"Follow", testFollow},
		{"PendingDevices", testPendingDevices},
		{"PendingDeviceUserCodes", testPendingDeviceUserCodes},
		{"TakePendingDeviceRace", testTakePendingDeviceRace},
		{"AuthStates", testAuthStates},
		{"TakeAuthStateRace", testTakeAuthStateRace},
		{"LoginAttempts", testLoginAttempts},
		{"LoginAttemptsRace", testLoginAttemptsRace},
		{"RefundLoginAttempts", testRefundLoginAttempts},
		{"RefundLoginAttemptsRace", testRefundLoginAttemptsRace},
		{"SessionLimitRace", testSessionLimitRace},
		{"APIKeyLimitRace", testAPIKeyLimitRace},
		{"CascadeOnPrincipalDelete", testCascade},
		{"AuditEvents", testAuditEvents},
		{"GC", testGC},
		{"Ping", testPing},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			st := newStore(t)
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("close store: %v", err)
				}
			})
			g.fn(t, st)
		})
	}
}

// t0 has nanoseconds on purpose: stores keep microseconds.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// at returns t0 plus d, as the store will return it: UTC, whole microseconds.
func at(d time.Duration) time.Time { return t0.Add(d).Truncate(time.Microsecond) }

func ptr[T any](v T) *T { return &v }

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// isErr fails unless err wraps want.
func isErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func equal[T any](t *testing.T, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// sameTime compares times as instants and checks the store returned UTC.
func sameTime(t *testing.T, got, want time.Time, what string) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Fatalf("%s: location %v, want UTC", what, got.Location())
	}
	if !got.Equal(want) {
		t.Fatalf("%s: got %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

func sameTimePtr(t *testing.T, got, want *time.Time, what string) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Fatalf("%s: got %v, want %v", what, got, want)
	default:
		sameTime(t, *got, *want, what)
	}
}

func newPrincipal(t *testing.T, st store.Store, created time.Time, roles ...string) identity.Principal {
	t.Helper()
	p := identity.Principal{ID: uuid.New(), Type: identity.TypeUser, CreatedAt: created}
	for _, r := range roles {
		p.Roles = append(p.Roles, identity.Role{Name: r})
	}
	out, err := st.CreatePrincipal(ctxFor(t), p)
	ok(t, err, "create principal")
	return out
}

// newSession stores a session of pid created at t0, refreshable for an hour.
func newSession(t *testing.T, st store.Store, pid uuid.UUID, edit ...func(*sessions.Session)) sessions.Session {
	t.Helper()
	s := sessions.Session{
		ID:               uuid.New(),
		PrincipalID:      pid,
		CreatedAt:        at(0),
		RefreshExpiresAt: at(time.Hour),
		RefreshHash:      hash("refresh-" + uuid.NewString()),
		LastUsedAt:       at(0),
		State:            map[string]any{},
	}
	for _, e := range edit {
		e(&s)
	}
	ok(t, st.CreateSession(ctxFor(t), s, 0), "create session")
	return s
}

// race runs fn(i) for i in [0, n) in n goroutines released together, and
// returns their errors by index.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one of errs is nil and every other wraps
// loser, and returns the winner's index.
func oneWinner(t *testing.T, errs []error, loser error, what string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: goroutines %d and %d both won", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Fatalf("%s: goroutine %d: got %v, want %v", what, i, err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: nobody won", what)
	}
	return winner
}

func testPing(t *testing.T, st store.Store) {
	ok(t, st.Ping(ctxFor(t)), "ping")
	n, err := st.Migrator().Pending(ctxFor(t))
	ok(t, err, "pending migrations")
	equal(t, n, 0, "pending migrations of a fresh store")
	if b := st.Backend(); b != store.BackendPostgres && b != store.BackendSQLite && b != store.BackendMemory {
		t.Fatalf("backend %q", b)
	}
}
