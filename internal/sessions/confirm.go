package sessions

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// ConfirmBatcher writes rotation confirmations in batches, off the request
// path: one statement per interval rather than one round trip per refresh.
//
// Losing confirmations (the process dies before a flush, the database stays
// away longer than MaxPending refreshes) leaves those rotations pending, the
// lenient state described at Manager.Refresh, until their next rotation:
// nothing is refused that should have been accepted. That is why they may
// live in this replica's memory for a moment.
type ConfirmBatcher struct {
	Store  Store
	Logger *slog.Logger
	// Interval between flushes (default 50ms); MaxBatch refs per statement
	// (default 500); MaxPending refs held while the database is away
	// (default 100,000), beyond which the oldest are dropped.
	Interval   time.Duration
	MaxBatch   int
	MaxPending int
	// Timeout bounds one flush (default 5s).
	Timeout time.Duration

	mu      sync.Mutex
	pending []RotationRef
	dropped int
	wake    chan struct{}
	once    sync.Once
}

func (b *ConfirmBatcher) init() {
	b.once.Do(func() {
		if b.Interval <= 0 {
			b.Interval = 50 * time.Millisecond
		}
		if b.MaxBatch <= 0 {
			b.MaxBatch = 500
		}
		if b.MaxPending <= 0 {
			b.MaxPending = 100_000
		}
		if b.Timeout <= 0 {
			b.Timeout = 5 * time.Second
		}
		if b.Logger == nil {
			b.Logger = slog.New(slog.DiscardHandler)
		}
		b.wake = make(chan struct{}, 1)
	})
}

// Confirm implements Confirmer; it never blocks on the database.
func (b *ConfirmBatcher) Confirm(ref RotationRef) {
	b.init()
	b.mu.Lock()
	if len(b.pending) >= b.MaxPending {
		b.pending = b.pending[1:]
		b.dropped++
	}
	b.pending = append(b.pending, ref)
	full := len(b.pending) >= b.MaxBatch
	b.mu.Unlock()
	if full {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// Run flushes until ctx ends, then once more within Timeout.
func (b *ConfirmBatcher) Run(ctx context.Context) {
	b.init()
	t := time.NewTicker(b.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.Timeout)
			for b.Flush(fctx) > 0 {
			}
			cancel()
			return
		case <-t.C:
		case <-b.wake:
		}
		for b.Flush(ctx) >= b.MaxBatch {
		}
	}
}

// Flush writes one batch and returns how many refs it wrote; on failure the
// batch goes back to the front of the queue for the next flush.
func (b *ConfirmBatcher) Flush(ctx context.Context) int {
	b.init()
	b.mu.Lock()
	n := min(len(b.pending), b.MaxBatch)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	dropped := b.dropped
	b.dropped = 0
	b.mu.Unlock()
	if dropped > 0 {
		b.Logger.Warn("rotation confirmations dropped while the session database was away; those rotations stay pending",
			"dropped", dropped)
	}
	if n == 0 {
		return 0
	}
	fctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	if err := b.Store.ConfirmRotations(fctx, batch); err != nil {
		b.Logger.Warn("confirm rotations; retrying", "count", n, "error", err)
		b.mu.Lock()
		b.pending = append(batch, b.pending...)
		if over := len(b.pending) - b.MaxPending; over > 0 {
			b.pending = b.pending[over:]
			b.dropped += over
		}
		b.mu.Unlock()
		return 0
	}
	return n
}
