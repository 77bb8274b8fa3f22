package sqlstore

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiledgo/server/internal/sessions"
)

// GCLockKey names the lock under which one replica at a time collects (in
// PostgreSQL, an advisory lock visible in pg_locks while GC runs).
const GCLockKey int64 = 0x7469_6c65_6467_0001 // "tiledg" 0001

// gcTarget is one kind of row GC deletes: those of table (keyed by key)
// matching cond, where $1 is the cutoff time.
type gcTarget struct {
	table, key, cond string
	count            func(*sessions.GCResult) *int64
	// cutoff is the time rows are compared with; ok false skips the table.
	cutoff func(now time.Time, p sessions.GCPolicy) (time.Time, bool)
}

func atNow(now time.Time, _ sessions.GCPolicy) (time.Time, bool) { return now, true }

func retained(now time.Time, p sessions.GCPolicy) (time.Time, bool) {
	return ts(now.Add(-p.Retain)), true
}

func auditRetained(now time.Time, p sessions.GCPolicy) (time.Time, bool) {
	if p.AuditRetain <= 0 {
		return time.Time{}, false // kept for ever
	}
	return ts(now.Add(-p.AuditRetain)), true
}

func gcTargets() []gcTarget {
	return []gcTarget{
		// refresh_expires_at has no index (migration 00005 dropped it so
		// that rotations are HOT updates): this scans the table, which is
		// the collector's cost to bear rather than every refresh's.
		{"sessions", "id", "revoked_at <= $1 OR refresh_expires_at <= $1 OR expires_at <= $1",
			func(r *sessions.GCResult) *int64 { return &r.Sessions }, retained},
		{"pending_devices", "id", "expires_at <= $1",
			func(r *sessions.GCResult) *int64 { return &r.PendingDevices }, atNow},
		{"auth_states", "state_hash", "expires_at <= $1",
			func(r *sessions.GCResult) *int64 { return &r.AuthStates }, atNow},
		{"login_attempts", "key", "window_end <= $1",
			func(r *sessions.GCResult) *int64 { return &r.LoginAttempts }, atNow},
		{"api_keys", "id", "expires_at <= $1",
			func(r *sessions.GCResult) *int64 { return &r.APIKeys }, atNow},
		{"revocations", "seq", "revoked_at <= $1",
			func(r *sessions.GCResult) *int64 { return &r.Revocations }, retained},
		{"audit_events", "id", "at < $1",
			func(r *sessions.GCResult) *int64 { return &r.AuditEvents }, auditRetained},
	}
}

// GC implements sessions.Store. A row ends at the boundary itself: a session
// is deleted once now-retain has reached its revocation, refresh expiry or
// hard expiry, whichever came first; a revocation-log entry once now-retain
// has reached its time; the rest once now has reached their expiry. An
// audit event is deleted once it is older than the audit retention (an
// event exactly that old is kept).
//
// It runs under a lock that one replica holds at a time; if another replica
// is collecting, it returns an empty result at once. Each batch is its own
// statement (and, in PostgreSQL, skips rows other transactions hold), so no
// lock is held long, and each batch gets the statement timeout.
func (s *Store) GC(ctx context.Context, now time.Time, p sessions.GCPolicy) (res sessions.GCResult, err error) {
	ctx, span := s.tracer.Start(ctx, "store.GC", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", s.dialect.System), attribute.String("db.operation.name", "GC")))
	defer span.End()
	if p.Batch <= 0 || p.Retain < 0 || p.AuditRetain < 0 {
		return res, fmt.Errorf("gc: batch %d must be positive and retain %s, audit retain %s not negative", p.Batch, p.Retain, p.AuditRetain)
	}
	now = ts(now)
	ran, err := s.db.Exclusive(ctx, GCLockKey, func(q Querier) error {
		for _, t := range gcTargets() {
			cutoff, ok := t.cutoff(now, p)
			if !ok {
				continue
			}
			n, err := s.gcTable(ctx, q, t, cutoff, p.Batch)
			*t.count(&res) = n
			if err != nil {
				return fmt.Errorf("gc %s: %w", t.table, err)
			}
		}
		return nil
	})
	span.SetAttributes(attribute.Bool("gc.ran", ran))
	if err != nil {
		span.RecordError(err)
		return res, err
	}
	return res, nil
}

func (s *Store) gcTable(ctx context.Context, q Querier, t gcTarget, cutoff time.Time, batch int) (int64, error) {
	stmt := `DELETE FROM ` + t.table + ` WHERE ` + t.key + ` IN (SELECT ` + t.key + ` FROM ` + t.table +
		` WHERE ` + t.cond + ` LIMIT $2` + s.dialect.SkipLocked + `)`
	var total int64
	for {
		bctx, cancel := context.WithTimeout(ctx, s.timeout)
		n, err := q.Exec(bctx, stmt, cutoff, batch)
		cancel()
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
	}
}
