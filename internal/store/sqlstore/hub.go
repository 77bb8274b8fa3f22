package sqlstore

import (
	"context"
	"sync"
	"time"
)

// wakeTimeout bounds the followers' reads after a commit: they run on the
// writing request's goroutine but must not end with its context.
const wakeTimeout = 5 * time.Second

// hub calls this process's followers of the revocation log after each
// commit that appended to it, before the write returns, so a replica sees
// its own changes at once (a session it revoked is refused by it in the
// very next request) whatever its feed from other replicas does.
type hub struct {
	mu   sync.Mutex
	next int
	subs map[int]func(context.Context)
}

// Subscribe calls fn after every commit by this Store that appended to the
// revocation log, on the committing goroutine, until the returned function
// is called. fn must be safe to call from several goroutines at once.
func (s *Store) Subscribe(fn func(context.Context)) (unsubscribe func()) {
	h := &s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[int]func(context.Context){}
	}
	id := h.next
	h.next++
	h.subs[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
	}
}

// wake runs the subscribers after a logged change has committed.
func (s *Store) wake(ctx context.Context) {
	h := &s.hub
	h.mu.Lock()
	fns := make([]func(context.Context), 0, len(h.subs))
	for _, fn := range h.subs {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wakeTimeout)
	defer cancel()
	for _, fn := range fns {
		fn(ctx)
	}
}

// inLoggedTx runs fn in a transaction that may append to the revocation
// log, and wakes this process's followers once it has committed.
func (s *Store) inLoggedTx(ctx context.Context, fn func(q Querier) error) error {
	if err := s.db.InTx(ctx, fn); err != nil {
		return err
	}
	s.wake(ctx)
	return nil
}
