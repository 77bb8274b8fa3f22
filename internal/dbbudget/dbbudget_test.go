package dbbudget

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock lets the test say how long each call took.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestBound(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	ctx := With(context.Background(), 5*time.Second)
	From(ctx).now = clock.now

	deadlineIn := func(ctx context.Context) time.Duration {
		d, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		return time.Until(d)
	}
	// A first call gets the per-call timeout (smaller than the budget).
	c1, end1 := Bound(ctx, 2*time.Second)
	if d := deadlineIn(c1); d > 2*time.Second || d < time.Second {
		t.Fatalf("first call's deadline in %s, want about 2s", d)
	}
	clock.t = clock.t.Add(2 * time.Second) // it stalled for its whole bound
	end1()
	if l := From(ctx).Left(); l != 3*time.Second {
		t.Fatalf("left after 2s: %s", l)
	}
	// A second call gets what is left when that is less than its bound.
	c2, end2 := Bound(ctx, 5*time.Second)
	if d := deadlineIn(c2); d > 3*time.Second || d < 2*time.Second {
		t.Fatalf("second call's deadline in %s, want about 3s (what is left)", d)
	}
	clock.t = clock.t.Add(3 * time.Second)
	end2()
	// Nothing is left: the next call's context is done before it starts.
	c3, end3 := Bound(ctx, 5*time.Second)
	defer end3()
	if !errors.Is(c3.Err(), context.DeadlineExceeded) {
		t.Fatalf("exhausted budget: ctx err %v, want DeadlineExceeded", c3.Err())
	}
}

func TestBoundWithoutBudget(t *testing.T) {
	ctx, end := Bound(context.Background(), time.Second)
	defer end()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Second {
		t.Fatalf("deadline %v %v", d, ok)
	}
	ctx = Without(With(context.Background(), time.Nanosecond))
	if From(ctx) != nil {
		t.Fatal("Without kept the budget")
	}
	c, end2 := Bound(ctx, time.Second)
	defer end2()
	if c.Err() != nil {
		t.Fatal("a call without a budget was cut short")
	}
}
