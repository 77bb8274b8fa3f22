// Package authcache keeps, in each replica, what the authenticated hot path
// would otherwise read from the session database on every request: which
// sessions are revoked and which principals deleted (so that a bearer
// request needs no session read), API keys with their owners' scopes
// (so that an Apikey request needs no key or owner read), and what tokens
// say of principals (so that a refresh's rotation need not read them).
//
// It is exact, not merely fresh: it follows the revocation log, to which
// every change it depends on is appended in the transaction that makes it
// (sessions.Revocation). A feed (sessions.LogFeed: PostgreSQL LISTEN/NOTIFY,
// or in process for SQLite) wakes it after each such commit; it is rebuilt
// from the log whenever the feed (re)starts; and while the feed cannot vouch
// that nothing was missed (connection lost, heartbeat unanswered, a read
// failed) the Cache says it does not know, and callers read the database,
// never assuming "not revoked".
package authcache

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
)

// Defaults of Config.
const (
	DefaultClockSkew = time.Minute
	DefaultMaxKeys   = 10_000
	// DefaultMaxPrincipals bounds the principals held: about 200 bytes
	// each, and a miss costs one read.
	DefaultMaxPrincipals = 100_000
	pageSize             = 1000
)

// Config is what New needs.
type Config struct {
	// AccessTokenMaxAge is how long an access token lives, and so how long
	// a revocation must be remembered.
	AccessTokenMaxAge time.Duration
	// ClockSkew is added to that, for replicas' clocks that disagree
	// (default one minute).
	ClockSkew time.Duration
	// MaxKeys bounds the API keys held (default 10,000).
	MaxKeys int
	// MaxPrincipals bounds the principals held (default 100,000).
	MaxPrincipals int
	Now           func() time.Time
	Logger        *slog.Logger
	// OnApply, when set, is told how long after it was written each entry
	// that a notification carried reached this replica (metrics).
	OnApply func(lag time.Duration)
}

// Stats counts what the cache answered, for metrics.
type Stats struct {
	InSync bool
	// RevocationHits were answered from memory; RevocationFallbacks read
	// the database because the cache was not in sync.
	RevocationHits, RevocationFallbacks uint64
	KeyHits, KeyMisses                  uint64
	// PrincipalHits and PrincipalMisses count refreshes whose principal
	// came from memory, or had to be read.
	PrincipalHits, PrincipalMisses uint64
	// Resyncs counts rebuilds from the log (start, reconnects, gaps).
	Resyncs uint64
	// Held entries now: revoked sessions, deleted principals, API keys,
	// and principals remembered for refreshes.
	Sessions, Principals, Keys, Known int
}

// sweepEvery spaces the expiry sweeps, so a burst of notifications does not
// walk every held entry once each.
const sweepEvery = 10 * time.Second

// Cache implements sessions.LogFollower and sessions.RevocationCache, and
// the key cache of apikeys.Service.
type Cache struct {
	cfg Config

	// synced: the contents reflect every change committed before the
	// latest wake-up the feed delivered. epoch moves on every change of
	// contents, so a key read from the database while it moved is not
	// stored (it may predate the change).
	synced atomic.Bool
	epoch  atomic.Uint64
	// applied is cursor, published for readers: every entry up to it has
	// been applied to the contents. pepoch is epoch for principals: it
	// moves only when what is known of principals may have changed.
	applied atomic.Int64
	pepoch  atomic.Uint64

	// syncMu serializes Resync and CatchUp (the feed may call both from
	// several goroutines).
	syncMu  sync.Mutex
	cursor  int64
	rebuilt bool // once: before, there is no cursor to catch up from

	mu         sync.RWMutex
	sessions   map[uuid.UUID]time.Time // revoked session -> forget after
	principals map[uuid.UUID]time.Time // deleted principal -> forget after
	keys       map[[32]byte]*Key
	known      map[uuid.UUID]identity.Principal // what tokens say of a principal
	lastSweep  time.Time

	revHits, revFallbacks, keyHits, keyMisses, resyncs atomic.Uint64
	principalHits, principalMisses                     atomic.Uint64

	// subscribers hear of principal changes and rebuilds (other per-replica
	// caches of principals, such as the bearer users').
	subMu       sync.Mutex
	subscribers []Subscriber
}

// Subscriber is told what a cache of principals must drop: a principal
// changed (roles, identities) or was deleted, or the log was rebuilt after
// a gap and anything may have changed.
type Subscriber interface {
	Forget(principalID uuid.UUID)
	Clear()
}

// Subscribe adds s; it is called after each change is applied.
func (c *Cache) Subscribe(s Subscriber) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.subscribers = append(c.subscribers, s)
}

func (c *Cache) notify(fn func(Subscriber)) {
	c.subMu.Lock()
	subs := slices.Clone(c.subscribers)
	c.subMu.Unlock()
	for _, s := range subs {
		fn(s)
	}
}

// Stats reports the counters and sizes.
func (c *Cache) Stats() Stats {
	c.mu.RLock()
	s, p, k, known := len(c.sessions), len(c.principals), len(c.keys), len(c.known)
	c.mu.RUnlock()
	return Stats{
		InSync: c.synced.Load(), RevocationHits: c.revHits.Load(), RevocationFallbacks: c.revFallbacks.Load(),
		KeyHits: c.keyHits.Load(), KeyMisses: c.keyMisses.Load(), Resyncs: c.resyncs.Load(),
		PrincipalHits: c.principalHits.Load(), PrincipalMisses: c.principalMisses.Load(),
		Sessions: s, Principals: p, Keys: k, Known: known,
	}
}

var (
	_ sessions.LogFollower     = (*Cache)(nil)
	_ sessions.RevocationCache = (*Cache)(nil)
	_ sessions.PrincipalCache  = (*Cache)(nil)
)

// New returns an empty Cache, not in sync until its feed has rebuilt it.
func New(cfg Config) (*Cache, error) {
	if cfg.AccessTokenMaxAge <= 0 {
		return nil, fmt.Errorf("authcache: access token max age %s must be positive", cfg.AccessTokenMaxAge)
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.MaxPrincipals <= 0 {
		cfg.MaxPrincipals = DefaultMaxPrincipals
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{cfg: cfg, sessions: map[uuid.UUID]time.Time{}, principals: map[uuid.UUID]time.Time{},
		keys: map[[32]byte]*Key{}, known: map[uuid.UUID]identity.Principal{}}, nil
}

// InSync reports whether the Cache may answer for the database.
func (c *Cache) InSync() bool { return c.synced.Load() }

// memory is how long an entry that happened at t must be kept.
func (c *Cache) forgetAfter(t time.Time) time.Time {
	return t.Add(c.cfg.AccessTokenMaxAge + c.cfg.ClockSkew)
}

// Resync implements sessions.LogFollower: it rebuilds the revocations from
// the part of the log that can still deny a live token, and drops every
// cached key (they are read again on use).
func (c *Cache) Resync(ctx context.Context, log sessions.LogReader) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.synced.Store(false)
	c.epoch.Add(1)
	c.pepoch.Add(1)
	now := c.cfg.Now()
	cursor, err := log.RevocationLogStart(ctx, now.Add(-c.cfg.AccessTokenMaxAge-c.cfg.ClockSkew))
	if err != nil {
		return fmt.Errorf("revocation log start: %w", err)
	}
	revoked, deleted := map[uuid.UUID]time.Time{}, map[uuid.UUID]time.Time{}
	for {
		page, err := log.RevocationsSince(ctx, cursor, pageSize)
		if err != nil {
			return fmt.Errorf("read the revocation log: %w", err)
		}
		for _, e := range page {
			switch e.Kind {
			case sessions.RevokedSession:
				revoked[e.SessionID] = c.forgetAfter(e.RevokedAt)
			case sessions.DeletedPrincipal:
				deleted[e.PrincipalID] = c.forgetAfter(e.RevokedAt)
			}
			cursor = e.Seq
		}
		if len(page) < pageSize {
			break
		}
	}
	c.mu.Lock()
	c.sessions, c.principals, c.keys = revoked, deleted, map[[32]byte]*Key{}
	c.known = map[uuid.UUID]identity.Principal{}
	c.mu.Unlock()
	c.cursor, c.rebuilt = cursor, true
	c.applied.Store(cursor)
	c.epoch.Add(1)
	c.pepoch.Add(1)
	c.resyncs.Add(1)
	c.notify(func(s Subscriber) { s.Clear() })
	wasSynced := c.synced.Swap(true)
	c.cfg.Logger.Info("authentication cache rebuilt from the revocation log",
		"revoked_sessions", len(revoked), "deleted_principals", len(deleted), "cursor", cursor, "was_synced", wasSynced)
	return nil
}

// CatchUp implements sessions.LogFollower.
func (c *Cache) CatchUp(ctx context.Context, log sessions.LogReader) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if !c.rebuilt {
		return nil // the first Resync reads it all
	}
	for {
		page, err := log.RevocationsSince(ctx, c.cursor, pageSize)
		if err != nil {
			return fmt.Errorf("read the revocation log: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		c.apply(page)
		c.cursor = page[len(page)-1].Seq
		c.applied.Store(c.cursor)
		if len(page) < pageSize {
			return nil
		}
	}
}

// Apply implements sessions.LogFollower: the next entry, as a notification
// carried it, is applied without reading the log.
func (c *Cache) Apply(e sessions.Revocation) bool {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	switch {
	case !c.rebuilt:
		return false
	case e.Seq <= c.cursor:
		return true // read already (this replica's own write, caught up at once)
	case e.Seq != c.cursor+1:
		return false // a gap (a rolled-back append, or a lost notification): read the log
	}
	c.apply([]sessions.Revocation{e})
	c.cursor = e.Seq
	c.applied.Store(c.cursor)
	if c.cfg.OnApply != nil {
		c.cfg.OnApply(c.cfg.Now().Sub(e.RevokedAt))
	}
	return true
}

// apply records entries and drops the keys they concern.
func (c *Cache) apply(entries []sessions.Revocation) {
	changed, unknown := c.applyLocked(entries)
	// Subscribers are told outside the lock.
	if unknown {
		c.notify(func(s Subscriber) { s.Clear() })
		return
	}
	for _, id := range changed {
		c.notify(func(s Subscriber) { s.Forget(id) })
	}
}

// applyLocked records entries and drops the keys they concern; it returns
// the principals that changed, and whether an entry of an unknown kind
// came (then anything may have changed).
func (c *Cache) applyLocked(entries []sessions.Revocation) (changed []uuid.UUID, unknown bool) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Bumped under the lock: a key stored after this saw the entries.
	c.epoch.Add(1)
	for _, e := range entries {
		switch e.Kind {
		case sessions.RevokedSession:
			c.sessions[e.SessionID] = c.forgetAfter(e.RevokedAt)
		case sessions.DeletedPrincipal:
			c.principals[e.PrincipalID] = c.forgetAfter(e.RevokedAt)
			c.dropKeys(func(k *Key) bool { return k.PrincipalID == e.PrincipalID })
			c.forgetPrincipal(e.PrincipalID)
			changed = append(changed, e.PrincipalID)
		case sessions.ChangedPrincipal:
			c.dropKeys(func(k *Key) bool { return k.PrincipalID == e.PrincipalID })
			c.forgetPrincipal(e.PrincipalID)
			changed = append(changed, e.PrincipalID)
		case sessions.DeletedAPIKey:
			c.dropKeys(func(k *Key) bool { return k.ID == e.APIKeyID })
		default:
			// A kind this version does not know (a newer replica wrote
			// it): forget every key rather than keep one it concerns.
			c.keys = map[[32]byte]*Key{}
			c.pepoch.Add(1)
			clear(c.known)
			unknown = true
		}
	}
	if now.Sub(c.lastSweep) < sweepEvery {
		return changed, unknown
	}
	c.lastSweep = now
	for id, until := range c.sessions {
		if now.After(until) {
			delete(c.sessions, id)
		}
	}
	for id, until := range c.principals {
		if now.After(until) {
			delete(c.principals, id)
		}
	}
	return changed, unknown
}

// forgetPrincipal drops what is known of principal id; c.mu is held.
func (c *Cache) forgetPrincipal(id uuid.UUID) {
	c.pepoch.Add(1)
	delete(c.known, id)
}

func (c *Cache) dropKeys(match func(*Key) bool) {
	for h, k := range c.keys {
		if match(k) {
			delete(c.keys, h)
		}
	}
}

// Lost implements sessions.LogFollower: until the next Resync, answers come
// from the database.
func (c *Cache) Lost(err error) {
	c.epoch.Add(1)
	c.pepoch.Add(1)
	if c.synced.Swap(false) {
		c.cfg.Logger.Warn("authentication cache out of sync with the revocation log; reading the session database until it is rebuilt",
			"error", err)
		return
	}
	c.cfg.Logger.Debug("authentication cache still out of sync", "error", err)
}

// Revoked implements sessions.RevocationCache. A revocation it holds is
// final, in sync or not; "not revoked" is known only while in sync.
func (c *Cache) Revoked(sessionID, principalID uuid.UUID) (revoked, known bool) {
	synced := c.synced.Load()
	c.mu.RLock()
	_, s := c.sessions[sessionID]
	_, p := c.principals[principalID]
	c.mu.RUnlock()
	if s || p {
		c.revHits.Add(1)
		return true, true
	}
	if synced {
		c.revHits.Add(1)
	} else {
		c.revFallbacks.Add(1)
	}
	return false, synced
}

// Revoke implements sessions.RevocationCache.
func (c *Cache) Revoke(sessionID uuid.UUID, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions[sessionID] = c.forgetAfter(at)
}

// Key is a verified API key with what a request needs of its owner.
type Key struct {
	ID            uuid.UUID
	PrincipalID   uuid.UUID
	FirstEight    string
	PrincipalType identity.PrincipalType
	Identities    []identity.Identity
	// Scopes are the effective scopes: the key's, within its owner's.
	Scopes     identity.ScopeSet
	AccessTags []string
	ExpiresAt  *time.Time
}

// Key returns the cached key whose secret hashes to hash, while in sync.
// The map is keyed by the SHA-256 of the secret, never the secret, so
// lookup time says nothing useful about a secret.
func (c *Cache) Key(hash [32]byte) (*Key, bool) {
	return lookup(c, func() map[[32]byte]*Key { return c.keys }, hash, &c.keyHits, &c.keyMisses)
}

// lookup reads one entry of the map that of returns (under the read lock:
// a rebuild replaces the maps) while in sync, counting hits and misses.
func lookup[K comparable, V any](c *Cache, of func() map[K]V, k K, hits, misses *atomic.Uint64) (V, bool) {
	if !c.synced.Load() {
		var zero V
		return zero, false
	}
	c.mu.RLock()
	v, ok := of()[k]
	c.mu.RUnlock()
	if ok {
		hits.Add(1)
	} else {
		misses.Add(1)
	}
	return v, ok
}

// putBounded stores v at k, first dropping an arbitrary entry (map order is
// random) if m holds max already; c.mu is held.
func putBounded[K comparable, V any](m map[K]V, k K, v V, max int) {
	if len(m) >= max {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[k] = v
}

// KeyEpoch is read before a key is read from the database, and handed to
// PutKey after.
func (c *Cache) KeyEpoch() uint64 { return c.epoch.Load() }

// PutKey stores k, read from the database since KeyEpoch returned epoch,
// unless anything changed meanwhile (or the Cache is out of sync): the
// read may predate the change.
func (c *Cache) PutKey(epoch uint64, hash [32]byte, k *Key) {
	if !c.synced.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch.Load() != epoch || !c.synced.Load() {
		return
	}
	putBounded(c.keys, hash, k, c.cfg.MaxKeys)
}

// Follow drives the Cache with feed until ctx ends.
func (c *Cache) Follow(ctx context.Context, feed sessions.LogFeed) {
	if err := feed.Follow(ctx, c); err != nil && ctx.Err() == nil {
		c.Lost(err)
		c.cfg.Logger.Error("revocation log feed stopped", "error", err)
	}
}

// Applied implements sessions.PrincipalCache.
func (c *Cache) Applied() (int64, bool) {
	if !c.synced.Load() {
		return 0, false
	}
	return c.applied.Load(), true
}

// Principal implements sessions.PrincipalCache, while in sync.
func (c *Cache) Principal(id uuid.UUID) (identity.Principal, bool) {
	return lookup(c, func() map[uuid.UUID]identity.Principal { return c.known }, id, &c.principalHits, &c.principalMisses)
}

// PrincipalEpoch implements sessions.PrincipalCache.
func (c *Cache) PrincipalEpoch() uint64 { return c.pepoch.Load() }

// PutPrincipal implements sessions.PrincipalCache: it keeps what tokens
// say of p (ID, type, roles, identities' provider and id), unless what is
// known of principals changed since epoch or the Cache is out of sync.
func (c *Cache) PutPrincipal(epoch uint64, p identity.Principal) {
	if !c.synced.Load() {
		return
	}
	kept := identity.Principal{ID: p.ID, Type: p.Type, Roles: slices.Clone(p.Roles)}
	for _, i := range p.Identities {
		kept.Identities = append(kept.Identities, identity.Identity{Provider: i.Provider, ID: i.ID, PrincipalID: p.ID})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pepoch.Load() != epoch || !c.synced.Load() {
		return
	}
	putBounded(c.known, p.ID, kept, c.cfg.MaxPrincipals)
}
