package authcache_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
)

// memLog is a revocation log in memory.
type memLog struct{ entries []sessions.Revocation }

func (l *memLog) add(e sessions.Revocation) {
	e.Seq = int64(len(l.entries) + 1)
	l.entries = append(l.entries, e)
}

func (l *memLog) RevocationsSince(_ context.Context, after int64, limit int) ([]sessions.Revocation, error) {
	var out []sessions.Revocation
	for _, e := range l.entries {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) RevocationLogStart(_ context.Context, since time.Time) (int64, error) {
	for _, e := range l.entries {
		if !e.RevokedAt.Before(since) {
			return e.Seq - 1, nil
		}
	}
	return int64(len(l.entries)), nil
}

var now = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func newCache(t *testing.T) *authcache.Cache {
	t.Helper()
	c, err := authcache.New(authcache.Config{AccessTokenMaxAge: 15 * time.Minute, ClockSkew: time.Minute,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResyncRemembersWhatCanStillDeny(t *testing.T) {
	log := &memLog{}
	old, recent, edge := uuid.New(), uuid.New(), uuid.New()
	log.add(sessions.Revocation{Kind: sessions.RevokedSession, SessionID: old, RevokedAt: now.Add(-16*time.Minute - time.Microsecond)})
	log.add(sessions.Revocation{Kind: sessions.RevokedSession, SessionID: edge, RevokedAt: now.Add(-16 * time.Minute)})
	log.add(sessions.Revocation{Kind: sessions.RevokedSession, SessionID: recent, RevokedAt: now.Add(-time.Minute)})
	c := newCache(t)
	if _, known := c.Revoked(recent, uuid.New()); known {
		t.Fatal("a cache never rebuilt claims to know")
	}
	if err := c.Resync(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   uuid.UUID
		want bool
	}{
		{"revoked a minute ago", recent, true},
		{"revoked exactly max age plus skew ago", edge, true},
		{"revoked before any live token was issued", old, false},
	} {
		if revoked, known := c.Revoked(tc.id, uuid.New()); revoked != tc.want || !known {
			t.Errorf("%s: revoked=%v known=%v, want %v, true", tc.name, revoked, known, tc.want)
		}
	}
}

func TestLostAndFound(t *testing.T) {
	log := &memLog{}
	c := newCache(t)
	if err := c.Resync(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	sid, pid := uuid.New(), uuid.New()
	log.add(sessions.Revocation{Kind: sessions.RevokedSession, SessionID: sid, RevokedAt: now})
	if err := c.CatchUp(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	c.Lost(context.DeadlineExceeded)
	if revoked, known := c.Revoked(sid, pid); !revoked || !known {
		t.Fatalf("a revocation held stays final out of sync: revoked=%v known=%v", revoked, known)
	}
	if revoked, known := c.Revoked(uuid.New(), pid); revoked || known {
		t.Fatalf("out of sync, an unknown session: revoked=%v known=%v, want unknown", revoked, known)
	}
	deleted := uuid.New()
	log.add(sessions.Revocation{Kind: sessions.DeletedPrincipal, PrincipalID: deleted, RevokedAt: now})
	if err := c.Resync(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if revoked, known := c.Revoked(uuid.New(), deleted); !revoked || !known {
		t.Fatalf("a deleted principal's token: revoked=%v known=%v", revoked, known)
	}
}

// TestKeyReadDuringAChangeIsNotCached: a key read from the database while
// a change came in may predate it, so it is not stored.
func TestKeyReadDuringAChangeIsNotCached(t *testing.T) {
	log := &memLog{}
	c := newCache(t)
	key := &authcache.Key{ID: uuid.New(), PrincipalID: uuid.New(), Scopes: identity.NewScopeSet(identity.ScopeReadData)}
	h := [32]byte{1}

	epoch := c.KeyEpoch()
	c.PutKey(epoch, h, key)
	if _, ok := c.Key(h); ok {
		t.Fatal("a key stored while the cache was never in sync")
	}
	if err := c.Resync(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change sessions.Revocation
	}{
		{"its owner's roles changed", sessions.Revocation{Kind: sessions.ChangedPrincipal, PrincipalID: uuid.New()}},
		{"a key was deleted", sessions.Revocation{Kind: sessions.DeletedAPIKey, PrincipalID: uuid.New(), APIKeyID: uuid.New()}},
		{"a session was revoked", sessions.Revocation{Kind: sessions.RevokedSession, SessionID: uuid.New()}},
	} {
		epoch := c.KeyEpoch()
		tc.change.RevokedAt = now
		log.add(tc.change)
		if err := c.CatchUp(context.Background(), log); err != nil {
			t.Fatal(err)
		}
		c.PutKey(epoch, h, key)
		if _, ok := c.Key(h); ok {
			t.Fatalf("%s while the key was read: it was cached", tc.name)
		}
	}
	epoch = c.KeyEpoch()
	c.PutKey(epoch, h, key)
	if got, ok := c.Key(h); !ok || got != key {
		t.Fatal("a key read with nothing changing is cached")
	}

	// Events drop what they concern, and only that.
	other := &authcache.Key{ID: uuid.New(), PrincipalID: uuid.New()}
	h2 := [32]byte{2}
	c.PutKey(c.KeyEpoch(), h2, other)
	log.add(sessions.Revocation{Kind: sessions.ChangedPrincipal, PrincipalID: key.PrincipalID, RevokedAt: now})
	if err := c.CatchUp(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Key(h); ok {
		t.Fatal("a key of a changed principal is still cached")
	}
	if _, ok := c.Key(h2); !ok {
		t.Fatal("another principal's key was dropped")
	}
	log.add(sessions.Revocation{Kind: sessions.DeletedAPIKey, PrincipalID: other.PrincipalID, APIKeyID: other.ID, RevokedAt: now})
	if err := c.CatchUp(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Key(h2); ok {
		t.Fatal("a deleted key is still cached")
	}

	c.PutKey(c.KeyEpoch(), h, key)
	c.Lost(context.Canceled)
	if _, ok := c.Key(h); ok {
		t.Fatal("a cache out of sync answers for a key")
	}
}

// TestApplyInOrderOnly: an entry a notification carries is applied only
// when it is the next one; a gap makes the feed read the log.
func TestApplyInOrderOnly(t *testing.T) {
	c := newCache(t)
	e := func(seq int64) sessions.Revocation {
		return sessions.Revocation{Seq: seq, Kind: sessions.RevokedSession, SessionID: uuid.New(), RevokedAt: now}
	}
	if c.Apply(e(1)) {
		t.Fatal("applied before the first rebuild, with no cursor to follow")
	}
	log := &memLog{}
	log.add(e(0)) // seq 1
	if err := c.Resync(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	known := e(1)
	if !c.Apply(known) {
		t.Fatal("an entry read already is not reported as known")
	}
	if revoked, _ := c.Revoked(known.SessionID, uuid.New()); revoked {
		t.Fatal("an entry read already was applied again from its payload (a different session under seq 1)")
	}
	next := e(2)
	if !c.Apply(next) {
		t.Fatal("the next entry was not applied")
	}
	if revoked, known := c.Revoked(next.SessionID, uuid.New()); !revoked || !known {
		t.Fatal("the next entry applied but not held")
	}
	gap := e(4)
	if c.Apply(gap) {
		t.Fatal("an entry after a gap was applied")
	}
	if revoked, _ := c.Revoked(gap.SessionID, uuid.New()); revoked {
		t.Fatal("an entry after a gap is held")
	}
}

// TestPrincipalsFollowTheLog: a principal read while what is known of
// principals changed is not kept; a change to one principal drops it and
// only it; the applied cursor moves with the log and is not reported
// while out of sync.
func TestPrincipalsFollowTheLog(t *testing.T) {
	log := &memLog{}
	c := newCache(t)
	p := identity.Principal{ID: uuid.New(), Type: identity.TypeUser,
		Identities: []identity.Identity{{Provider: "toy", ID: "ann", LatestLogin: &now}}}
	q := identity.Principal{ID: uuid.New(), Type: identity.TypeService}

	c.PutPrincipal(c.PrincipalEpoch(), p)
	if _, ok := c.Principal(p.ID); ok {
		t.Fatal("a principal stored while the cache was never in sync")
	}
	if _, ok := c.Applied(); ok {
		t.Fatal("a cursor reported while never in sync")
	}
	log.add(sessions.Revocation{Kind: sessions.RevokedSession, SessionID: uuid.New(), RevokedAt: now})
	if err := c.Resync(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if cur, ok := c.Applied(); !ok || cur != 1 {
		t.Fatalf("Applied() = %d, %v after a rebuild through entry 1", cur, ok)
	}
	for _, tc := range []struct {
		name    string
		change  sessions.Revocation
		dropped bool
	}{
		{"its roles changed", sessions.Revocation{Kind: sessions.ChangedPrincipal, PrincipalID: p.ID}, true},
		{"it was deleted", sessions.Revocation{Kind: sessions.DeletedPrincipal, PrincipalID: p.ID}, true},
		{"an unknown kind came", sessions.Revocation{Kind: "from-a-newer-replica", PrincipalID: uuid.New()}, true},
		// Changes that do not concern principals leave a read standing.
		{"a session was revoked", sessions.Revocation{Kind: sessions.RevokedSession, SessionID: uuid.New()}, false},
		{"a key was deleted", sessions.Revocation{Kind: sessions.DeletedAPIKey, PrincipalID: p.ID, APIKeyID: uuid.New()}, false},
	} {
		epoch := c.PrincipalEpoch()
		tc.change.RevokedAt = now
		log.add(tc.change)
		if err := c.CatchUp(context.Background(), log); err != nil {
			t.Fatal(err)
		}
		c.PutPrincipal(epoch, p)
		if _, ok := c.Principal(p.ID); ok == tc.dropped {
			t.Fatalf("%s while the principal was read: kept = %v", tc.name, ok)
		}
		if cur, _ := c.Applied(); cur != int64(len(log.entries)) {
			t.Fatalf("%s: Applied() = %d, want %d", tc.name, cur, len(log.entries))
		}
	}

	c.PutPrincipal(c.PrincipalEpoch(), p)
	c.PutPrincipal(c.PrincipalEpoch(), q)
	got, ok := c.Principal(p.ID)
	if !ok || got.ID != p.ID || got.Type != p.Type || len(got.Identities) != 1 || got.Identities[0].LatestLogin != nil ||
		got.Identities[0].PrincipalID != p.ID {
		t.Fatalf("Principal() = %+v, %v: want what tokens say of it, and nothing else", got, ok)
	}
	log.add(sessions.Revocation{Kind: sessions.ChangedPrincipal, PrincipalID: p.ID, RevokedAt: now})
	if !c.Apply(sessions.Revocation{Kind: sessions.ChangedPrincipal, PrincipalID: p.ID, RevokedAt: now, Seq: int64(len(log.entries))}) {
		t.Fatal("the next entry was not applied")
	}
	if _, ok := c.Principal(p.ID); ok {
		t.Fatal("a changed principal is still known")
	}
	if _, ok := c.Principal(q.ID); !ok {
		t.Fatal("another principal was dropped")
	}
	if cur, _ := c.Applied(); cur != int64(len(log.entries)) {
		t.Fatalf("Applied() = %d after a notification, want %d", cur, len(log.entries))
	}

	c.Lost(context.Canceled)
	if _, ok := c.Principal(q.ID); ok {
		t.Fatal("a cache out of sync answers for a principal")
	}
	if _, ok := c.Applied(); ok {
		t.Fatal("a cache out of sync reports a cursor")
	}
	if err := c.Resync(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Principal(q.ID); ok {
		t.Fatal("a principal kept across a rebuild (changes may have been missed)")
	}
	if s := c.Stats(); s.PrincipalHits == 0 || s.PrincipalMisses == 0 {
		t.Fatalf("stats: %+v, want principal hits and misses counted", s)
	}
}
