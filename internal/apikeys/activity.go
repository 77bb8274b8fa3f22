package apikeys

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ActivityBatcher records API-key use (latest_activity) off the request
// path: each key is noted at most once per touchInterval in memory, and the
// notes are written together, one statement per Interval, rather than a
// conditional UPDATE in the request.
//
// latest_activity is bookkeeping shown to the key's owner: losing the notes
// of the last Interval when a process dies costs nothing else, which is why
// they may live in this replica's memory for a moment.
type ActivityBatcher struct {
	Store interface {
		TouchAPIKeys(ctx context.Context, ids []uuid.UUID, now time.Time, minInterval time.Duration) error
	}
	Logger *slog.Logger
	// Interval between writes (default 5s); MaxBatch keys per statement
	// (default 500); Timeout bounds one write (default 5s).
	Interval time.Duration
	MaxBatch int
	Timeout  time.Duration

	// noted: when each key was last noted (unix ns), read without the
	// lock on the request path.
	noted   sync.Map
	mu      sync.Mutex
	pending map[uuid.UUID]time.Time
	once    sync.Once
}

func (b *ActivityBatcher) init() {
	b.once.Do(func() {
		if b.Interval <= 0 {
			b.Interval = 5 * time.Second
		}
		if b.MaxBatch <= 0 {
			b.MaxBatch = 500
		}
		if b.Timeout <= 0 {
			b.Timeout = 5 * time.Second
		}
		if b.Logger == nil {
			b.Logger = slog.New(slog.DiscardHandler)
		}
		b.pending = map[uuid.UUID]time.Time{}
	})
}

// Touch implements ActivityRecorder; it never blocks on the database.
func (b *ActivityBatcher) Touch(id uuid.UUID, now time.Time) {
	b.init()
	if last, ok := b.noted.Load(id); ok && now.Sub(time.Unix(0, last.(int64))) < touchInterval {
		return
	}
	b.noted.Store(id, now.UnixNano())
	b.mu.Lock()
	b.pending[id] = now
	b.mu.Unlock()
}

// Run writes every Interval until ctx ends, then once more within Timeout.
func (b *ActivityBatcher) Run(ctx context.Context) {
	b.init()
	t := time.NewTicker(b.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.Timeout)
			b.Flush(fctx)
			cancel()
			return
		case <-t.C:
			b.Flush(ctx)
		}
	}
}

// Flush writes what was noted, grouped by time (a batch shares its
// statement's "now": the latest use noted in it), and forgets notes older
// than touchInterval. Failed batches are noted again for the next Flush.
func (b *ActivityBatcher) Flush(ctx context.Context) {
	b.init()
	b.mu.Lock()
	pending := b.pending
	b.pending = map[uuid.UUID]time.Time{}
	b.mu.Unlock()
	ids := slices.Collect(maps.Keys(pending))
	for len(ids) > 0 {
		n := min(len(ids), b.MaxBatch)
		batch := ids[:n]
		ids = ids[n:]
		var latest time.Time
		for _, id := range batch {
			if t := pending[id]; t.After(latest) {
				latest = t
			}
		}
		fctx, cancel := context.WithTimeout(ctx, b.Timeout)
		err := b.Store.TouchAPIKeys(fctx, batch, latest, touchInterval)
		cancel()
		if err != nil {
			b.Logger.Warn("record API key activity; retrying", "keys", len(batch), "error", err)
			b.mu.Lock()
			for _, id := range batch {
				if _, newer := b.pending[id]; !newer {
					b.pending[id] = pending[id]
				}
			}
			b.mu.Unlock()
		}
	}
	cutoff := time.Now().Add(-2 * touchInterval).UnixNano()
	b.noted.Range(func(k, v any) bool {
		if v.(int64) < cutoff {
			b.noted.Delete(k)
		}
		return true
	})
}
