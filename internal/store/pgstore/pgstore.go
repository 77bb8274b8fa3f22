// Package pgstore is the PostgreSQL backend of the session database, for
// deployments with many replicas: a pgx connection pool, the shared SQL of
// sqlstore, PostgreSQL error codes mapped to storeerr, and advisory locks so
// that replicas order revocations and take turns collecting garbage.
package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel"

	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store/sqlstore"
	"github.com/tiledgo/server/internal/storeerr"
)

// TracerName is the instrumentation scope of this backend's spans.
const TracerName = "github.com/tiledgo/server/internal/store/pgstore"

// revocationLockKey is the transaction-level advisory lock that serializes
// appends to the revocation log (see OrderRevocations).
const revocationLockKey int64 = 0x7469_6c65_6467_0002

// Config is what Open needs.
type Config struct {
	// DSN is a connection URL or keyword/value string that pgx understands.
	DSN string
	// MaxConns caps the pool (Tiled's pool_size + max_overflow).
	MaxConns int32
	// ConnectTimeout bounds establishing one connection.
	ConnectTimeout time.Duration
	// StatementTimeout bounds each store method.
	StatementTimeout time.Duration
	// Lazy opens the pool without requiring the server to answer now:
	// calls fail with storeerr.ErrUnavailable until it does. A replica
	// started while the database is down serves probes (not ready) and
	// answers 503 instead of crash-looping.
	Lazy bool
	// Feed tunes Follow; zero fields take the defaults.
	Feed FeedConfig
}

// FeedConfig tunes the revocation-log feed (Follow).
type FeedConfig struct {
	// Heartbeat is how often the feed pings itself through the database;
	// StaleAfter how long a feed whose pings do not come back is still
	// trusted (the longest a silent connection can hide a revocation).
	Heartbeat, StaleAfter time.Duration
	// ReconnectDelay is the pause before the listener reconnects.
	ReconnectDelay time.Duration
}

// dialect is PostgreSQL's SQL for sqlstore.
var dialect = sqlstore.Dialect{
	System:     "postgresql",
	ForUpdate:  " FOR UPDATE",
	SkipLocked: " FOR UPDATE SKIP LOCKED",
	JSONAgg:    "json_agg",
	JSONArray:  "json_build_array",
	// Rotations arriving together share a statement and its commit.
	BatchRotations: true,
}

// Store is the PostgreSQL session database.
type Store struct {
	*sqlstore.Store
	pool    *pgxpool.Pool
	sqlDB   *sql.DB
	target  string
	timeout time.Duration
	feedCfg FeedConfig
}

// Open connects a pool and checks that the server answers within the
// connect timeout. An unreachable server is storeerr.ErrUnavailable; bad
// credentials or a missing database are other errors, since waiting will not
// fix them.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.MaxConns < 1 || cfg.ConnectTimeout <= 0 {
		return nil, fmt.Errorf("postgresql: max connections %d and connect timeout %s must be positive", cfg.MaxConns, cfg.ConnectTimeout)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgresql connection string: %w", err)
	}
	pcfg.MaxConns = cfg.MaxConns
	pcfg.MinConns = 0
	pcfg.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	// A span per statement and per pool acquire, under the store method's
	// span, with db.namespace, server.address and server.port. The SQL text
	// is recorded (it holds placeholders, never values); parameters are not.
	pcfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTrimSQLInSpanName())
	if _, ok := pcfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "tiledgo-server"
	}
	target := fmt.Sprintf("%s@%s:%d/%s", pcfg.ConnConfig.User, pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgresql %s: %w", target, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil && !cfg.Lazy {
		pool.Close()
		return nil, fmt.Errorf("connect to postgresql %s: %w", target, mapErr(err))
	}
	engine, err := sqlstore.New(sqlstore.Config{
		DB:               &db{querier: querier{pool}, pool: pool},
		Dialect:          dialect,
		Tracer:           otel.Tracer(TracerName),
		StatementTimeout: cfg.StatementTimeout,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	fc := cfg.Feed
	if fc.Heartbeat <= 0 {
		fc.Heartbeat = DefaultHeartbeat
	}
	if fc.StaleAfter <= 0 {
		fc.StaleAfter = DefaultStaleAfter
	}
	if fc.ReconnectDelay <= 0 {
		fc.ReconnectDelay = DefaultReconnectDelay
	}
	return &Store{Store: engine, pool: pool, sqlDB: stdlib.OpenDBFromPool(pool), target: target,
		timeout: cfg.StatementTimeout, feedCfg: fc}, nil
}

// Target names the server and database, without the password, for logs.
func (s *Store) Target() string { return s.target }

// PoolStats reports the connection pool's state, for metrics.
func (s *Store) PoolStats() (sessions.PoolStats, bool) {
	st := s.pool.Stat()
	return sessions.PoolStats{
		Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns(), Max: st.MaxConns(),
		Constructing: st.ConstructingConns(), Acquires: st.AcquireCount(), EmptyAcquires: st.EmptyAcquireCount(),
		CanceledAcquires: st.CanceledAcquireCount(), AcquireDuration: st.AcquireDuration(),
	}, true
}

// SQLDB is a database/sql view of the pool, for the migrator.
func (s *Store) SQLDB() *sql.DB { return s.sqlDB }

// Ping checks that a connection can be had and answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgresql %s: %w", s.target, mapErr(err))
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	err := s.sqlDB.Close()
	s.pool.Close()
	return err
}

// pgQuerier is what a pool, a connection and a transaction have in common.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier adapts pgx to sqlstore.Querier, mapping errors.
type querier struct{ q pgQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, query, uuidArgs(args)...)
	return tag.RowsAffected(), mapErr(err)
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	r, err := q.q.Query(ctx, query, uuidArgs(args)...)
	if err != nil {
		return nil, mapErr(err)
	}
	return rows{r}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return row{q.q.QueryRow(ctx, query, uuidArgs(args)...)}
}

type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error { return mapErr(r.r.Scan(uuidDests(dest)...)) }

type rows struct{ pgx.Rows }

func (r rows) Scan(dest ...any) error { return mapErr(r.Rows.Scan(uuidDests(dest)...)) }

// The store's ids are google/uuid values, which pgx knows only as a
// driver.Valuer and sql.Scanner: through their text form, with a failed
// binary attempt and its error allocated first. uuidArgs and uuidDests
// hand pgx its own binary UUID forms instead (in place: the slices are
// the calls' own variadic arguments).
func uuidArgs(args []any) []any {
	for i, a := range args {
		if u, ok := a.(uuid.UUID); ok {
			args[i] = pgtype.UUID{Bytes: u, Valid: true}
		}
	}
	return args
}

func uuidDests(dest []any) []any {
	for i, d := range dest {
		if u, ok := d.(*uuid.UUID); ok {
			dest[i] = uuidDest{u}
		}
	}
	return dest
}

// uuidDest scans a uuid column into a uuid.UUID; NULL is the zero UUID, as
// uuid.UUID.Scan has it.
type uuidDest struct{ u *uuid.UUID }

func (d uuidDest) ScanUUID(v pgtype.UUID) error {
	*d.u = v.Bytes // zero when !v.Valid
	return nil
}
func (r rows) Err() error { return mapErr(r.Rows.Err()) }

// db adds transactions and advisory locks to querier.
type db struct {
	querier
	pool *pgxpool.Pool
}

func (d *db) InTx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return mapErr(pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(querier{tx}) }))
}

// Exclusive runs fn on the connection holding the session-level advisory
// lock key, if no other session holds it.
func (d *db) Exclusive(ctx context.Context, key int64, fn func(sqlstore.Querier) error) (bool, error) {
	conn, err := sessionLock(ctx, d.pool, key, true)
	if err != nil || conn == nil {
		return false, err
	}
	defer sessionUnlock(ctx, conn, key)
	return true, fn(querier{conn})
}

// AdvisoryLock waits (until ctx ends) for the session-level advisory lock
// key, which one session across all replicas holds at a time, and returns
// the function that releases it. It holds one pooled connection meanwhile.
func (s *Store) AdvisoryLock(ctx context.Context, key int64) (unlock func(), err error) {
	conn, err := sessionLock(ctx, s.pool, key, false)
	if err != nil {
		return nil, err
	}
	return func() { sessionUnlock(ctx, conn, key) }, nil
}

// sessionLock takes the advisory lock key on a connection of its own. With
// try set it does not wait, and returns a nil connection if another session
// holds the lock.
func sessionLock(ctx context.Context, pool *pgxpool.Pool, key int64, try bool) (*pgxpool.Conn, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	locked := true
	if try {
		err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked)
	} else {
		_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key)
	}
	if err != nil {
		// A wait cut short may still have been granted: drop the session
		// rather than pool it with the lock possibly held.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
	}
	if err != nil || !locked {
		conn.Release()
		return nil, mapErr(err)
	}
	return conn, nil
}

// sessionUnlock releases the lock and the connection. A connection whose
// unlock fails is closed rather than returned to the pool with the lock
// still held; closing the session releases the lock.
func sessionUnlock(ctx context.Context, conn *pgxpool.Conn, key int64) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
		_ = conn.Conn().Close(uctx)
	}
	conn.Release()
}

// OrderRevocations takes a transaction-level advisory lock before the log
// insert. Without it, a transaction that drew seq 7 could commit after one
// that drew seq 8, and a follower that had already read 8 would never see 7.
// Revocations are rare, so serializing them costs nothing noticeable.
func (d *db) OrderRevocations(ctx context.Context, q sqlstore.Querier) error {
	_, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, revocationLockKey)
	return err
}

// Notify sends a notification on NotifyChannel in the transaction, which
// PostgreSQL delivers to listeners only once it commits. It carries the
// entry, so that followers need not read it back.
func (d *db) Notify(ctx context.Context, q sqlstore.Querier, e sessions.Revocation) error {
	_, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, payloadLog+e.Payload())
	return err
}

// PostgreSQL error codes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// unavailable reports the conditions that pass: the server is unreachable,
// shutting down or overloaded, or chose this transaction as a deadlock or
// serialization victim.
func unavailable(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "08", // connection exception
		"53", // insufficient resources (too_many_connections, out of memory, disk full)
		"57", // operator intervention (admin_shutdown, cannot_connect_now, query_canceled)
		"40", // transaction rollback (serialization_failure, deadlock_detected)
		"55": // object not in prerequisite state (lock_not_available)
		return true
	}
	return false
}

// mapErr turns a pgx error into the storeerr sentinels, keeping the cause.
func mapErr(err error) error {
	if err == nil || isMapped(err) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", storeerr.ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == uniqueViolation:
			return fmt.Errorf("%w: %w", storeerr.ErrConflict, err)
		case pgErr.Code == foreignKeyViolation:
			return fmt.Errorf("%w: %w", storeerr.ErrNotFound, err)
		case unavailable(pgErr.Code):
			return fmt.Errorf("%w: %w", storeerr.ErrUnavailable, err)
		}
		// Anything else the server said (bad credentials, missing database,
		// a constraint the store should have checked) will not pass by
		// waiting, so it is not "unavailable".
		return err
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %w", storeerr.ErrUnavailable, err)
	}
	return err
}

// isMapped reports an error that already carries a sentinel (for example one
// returned by the function given to InTx).
func isMapped(err error) bool {
	return errors.Is(err, storeerr.ErrNotFound) || errors.Is(err, storeerr.ErrConflict) ||
		errors.Is(err, storeerr.ErrUnavailable) || errors.Is(err, sessions.ErrStaleRefresh)
}
