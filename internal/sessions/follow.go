package sessions

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// LogReader reads the revocation log (a Store, or the same queries on a
// follower's own connection).
type LogReader interface {
	RevocationsSince(ctx context.Context, after int64, limit int) ([]Revocation, error)
	RevocationLogStart(ctx context.Context, since time.Time) (int64, error)
}

// LogFollower is what a LogFeed drives: a replica's cache of revocations
// and keys (internal/authcache). A feed may call it from several goroutines
// at once (its listener, and writers of this process catching up on their
// own changes), so it serializes its calls itself.
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

// RevocationCache is a replica's memory of revoked sessions and deleted
// principals (internal/authcache), which spares a bearer request the
// session read.
type RevocationCache interface {
	// Revoked says whether a token of that session and principal is
	// refused. known is false when only the database can tell (the cache
	// is not in sync); a revocation it holds is final either way.
	Revoked(sessionID, principalID uuid.UUID) (revoked, known bool)
	// Revoke records a revocation this replica has just committed (the
	// log brings it too, a moment later).
	Revoke(sessionID uuid.UUID, at time.Time)
}
