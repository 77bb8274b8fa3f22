// Package sqlitestore is the embedded backend of the session database, for
// `make run` and single-node servers: SQLite through the pure-Go
// modernc.org/sqlite driver, in a file or in memory, with the shared SQL of
// sqlstore.
//
// All statements go through one connection, so writes are serialized in
// this process and the races the conformance suite runs (many goroutines
// rotating one refresh token) resolve exactly as they do in PostgreSQL.
// A database file serves one process only: Open takes an exclusive lock on a
// sidecar "<file>-lock" and refuses a file another process has open.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store/sqlstore"
	"github.com/tiledgo/server/internal/storeerr"
)

// TracerName is the instrumentation scope of this backend's spans.
const TracerName = "github.com/tiledgo/server/internal/store/sqlitestore"

// ErrInUse: the database file is open in another process (or another Store
// of this process).
var ErrInUse = errors.New("sqlite database is in use by another process")

// Config is what Open needs.
type Config struct {
	// Path is the database file, created if missing; empty means a private
	// in-memory database that ends with the Store.
	Path string
	// StatementTimeout bounds each store method, and is SQLite's busy timeout.
	StatementTimeout time.Duration
}

// Store is the SQLite session database.
type Store struct {
	*sqlstore.Store
	db   *sql.DB
	path string // absolute; "" in memory
	// keeper holds the in-memory database open: SQLite drops a memory
	// database when its last connection closes.
	keeper *sql.DB
	lock   *os.File
}

// Open opens (creating if needed) the database at cfg.Path, or a fresh
// in-memory database. It does not migrate.
func Open(ctx context.Context, cfg Config) (_ *Store, err error) {
	if cfg.StatementTimeout <= 0 {
		return nil, fmt.Errorf("sqlite: statement timeout %s must be positive", cfg.StatementTimeout)
	}
	s := &Store{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.StatementTimeout.Milliseconds()))
	params.Add("_pragma", "foreign_keys(1)")
	params.Set("_time_integer_format", "unix_micro")
	params.Set("_txlock", "immediate")
	var dsn string
	if cfg.Path == "" {
		// A name unique to this Store, so that two Stores in one process
		// (tests, mostly) do not share a database through the shared cache.
		params.Set("mode", "memory")
		params.Set("cache", "shared")
		dsn = "file:tiledgo-" + uuid.NewString() + "?" + params.Encode()
	} else {
		if s.path, err = filepath.Abs(cfg.Path); err != nil {
			return nil, fmt.Errorf("sqlite database %s: %w", cfg.Path, err)
		}
		if fi, err := os.Stat(filepath.Dir(s.path)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("sqlite database %s: directory %s does not exist", s.path, filepath.Dir(s.path))
		}
		if s.lock, err = lockFile(s.path + "-lock"); err != nil {
			return nil, fmt.Errorf("sqlite database %s: %w", s.path, err)
		}
		params.Add("_pragma", "journal_mode(WAL)")
		dsn = (&url.URL{Scheme: "file", Path: s.path, RawQuery: params.Encode()}).String()
	}
	if s.db, err = sql.Open("sqlite", dsn); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.db.SetMaxOpenConns(1)
	s.db.SetMaxIdleConns(1)
	s.db.SetConnMaxLifetime(0)
	s.db.SetConnMaxIdleTime(0)
	if err := s.db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", s.Describe(), err)
	}
	if s.path == "" {
		if s.keeper, err = sql.Open("sqlite", dsn); err == nil {
			s.keeper.SetMaxOpenConns(1)
			s.keeper.SetConnMaxLifetime(0)
			s.keeper.SetConnMaxIdleTime(0)
			err = s.keeper.PingContext(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("open in-memory sqlite database: %w", err)
		}
	}
	s.Store, err = sqlstore.New(sqlstore.Config{
		DB:               &db{querier: querier{s.db}, db: s.db},
		Dialect:          sqlstore.Dialect{System: "sqlite", JSONAgg: "json_group_array", JSONArray: "json_array"},
		Tracer:           otel.Tracer(TracerName),
		StatementTimeout: cfg.StatementTimeout,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Describe names the database for logs: its absolute path, or "in memory".
func (s *Store) Describe() string {
	if s.path == "" {
		return "in memory"
	}
	return s.path
}

// InMemory reports whether the database ends with the Store.
func (s *Store) InMemory() bool { return s.path == "" }

// SQLDB is the database/sql handle, for the migrator. It has one connection,
// shared with the store.
func (s *Store) SQLDB() *sql.DB { return s.db }

// PoolStats implements the store's pool report: SQLite has no pool worth
// reporting (one connection, one process).
func (s *Store) PoolStats() (sessions.PoolStats, bool) { return sessions.PoolStats{}, false }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite database %s: %w", s.Describe(), mapErr(err))
	}
	return nil
}

// Close closes the database and releases the file lock. The lock file stays:
// deleting it could let two later processes lock two different files.
func (s *Store) Close() error {
	var errs []error
	for _, d := range []*sql.DB{s.db, s.keeper} {
		if d != nil {
			errs = append(errs, d.Close())
		}
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // closing the descriptor releases flock
	}
	return errors.Join(errs...)
}

// sqlQuerier is what *sql.DB and *sql.Tx have in common.
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// querier adapts database/sql to sqlstore.Querier, mapping errors.
type querier struct{ q sqlQuerier }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n, mapErr(err)
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	r, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return rows{r}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return row{q.q.QueryRowContext(ctx, query, args...)}
}

type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error { return mapErr(r.r.Scan(dest...)) }

type rows struct{ r *sql.Rows }

func (r rows) Next() bool             { return r.r.Next() }
func (r rows) Scan(dest ...any) error { return mapErr(r.r.Scan(dest...)) }
func (r rows) Err() error             { return mapErr(r.r.Err()) }
func (r rows) Close()                 { _ = r.r.Close() }

// db adds transactions to querier. One process and one connection mean
// there is no other replica to exclude, no commit order to enforce and no
// other process to notify.
type db struct {
	querier
	db *sql.DB
}

func (d *db) InTx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	if err := fn(querier{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return mapErr(tx.Commit())
}

func (d *db) Exclusive(ctx context.Context, _ int64, fn func(sqlstore.Querier) error) (bool, error) {
	return true, fn(d.querier)
}

func (d *db) OrderRevocations(context.Context, sqlstore.Querier) error { return nil }

// Notify has nobody to tell: every follower is in this process, and the
// Store wakes those itself after the commit.
func (d *db) Notify(context.Context, sqlstore.Querier, sessions.Revocation) error { return nil }

// mapErr turns a SQLite error into the storeerr sentinels, keeping the cause.
func mapErr(err error) error {
	if err == nil || isMapped(err) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", storeerr.ErrNotFound, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", storeerr.ErrUnavailable, err)
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch code := se.Code(); {
	case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", storeerr.ErrConflict, err)
	case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %w", storeerr.ErrNotFound, err)
	case code&0xff == sqlite3.SQLITE_BUSY || code&0xff == sqlite3.SQLITE_LOCKED || code&0xff == sqlite3.SQLITE_INTERRUPT:
		return fmt.Errorf("%w: %w", storeerr.ErrUnavailable, err)
	}
	return err
}

func isMapped(err error) bool {
	return errors.Is(err, storeerr.ErrNotFound) || errors.Is(err, storeerr.ErrConflict) ||
		errors.Is(err, storeerr.ErrUnavailable) || errors.Is(err, sessions.ErrStaleRefresh)
}
