package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/storeerr"
)

func newKey(pid uuid.UUID, firstEight string, created time.Duration, expires *time.Time) identity.APIKey {
	return identity.APIKey{
		ID: uuid.New(), PrincipalID: pid, FirstEight: firstEight, SecretHash: hash(uuid.NewString()),
		Scopes: []identity.Scope{identity.ScopeReadMetadata}, ExpiresAt: expires, CreatedAt: at(created),
	}
}

func keyIDs(keys []identity.APIKey) []uuid.UUID {
	var ids []uuid.UUID
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

func testAPIKeys(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	full := identity.APIKey{
		ID: uuid.New(), PrincipalID: p.ID, FirstEight: "0123abcd", SecretHash: hash("secret"),
		Scopes:     []identity.Scope{identity.ScopeInherit, identity.ScopeReadData},
		AccessTags: []string{"beamline-a", "public"}, Note: "for the pipeline",
		ExpiresAt: ptr(t0.Add(24 * time.Hour)), CreatedAt: t0, LatestActivity: ptr(t0.Add(time.Second)),
	}
	ok(t, st.CreateAPIKey(ctx, full, 0), "create key")
	untagged := newKey(p.ID, "4567ef01", time.Minute, nil)
	untagged.Scopes = nil
	ok(t, st.CreateAPIKey(ctx, untagged, 0), "create key without expiry, tags or scopes")
	emptyTags := newKey(p.ID, "89abcdef", 2*time.Minute, nil)
	emptyTags.AccessTags = []string{}
	ok(t, st.CreateAPIKey(ctx, emptyTags, 0), "create key with empty tags")

	keys, err := st.ListAPIKeys(ctx, p.ID)
	ok(t, err, "list keys")
	equal(t, keyIDs(keys), []uuid.UUID{full.ID, untagged.ID, emptyTags.ID}, "keys, oldest first")
	got := keys[0]
	equal(t, got.FirstEight, full.FirstEight, "first eight")
	equal(t, got.SecretHash, full.SecretHash, "secret hash")
	equal(t, got.Scopes, full.Scopes, "scopes")
	equal(t, got.AccessTags, full.AccessTags, "access tags")
	equal(t, got.Note, full.Note, "note")
	sameTimePtr(t, got.ExpiresAt, ptr(at(24*time.Hour)), "expires_at")
	sameTime(t, got.CreatedAt, at(0), "created_at")
	sameTimePtr(t, got.LatestActivity, ptr(at(time.Second)), "latest activity")
	equal(t, keys[1].AccessTags, []string(nil), "nil tags stay nil (no restriction)")
	equal(t, keys[1].Scopes, []identity.Scope{}, "nil scopes read back empty")
	equal(t, keys[2].AccessTags, []string{}, "empty tags stay empty (no tags)")

	for _, tc := range []struct {
		name  string
		now   time.Duration
		found bool // the expiring key, by its prefix
		want  int  // unexpired keys
	}{
		{"before expiry", 24*time.Hour - time.Microsecond, true, 3},
		{"exactly at expiry", 24 * time.Hour, false, 2},
		{"after expiry", 48 * time.Hour, false, 2},
	} {
		byPrefix, err := st.APIKeysByFirstEight(ctx, full.FirstEight, at(tc.now))
		ok(t, err, "keys by first eight")
		equal(t, len(byPrefix) == 1, tc.found, "key found by prefix "+tc.name)
		n, err := st.CountAPIKeys(ctx, p.ID, at(tc.now))
		ok(t, err, "count keys")
		equal(t, n, tc.want, "unexpired keys "+tc.name)
	}
	none, err := st.APIKeysByFirstEight(ctx, "ffffffff", t0)
	ok(t, err, "keys by unknown prefix")
	equal(t, len(none), 0, "keys by unknown prefix")

	ok(t, st.DeleteAPIKey(ctx, p.ID, untagged.FirstEight), "delete key")
	isErr(t, st.DeleteAPIKey(ctx, p.ID, untagged.FirstEight), storeerr.ErrNotFound, "delete deleted key")
	isErr(t, st.DeleteAPIKey(ctx, uuid.New(), full.FirstEight), storeerr.ErrNotFound, "delete another principal's key")
	keys, err = st.ListAPIKeys(ctx, p.ID)
	ok(t, err, "list keys")
	equal(t, keyIDs(keys), []uuid.UUID{full.ID, emptyTags.ID}, "keys after delete")
	keys, err = st.ListAPIKeys(ctx, uuid.New())
	ok(t, err, "list keys of a missing principal")
	equal(t, len(keys), 0, "keys of a missing principal")
}

func testAPIKeyConflicts(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	alice := newPrincipal(t, st, t0)
	bob := newPrincipal(t, st, t0)
	k := newKey(alice.ID, "deadbeef", 0, nil)
	ok(t, st.CreateAPIKey(ctx, k, 0), "create key")

	samePrefix := newKey(alice.ID, "deadbeef", 0, nil)
	isErr(t, st.CreateAPIKey(ctx, samePrefix, 0), storeerr.ErrConflict, "same principal, same first eight")
	sameHash := newKey(bob.ID, "cafef00d", 0, nil)
	sameHash.SecretHash = k.SecretHash
	isErr(t, st.CreateAPIKey(ctx, sameHash, 0), storeerr.ErrConflict, "same secret hash")
	sameID := newKey(bob.ID, "cafef00d", 0, nil)
	sameID.ID = k.ID
	isErr(t, st.CreateAPIKey(ctx, sameID, 0), storeerr.ErrConflict, "same id")
	isErr(t, st.CreateAPIKey(ctx, newKey(uuid.New(), "cafef00d", 0, nil), 0), storeerr.ErrNotFound, "missing principal")

	bobs := newKey(bob.ID, "deadbeef", time.Second, nil)
	ok(t, st.CreateAPIKey(ctx, bobs, 0), "another principal may share the first eight")
	both, err := st.APIKeysByFirstEight(ctx, "deadbeef", t0)
	ok(t, err, "keys by first eight")
	equal(t, keyIDs(both), []uuid.UUID{k.ID, bobs.ID}, "both principals' keys, oldest first")
}

func testTouchAPIKey(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	k := newKey(p.ID, "0badcafe", 0, nil)
	ok(t, st.CreateAPIKey(ctx, k, 0), "create key")
	latest := func() *time.Time {
		keys, err := st.ListAPIKeys(ctx, p.ID)
		ok(t, err, "list keys")
		return keys[0].LatestActivity
	}
	equal(t, latest(), (*time.Time)(nil), "never used")
	for _, tc := range []struct {
		name      string
		now, want time.Duration
	}{
		{"first use writes", time.Second, time.Second},
		{"inside the interval: no write", 30 * time.Second, time.Second},
		{"one interval later writes", time.Second + time.Minute, time.Second + time.Minute},
	} {
		ok(t, st.TouchAPIKey(ctx, k.ID, at(tc.now), time.Minute), tc.name)
		sameTimePtr(t, latest(), ptr(at(tc.want)), tc.name)
	}
	ok(t, st.TouchAPIKey(ctx, uuid.New(), t0, time.Minute), "touching a missing key is not an error")
}

// testAPIKeyLimitRace: concurrent key creations for one principal stop
// exactly at the limit; expired keys do not count.
func testAPIKeyLimitRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	ok(t, st.CreateAPIKey(ctx, newKey(p.ID, "eeeeeeee", 0, ptr(t0)), 0), "create an expired key")
	const n, limit = 30, 5
	errs := race(n, func(i int) error {
		return st.CreateAPIKey(ctx, newKey(p.ID, fmt.Sprintf("%08x", i), 0, nil), limit)
	})
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, storeerr.ErrLimit):
			t.Fatalf("create key: %v, want nil or ErrLimit", err)
		}
	}
	equal(t, created, limit, fmt.Sprintf("keys created by %d concurrent calls under limit %d", n, limit))
	isErr(t, st.CreateAPIKey(ctx, newKey(uuid.New(), "ffffffff", 0, nil), limit), storeerr.ErrNotFound, "limited create for a missing principal")
}
