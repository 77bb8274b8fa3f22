package bearerauth

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tiledgo/server/internal/identity"
)

// Cache keeps principals of bearer users per replica for a short TTL, so a
// request with a cached issuer key and a cached principal costs no
// database round trip. A miss goes to the store (one find-or-create shared
// by concurrent requests for the same identity); a store error is
// returned, never a guess. Role changes (tiled_admins, an admin revoking a
// role) and deleted principals reach a replica within the TTL.
type Cache struct {
	TTL time.Duration
	// Max bounds the entries; when full, expired entries are dropped, and
	// if none is, the whole cache (a flood of distinct users cannot grow it).
	Max int
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
	flight  singleflight.Group
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
		p, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return identity.Principal{}, err
		}
		c.put(key, p, c.Now())
		return p, nil
	})
	if err != nil {
		return identity.Principal{}, err
	}
	return v.(identity.Principal), nil
}

func (c *Cache) put(key string, p identity.Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
