package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/storeerr"
)

// newPending stores a pending login with user code code, created at t0 and
// expiring at t0+15m.
func newPending(t *testing.T, st store.Store, provider, code string) sessions.PendingDevice {
	t.Helper()
	p := sessions.PendingDevice{
		ID: uuid.New(), Provider: provider, DeviceCodeHash: hash("device-" + uuid.NewString()),
		UserCode: code, CreatedAt: at(0), ExpiresAt: at(15 * time.Minute),
	}
	ok(t, st.CreatePendingDevice(ctxFor(t), p), "create pending device login")
	return p
}

func testPendingDevices(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	s := newSession(t, st, p.ID)
	d := newPending(t, st, "toy", "ABCD-EFGH")

	got, err := st.TakePendingDevice(ctx, "toy", d.DeviceCodeHash, at(time.Minute))
	ok(t, err, "take unapproved")
	equal(t, got.SessionID, (*uuid.UUID)(nil), "not approved yet")
	equal(t, got.ID, d.ID, "id")
	equal(t, got.UserCode, d.UserCode, "user code")
	equal(t, got.DeviceCodeHash, d.DeviceCodeHash, "device code hash")
	sameTime(t, got.CreatedAt, at(0), "created_at")
	sameTime(t, got.ExpiresAt, at(15*time.Minute), "expires_at")
	_, err = st.TakePendingDevice(ctx, "toy", d.DeviceCodeHash, at(2*time.Minute))
	ok(t, err, "an unapproved login can be polled again")
	_, err = st.TakePendingDevice(ctx, "other", d.DeviceCodeHash, at(time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "take with another provider")

	for _, tc := range []struct {
		name, provider, code string
		session              uuid.UUID
		now                  time.Duration
	}{
		{"wrong user code", "toy", "ZZZZ-ZZZZ", s.ID, time.Minute},
		{"wrong provider", "other", "ABCD-EFGH", s.ID, time.Minute},
		{"missing session", "toy", "ABCD-EFGH", uuid.New(), time.Minute},
		{"exactly at expiry", "toy", "ABCD-EFGH", s.ID, 15 * time.Minute},
	} {
		isErr(t, st.ApprovePendingDevice(ctx, tc.provider, tc.code, tc.session, at(tc.now)), storeerr.ErrNotFound, "approve: "+tc.name)
	}
	found, err := st.FindPendingDevice(ctx, "toy", "ABCD-EFGH", at(time.Minute))
	ok(t, err, "find by user code")
	equal(t, found.ID, d.ID, "found id")
	for _, tc := range []struct {
		name, provider, code string
		now                  time.Duration
	}{
		{"wrong user code", "toy", "ZZZZ-ZZZZ", time.Minute},
		{"wrong provider", "other", "ABCD-EFGH", time.Minute},
		{"exactly at expiry", "toy", "ABCD-EFGH", 15 * time.Minute},
	} {
		_, err := st.FindPendingDevice(ctx, tc.provider, tc.code, at(tc.now))
		isErr(t, err, storeerr.ErrNotFound, "find: "+tc.name)
	}
	ok(t, st.ApprovePendingDevice(ctx, "toy", "ABCD-EFGH", s.ID, at(time.Minute)), "approve")
	isErr(t, st.ApprovePendingDevice(ctx, "toy", "ABCD-EFGH", s.ID, at(time.Minute)), storeerr.ErrNotFound, "approve twice")
	_, err = st.FindPendingDevice(ctx, "toy", "ABCD-EFGH", at(time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "an approved login is no longer found by user code")

	got, err = st.TakePendingDevice(ctx, "toy", d.DeviceCodeHash, at(2*time.Minute))
	ok(t, err, "take approved")
	equal(t, got.SessionID, &s.ID, "approved with the session")
	_, err = st.TakePendingDevice(ctx, "toy", d.DeviceCodeHash, at(2*time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "an approved login is taken once")

	expiring := newPending(t, st, "toy", "EXPI-RING")
	_, err = st.TakePendingDevice(ctx, "toy", expiring.DeviceCodeHash, at(15*time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "take exactly at expiry")
	_, err = st.TakePendingDevice(ctx, "toy", hash("unknown"), at(0))
	isErr(t, err, storeerr.ErrNotFound, "take unknown device code")
}

func testPendingDeviceUserCodes(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	d := newPending(t, st, "toy", "SAME-CODE")
	clash := func(provider, code string, created time.Duration) sessions.PendingDevice {
		return sessions.PendingDevice{
			ID: uuid.New(), Provider: provider, DeviceCodeHash: hash(uuid.NewString()), UserCode: code,
			CreatedAt: at(created), ExpiresAt: at(created + 15*time.Minute),
		}
	}
	isErr(t, st.CreatePendingDevice(ctx, clash("toy", "SAME-CODE", time.Minute)), storeerr.ErrConflict, "user code in use")
	isErr(t, st.CreatePendingDevice(ctx, clash("toy", "SAME-CODE", 15*time.Minute-time.Microsecond)), storeerr.ErrConflict,
		"user code in use until its login expires")
	sameHash := clash("toy", "FREE-CODE", time.Minute)
	sameHash.DeviceCodeHash = d.DeviceCodeHash
	isErr(t, st.CreatePendingDevice(ctx, sameHash), storeerr.ErrConflict, "device code hash in use")
	ok(t, st.CreatePendingDevice(ctx, clash("other", "SAME-CODE", time.Minute)), "same user code, another provider")

	reuse := clash("toy", "SAME-CODE", 15*time.Minute)
	ok(t, st.CreatePendingDevice(ctx, reuse), "user code free once the old login expired")
	_, err := st.TakePendingDevice(ctx, "toy", d.DeviceCodeHash, at(time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "the expired login that held the code is gone")
	got, err := st.TakePendingDevice(ctx, "toy", reuse.DeviceCodeHash, at(16*time.Minute))
	ok(t, err, "take the new login")
	equal(t, got.ID, reuse.ID, "the new login holds the code")
}

func testTakePendingDeviceRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	s := newSession(t, st, p.ID)
	d := newPending(t, st, "toy", "RACE-CODE")
	ok(t, st.ApprovePendingDevice(ctx, "toy", "RACE-CODE", s.ID, at(time.Minute)), "approve")
	errs := race(20, func(int) error {
		_, err := st.TakePendingDevice(ctx, "toy", d.DeviceCodeHash, at(2*time.Minute))
		return err
	})
	oneWinner(t, errs, storeerr.ErrNotFound, "20 polls of one approved device code")
}

func newAuthState(provider string, ttl time.Duration) sessions.AuthState {
	return sessions.AuthState{
		StateHash: hash("state-" + uuid.NewString()), Provider: provider, CodeVerifier: "verifier-" + uuid.NewString(),
		Nonce: "nonce", Extra: map[string]any{"next": "/ui", "user_code": "ABCD-EFGH"},
		CreatedAt: at(0), ExpiresAt: at(ttl),
	}
}

func testAuthStates(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	s := newAuthState("orcid", 10*time.Minute)
	ok(t, st.PutAuthState(ctx, s), "put")
	isErr(t, st.PutAuthState(ctx, s), storeerr.ErrConflict, "put the same hash again")
	got, err := st.TakeAuthState(ctx, s.StateHash, at(time.Minute))
	ok(t, err, "take")
	equal(t, got.StateHash, s.StateHash, "hash")
	equal(t, got.Provider, s.Provider, "provider")
	equal(t, got.CodeVerifier, s.CodeVerifier, "verifier")
	equal(t, got.Nonce, s.Nonce, "nonce")
	equal(t, got.Extra, s.Extra, "extra")
	sameTime(t, got.CreatedAt, at(0), "created_at")
	sameTime(t, got.ExpiresAt, at(10*time.Minute), "expires_at")
	_, err = st.TakeAuthState(ctx, s.StateHash, at(time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "take twice")

	bare := newAuthState("toy", time.Minute)
	bare.Extra, bare.CodeVerifier, bare.Nonce = nil, "", ""
	ok(t, st.PutAuthState(ctx, bare), "put without extra")
	got, err = st.TakeAuthState(ctx, bare.StateHash, at(time.Minute-time.Microsecond))
	ok(t, err, "take just before expiry")
	equal(t, got.Extra, map[string]any{}, "nil extra reads back empty")

	expired := newAuthState("toy", time.Minute)
	ok(t, st.PutAuthState(ctx, expired), "put")
	_, err = st.TakeAuthState(ctx, expired.StateHash, at(time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "take exactly at expiry")
}

func testTakeAuthStateRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	s := newAuthState("toy", time.Minute)
	ok(t, st.PutAuthState(ctx, s), "put")
	errs := race(20, func(int) error {
		_, err := st.TakeAuthState(ctx, s.StateHash, at(time.Second))
		return err
	})
	oneWinner(t, errs, storeerr.ErrNotFound, "20 takes of one auth state")
}

// taker takes a login attempt for key at t0+now in windows of window with
// at most max attempts, failing the test on an error.
func taker(t *testing.T, st store.Store, window time.Duration, max int) func(key string, now time.Duration) sessions.LoginAttempt {
	ctx := ctxFor(t)
	return func(key string, now time.Duration) sessions.LoginAttempt {
		t.Helper()
		a, err := st.TakeLoginAttempt(ctx, key, at(now), window, max)
		ok(t, err, "take login attempt")
		return a
	}
}

func testLoginAttempts(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	const window, max = 10 * time.Minute, 3
	take := taker(t, st, window, max)
	for i, now := range []time.Duration{0, time.Minute, 9 * time.Minute} {
		a := take("alice@toy", now)
		equal(t, [2]any{a.Allowed, a.Count}, [2]any{true, i + 1}, fmt.Sprintf("attempt %d", i+1))
		sameTime(t, a.WindowEnd, at(window), "the window is anchored at its first attempt")
	}
	a := take("alice@toy", window-time.Microsecond)
	equal(t, [2]any{a.Allowed, a.Count}, [2]any{false, max}, "the attempt after max, inside the window")
	sameTime(t, a.WindowEnd, at(window), "a refusal says when the window ends")
	a = take("alice@toy", window-time.Microsecond)
	equal(t, a.Count, max, "a refused attempt is not counted")
	equal(t, take("bob@toy", time.Minute).Count, 1, "keys count apart")

	a = take("alice@toy", window)
	equal(t, [2]any{a.Allowed, a.Count}, [2]any{true, 1}, "exactly at the window's end a new window starts")
	sameTime(t, a.WindowEnd, at(2*window), "the new window is anchored at its first attempt")
	ok(t, st.ResetLoginAttempts(ctx, "alice@toy"), "reset")
	equal(t, take("alice@toy", window+time.Minute).Count, 1, "counting starts over after a reset")
	ok(t, st.ResetLoginAttempts(ctx, "nobody"), "reset an unknown key")
	equal(t, take("bob@toy", 2*time.Minute).Count, 2, "other keys survive a reset")

	_, err := st.TakeLoginAttempt(ctx, "x", t0, 0, max)
	if err == nil {
		t.Fatal("take login attempt with a zero window: no error")
	}
}

// testLoginAttemptsRace: of many concurrent attempts for one key exactly
// max are allowed; a count-then-write would let more through.
func testLoginAttemptsRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	const n, max = 40, 10
	allowed := make([]bool, n)
	errs := race(n, func(i int) error {
		a, err := st.TakeLoginAttempt(ctx, "raced@toy", t0, time.Minute, max)
		allowed[i] = a.Allowed
		return err
	})
	got := 0
	for i, err := range errs {
		ok(t, err, "take login attempt")
		if allowed[i] {
			got++
		}
	}
	equal(t, got, max, fmt.Sprintf("attempts allowed of %d concurrent", n))
}

// testRefundLoginAttempts: a refund uncounts one attempt of the window the
// take answered, and only of that window; at zero the key is gone.
func testRefundLoginAttempts(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	const window, max = 10 * time.Minute, 3
	take := taker(t, st, window, max)
	a := take("office", 0)
	take("office", time.Second)
	ok(t, st.RefundLoginAttempt(ctx, "office", a.WindowEnd), "refund")
	equal(t, take("office", 2*time.Second).Count, 2, "a refund uncounts one attempt")
	ok(t, st.RefundLoginAttempt(ctx, "office", a.WindowEnd.Add(time.Microsecond)), "refund another window")
	equal(t, take("office", 3*time.Second).Count, 3, "a refund for another window changes nothing")
	// At the limit, a refund makes room for exactly one more.
	equal(t, take("office", 4*time.Second).Allowed, false, "the attempt past the limit")
	ok(t, st.RefundLoginAttempt(ctx, "office", a.WindowEnd), "refund at the limit")
	b := take("office", 5*time.Second)
	equal(t, [2]any{b.Allowed, b.Count}, [2]any{true, max}, "the attempt after a refund at the limit")
	for range max {
		ok(t, st.RefundLoginAttempt(ctx, "office", a.WindowEnd), "refund down to zero")
	}
	ok(t, st.RefundLoginAttempt(ctx, "office", a.WindowEnd), "refund below zero")
	c := take("office", 6*time.Second)
	equal(t, c.Count, 1, "counting starts over once every attempt is refunded")
	sameTime(t, c.WindowEnd, at(6*time.Second+window), "a new window is anchored at its first attempt")
	ok(t, st.RefundLoginAttempt(ctx, "nobody", a.WindowEnd), "refund an unknown key")
	// A refund after the window ended refunds nothing in the next one.
	d := take("late", 0)
	take("late", window) // a new window
	ok(t, st.RefundLoginAttempt(ctx, "late", d.WindowEnd), "refund of the closed window")
	equal(t, take("late", window+time.Second).Count, 2, "the new window keeps its count")
}

// testRefundLoginAttemptsRace: concurrent take-then-refund pairs (logins
// that succeed) leave nothing counted: no refund is lost to a take.
func testRefundLoginAttemptsRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	const n = 30
	errs := race(n, func(int) error {
		a, err := st.TakeLoginAttempt(ctx, "nat", t0, time.Minute, 1000)
		if err != nil {
			return err
		}
		return st.RefundLoginAttempt(ctx, "nat", a.WindowEnd)
	})
	for _, err := range errs {
		ok(t, err, "take and refund")
	}
	a, err := st.TakeLoginAttempt(ctx, "nat", t0, time.Minute, 1000)
	ok(t, err, "take after the race")
	equal(t, a.Count, 1, fmt.Sprintf("count after %d concurrent take-and-refund pairs, plus one", n))
}
