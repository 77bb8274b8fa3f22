package sessions

import (
	"context"
	"time"
)

// LogReader reads the revocation log (a Store, or the same queries on a
// follower's own connection).
type LogReader interface {
	RevocationsSince(ctx context.Context, after int64, limit int) ([]Revocation, error)
	RevocationLogStart(ctx context.Context, since time.Time) (int64, error)
}

// LogFollower is what a LogFeed drives: a replica's cache of revocations
// and keys (internal/authcache). The feed calls it from one goroutine.
type LogFollower interface {
	// Resync rebuilds the follower from the log. The feed calls it whenever
	// it starts delivering wake-ups (at start, after every reconnection),
	// once it is sure every change committed from then on will wake it.
	Resync(ctx context.Context, log LogReader) error
	// CatchUp reads what the log gained since the last Resync or CatchUp.
	// The feed calls it after each commit that appended to the log.
	CatchUp(ctx context.Context, log LogReader) error
	// Lost says the feed can no longer vouch that every commit wakes the
	// follower (connection lost, a read failed, or its heartbeat went
	// unanswered for too long) until the next Resync.
	Lost(err error)
}

// LogFeed wakes a follower after every commit that appended to the log.
type LogFeed interface {
	// Follow drives f until ctx ends. A feed that can lose wake-ups
	// (PostgreSQL LISTEN over a network) says so with f.Lost and resyncs f
	// once it is back. It returns ctx's error.
	Follow(ctx context.Context, f LogFollower) error
}
