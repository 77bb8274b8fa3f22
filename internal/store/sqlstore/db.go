package sqlstore

import (
	"context"

	"github.com/tiledgo/server/internal/sessions"
)

// Querier runs statements on a pool, a connection or inside a transaction.
// Queries use $1, $2, ... placeholders, which both PostgreSQL and SQLite read
// positionally. Every error it returns, including those surfacing from
// Row.Scan, Rows.Scan, Rows.Err and Commit, has already been mapped by the
// backend: storeerr.ErrNotFound for "no rows" and foreign-key violations,
// storeerr.ErrConflict for uniqueness violations, storeerr.ErrUnavailable
// for an unreachable, busy or timed-out database (each wrapping the cause).
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Row is the result of QueryRow: Scan returns storeerr.ErrNotFound if the
// query produced no row.
type Row interface {
	Scan(dest ...any) error
}

// Rows iterates over a query result.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// DB is what a backend gives the engine: a Querier that can also run
// transactions and coordinate replicas.
type DB interface {
	Querier
	// InTx runs fn in a transaction, committing if fn returns nil and rolling
	// back otherwise. fn must use only the Querier it is given.
	InTx(ctx context.Context, fn func(q Querier) error) error
	// Exclusive runs fn while holding the lock named by key, which at most one
	// caller across every process sharing the database holds at a time. If
	// another caller holds it, Exclusive returns false without running fn.
	Exclusive(ctx context.Context, key int64, fn func(q Querier) error) (bool, error)
	// OrderRevocations is called inside the revoking transaction just before
	// a revocation-log entry is inserted. It must make log entries become
	// visible in the order of their sequence numbers, so that a follower that
	// has read up to seq N never later finds a committed entry below N.
	OrderRevocations(ctx context.Context, q Querier) error
	// Notify is called inside a transaction that appended to the revocation
	// log. It must wake the followers in other processes once the
	// transaction has committed, and never before (PostgreSQL: NOTIFY).
	// Followers in this process are woken by the Store itself (Subscribe).
	// e is the entry just appended, with its Seq, for the notification to
	// carry.
	Notify(ctx context.Context, q Querier, e sessions.Revocation) error
}

// Dialect holds the few pieces of SQL that differ between backends beyond
// the schema itself.
type Dialect struct {
	// System names the database for OpenTelemetry (db.system.name).
	System string
	// ForUpdate is appended to a SELECT inside a transaction to lock the rows
	// it returns; empty for a backend whose writers are already serialized.
	ForUpdate string
	// SkipLocked is appended to the sub-select of a batched delete so that it
	// skips rows another transaction is working on; empty where unsupported.
	SkipLocked string
	// JSONAgg aggregates values into a JSON array (json_agg,
	// json_group_array); JSONArray builds one from its arguments
	// (json_build_array, json_array).
	JSONAgg, JSONArray string
	// BatchRotations: refresh rotations that arrive together share one
	// UPDATE ... FROM (VALUES ...) statement with PostgreSQL casts
	// (rotationBatcher). SQLite serializes its writers anyway.
	BatchRotations bool
}
