package sqlitestore

import (
	"context"
	"sync"
	"time"

	"github.com/tiledgo/server/internal/sessions"
)

// resyncRetry is how often a follower whose rebuild failed tries again.
const resyncRetry = time.Second

// Follow implements sessions.LogFeed in process: a database file serves one
// process, so every append to the log is made here, and the followers catch
// up right after its commit, before the write returns to its caller.
func (s *Store) Follow(ctx context.Context, f sessions.LogFollower) error {
	sb := &sub{f: f, log: s.Store}
	unsubscribe := s.Subscribe(func(ctx context.Context) { sb.sync(ctx, true) })
	defer unsubscribe()
	sb.sync(ctx, false)
	t := time.NewTicker(resyncRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			sb.sync(ctx, false)
		}
	}
}

// sub is one follower; calls to it are serialized.
type sub struct {
	mu     sync.Mutex
	f      sessions.LogFollower
	log    sessions.LogReader
	synced bool
}

// sync catches the follower up (when asked and in sync) or rebuilds it; a
// failure leaves it Lost until a later call rebuilds it.
func (s *sub) sync(ctx context.Context, catchUp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.synced {
		if !catchUp {
			return
		}
		err := s.f.CatchUp(ctx, s.log)
		if err == nil {
			return
		}
		s.synced = false
		s.f.Lost(err)
	}
	if err := s.f.Resync(ctx, s.log); err != nil {
		s.f.Lost(err)
		return
	}
	s.synced = true
}
