package sessions

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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
	// Apply takes one entry as a notification carried it. It reports false
	// when the entry does not follow what the follower has read (a gap:
	// the feed then calls CatchUp), true when it is applied or already
	// known.
	Apply(e Revocation) bool
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

// Payload is the entry as a notification carries it, so that a follower
// can apply it without reading the log: "seq kind session principal key
// micros", the ids in their canonical form (the zero UUID when unset).
func (r Revocation) Payload() string {
	return strconv.FormatInt(r.Seq, 10) + " " + string(r.Kind) + " " + r.SessionID.String() + " " +
		r.PrincipalID.String() + " " + r.APIKeyID.String() + " " + strconv.FormatInt(r.RevokedAt.UnixMicro(), 10)
}

// ParseRevocationPayload reads what Payload wrote.
func ParseRevocationPayload(s string) (Revocation, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		return Revocation{}, fmt.Errorf("revocation payload: %d fields, want 6", len(f))
	}
	var r Revocation
	var err error
	if r.Seq, err = strconv.ParseInt(f[0], 10, 64); err != nil || r.Seq <= 0 {
		return Revocation{}, fmt.Errorf("revocation payload: seq %q", f[0])
	}
	r.Kind = RevocationKind(f[1])
	for i, dst := range []*uuid.UUID{&r.SessionID, &r.PrincipalID, &r.APIKeyID} {
		if *dst, err = uuid.Parse(f[2+i]); err != nil {
			return Revocation{}, fmt.Errorf("revocation payload: %w", err)
		}
	}
	us, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil {
		return Revocation{}, fmt.Errorf("revocation payload: time %q", f[5])
	}
	r.RevokedAt = time.UnixMicro(us).UTC()
	return r, nil
}
