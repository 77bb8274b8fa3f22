package sqlitestore

import (
	"context"
	"sync"
	"time"

	"github.com/tiledgo/server/internal/sessions"
)

// resyncRetry is how often a follower whose rebuild failed tries again.
const resyncRetry = time.Second

// followerTimeout bounds a follower's read after a commit, which runs on
// the committing request's goroutine but must not end with its context.
const followerTimeout = 5 * time.Second

// Follow implements sessions.LogFeed in process: a database file serves one
// process, so every append to the log is made here, and the followers catch
// up right after its commit, before the write returns to its caller.
func (s *Store) Follow(ctx context.Context, f sessions.LogFollower) error {
	sb := &sub{f: f, log: s.Store}
	s.hub.add(sb)
	defer s.hub.remove(sb)
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

// hub holds the followers of this store's log.
type hub struct {
	mu   sync.Mutex
	subs map[*sub]struct{}
}

func (h *hub) add(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
}

func (h *hub) remove(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// wake makes every follower catch up, after a commit that appended to the log.
func (h *hub) wake(ctx context.Context) {
	h.mu.Lock()
	subs := make([]*sub, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), followerTimeout)
	defer cancel()
	for _, s := range subs {
		s.sync(ctx, true)
	}
}

// sub is one follower: calls to it are serialized, as LogFollower asks.
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
