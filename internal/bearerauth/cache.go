package bearerauth

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/tiledgo/server/internal/identity"
)

// Cache keeps principals of bearer users per replica for a short TTL, so a
// request with a cached issuer key and a cached principal costs no
// database round trip. A miss goes to the store (one find-or-create shared
// by concurrent requests for the same identity); a store error is
// returned, never a guess. Role changes and deleted principals are dropped
// as soon as the replica's revocation-log follower sees them (Forget), and
// everything is dropped when it rebuilds after a gap (Clear); the TTL
// bounds what a lost notification could leave behind.
type Cache struct {
	TTL time.Duration
	// Max bounds the entries; when full, expired entries are dropped, and
	// if none is, the whole cache (a flood of distinct users cannot grow it).
	Max int
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
	flight  singleflight.Group
	// epoch moves on every Forget and Clear: a principal loaded while it
	// moved may predate the change, so it is returned but not kept.
	epoch uint64
}

// Forget drops the entries of principal id (its roles or identities
// changed, or it was deleted).
func (c *Cache) Forget(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for k, e := range c.entries {
		if e.p.ID == id {
			delete(c.entries, k)
		}
	}
}

// Clear drops every entry (the follower rebuilt after a gap, so changes may
// have been missed).
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
}

type cacheEntry struct {
	p       identity.Principal
	expires time.Time
}

// Get returns the principal for key, loading it on a miss.
func (c *Cache) Get(ctx context.Context, key string, load func(context.Context) (identity.Principal, error)) (identity.Principal, error) {
	now := c.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.p, nil
	}
	v, err, _ := c.flight.Do(key, func() (any, error) {
		c.mu.Lock()
		epoch := c.epoch
		c.mu.Unlock()
		p, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return identity.Principal{}, err
		}
		c.put(key, p, c.Now(), epoch)
		return p, nil
	})
	if err != nil {
		return identity.Principal{}, err
	}
	return v.(identity.Principal), nil
}

func (c *Cache) put(key string, p identity.Principal, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if c.entries == nil {
		c.entries = map[string]cacheEntry{}
	}
	if c.Max > 0 && len(c.entries) >= c.Max {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.Max {
			clear(c.entries)
		}
	}
	c.entries[key] = cacheEntry{p: p, expires: now.Add(c.TTL)}
}

// Len is the number of entries, for tests.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
