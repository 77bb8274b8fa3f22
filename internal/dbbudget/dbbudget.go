// Package dbbudget bounds the time one request may spend in the session
// database, across all of its store calls. Each store call is bounded by the
// statement timeout on its own; without a shared budget a request that makes
// several calls during a database stall answers only after several bounds
// (a login after two, say). The HTTP middleware puts a budget in the
// request's context, and the store charges every call to it: a call gets
// at most what is left, and once nothing is left calls fail at once, so a
// request answers 503 within about one bound whatever it does.
package dbbudget

import (
	"context"
	"sync"
	"time"
)

// Budget is the database time a request has left. Concurrent calls of one
// request are each charged their own elapsed time (the budget errs on the
// side of running out).
type Budget struct {
	mu   sync.Mutex
	left time.Duration
	now  func() time.Time
}

type ctxKey struct{}

// With returns ctx carrying a fresh budget of total.
func With(ctx context.Context, total time.Duration) context.Context {
	return context.WithValue(ctx, ctxKey{}, &Budget{left: total, now: time.Now})
}

// Without returns ctx with no budget, for work a request starts that must
// not be charged to it (it keeps the other values, such as the request id).
func Without(ctx context.Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, (*Budget)(nil))
}

// From returns the budget of ctx, or nil.
func From(ctx context.Context) *Budget {
	b, _ := ctx.Value(ctxKey{}).(*Budget)
	return b
}

// Left is what remains (for tests and logs).
func (b *Budget) Left() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.left
}

// Bound returns ctx bounded by timeout and by what is left of its budget,
// if it has one, and a function that ends the call and charges its
// duration. With nothing left the returned context is already done
// (context.DeadlineExceeded), so the call fails before it touches the
// database.
func Bound(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	b := From(ctx)
	if b == nil {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		return ctx, cancel
	}
	b.mu.Lock()
	left := b.left
	b.mu.Unlock()
	if left < timeout {
		timeout = max(left, 0)
	}
	start := b.now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, func() {
		cancel()
		spent := b.now().Sub(start)
		b.mu.Lock()
		b.left -= spent
		b.mu.Unlock()
	}
}
