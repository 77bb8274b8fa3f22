// Package store opens the session database: principals, identities, roles,
// API keys, sessions, the revocation log and login-flow state, shared by
// every replica so that any replica can serve any request. It picks the
// backend from Tiled's database.uri (PostgreSQL for many replicas, SQLite in
// a file or in memory for one), and manages the schema with goose.
//
// Wiring, in cmd/server:
//
//	opts := store.DefaultOptions()
//	opts.URI, opts.Migrate, opts.Logger = cfg.Database.URI, cfg.Database.InitIfNotExists, logger
//	st, err := store.Open(ctx, opts) // logs which store is in use
//	...
//	readyz: st.Ping(ctx) == nil && st.Migrator().Check(ctx) == nil
//	        (errors.Is(err, store.ErrSchemaStale): migrations pending)
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store/pgstore"
	"github.com/tiledgo/server/internal/store/sqlitestore"
	"github.com/tiledgo/server/migrations"
)

// Store is the session database.
type Store interface {
	identity.Store
	sessions.Store
	// LogFeed wakes a replica's caches after every change to the
	// revocation log (PostgreSQL: LISTEN/NOTIFY; SQLite: in process).
	sessions.LogFeed
	audit.Store
	// Ping checks that the database answers (storeerr.ErrUnavailable if not).
	Ping(ctx context.Context) error
	// PoolStats reports the connection pool, for metrics; false when the
	// backend has none (SQLite).
	PoolStats() (sessions.PoolStats, bool)
	// Close releases the pool (and, for SQLite, the file lock).
	Close() error
	// Backend is BackendPostgres, BackendSQLite or BackendMemory.
	Backend() string
	// Migrator manages this store's schema, over the store's own connections.
	Migrator() *Migrator
}

// Tiled's defaults for its database block (tiled/server/settings.py,
// DatabaseSettings): pool_size 5, max_overflow 5.
const (
	DefaultPoolSize             = 5
	DefaultMaxOverflow          = 5
	DefaultConnectTimeout       = 5 * time.Second
	DefaultStatementTimeout     = 5 * time.Second
	DefaultMigrationLockTimeout = 5 * time.Minute
)

// Options configure Open. Zero durations and a zero PoolSize take the
// defaults above; MaxOverflow is taken as given (0 is a valid Tiled value),
// so start from DefaultOptions to get Tiled's 5.
type Options struct {
	// URI is Tiled's database.uri (see ParseURI); empty means in memory.
	URI string
	// PoolSize and MaxOverflow are Tiled's pool_size and max_overflow; the
	// PostgreSQL pool holds at most their sum. Ignored by SQLite.
	PoolSize    int
	MaxOverflow int
	// ConnectTimeout bounds establishing a connection.
	ConnectTimeout time.Duration
	// StatementTimeout bounds every store method: past it the method fails
	// with storeerr.ErrUnavailable instead of holding the request.
	StatementTimeout time.Duration
	// MigrationLockTimeout bounds waiting for another replica's migration.
	MigrationLockTimeout time.Duration
	// Migrate applies pending migrations while opening (Tiled's
	// init_if_not_exists). An in-memory database is always migrated.
	Migrate bool
	// Logger receives which store is in use and applied migrations.
	Logger *slog.Logger
	// Lazy: an unreachable PostgreSQL is not an error at Open (see
	// pgstore.Config.Lazy). Migrate then fails like any call would, so
	// lazy callers migrate themselves, when the database answers.
	Lazy bool
}

// DefaultOptions returns Tiled's defaults and no URI (in memory).
func DefaultOptions() Options {
	return Options{
		PoolSize:             DefaultPoolSize,
		MaxOverflow:          DefaultMaxOverflow,
		ConnectTimeout:       DefaultConnectTimeout,
		StatementTimeout:     DefaultStatementTimeout,
		MigrationLockTimeout: DefaultMigrationLockTimeout,
	}
}

func (o Options) withDefaults() (Options, error) {
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&o.ConnectTimeout, DefaultConnectTimeout},
		{&o.StatementTimeout, DefaultStatementTimeout},
		{&o.MigrationLockTimeout, DefaultMigrationLockTimeout},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case o.PoolSize < 1:
		return o, fmt.Errorf("database pool_size %d must be at least 1", o.PoolSize)
	case o.MaxOverflow < 0:
		return o, fmt.Errorf("database max_overflow %d must not be negative", o.MaxOverflow)
	case o.ConnectTimeout < 0 || o.StatementTimeout < 0 || o.MigrationLockTimeout < 0:
		return o, errors.New("database timeouts must not be negative")
	}
	return o, nil
}

// backend is what pgstore and sqlitestore provide.
type backend interface {
	identity.Store
	sessions.Store
	sessions.LogFeed
	audit.Store
	Ping(ctx context.Context) error
	PoolStats() (sessions.PoolStats, bool)
	Close() error
}

type opened struct {
	backend
	kind     string
	migrator *Migrator
}

func (o *opened) Backend() string     { return o.kind }
func (o *opened) Migrator() *Migrator { return o.migrator }

// Open connects to the database the URI names, logs which store is in use,
// and migrates if asked to (always, in memory). It does not check the schema
// otherwise: the caller decides, with Migrator().Check, whether to serve.
func Open(ctx context.Context, opts Options) (Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	loc, err := ParseURI(opts.URI)
	if err != nil {
		return nil, err
	}
	var o *opened
	switch loc.Backend {
	case BackendPostgres:
		o, err = openPostgres(ctx, loc, opts)
	default:
		o, err = openSQLite(ctx, loc, opts)
	}
	if err != nil {
		return nil, err
	}
	if opts.Migrate || o.kind == BackendMemory {
		if _, err := o.migrator.Up(ctx); err != nil {
			_ = o.Close()
			return nil, err
		}
	}
	return o, nil
}

func openPostgres(ctx context.Context, loc Location, opts Options) (*opened, error) {
	maxConns := opts.PoolSize + opts.MaxOverflow
	if maxConns < 2 {
		// Migrating holds one connection for the lock and uses another.
		return nil, fmt.Errorf("database pool_size + max_overflow is %d: PostgreSQL needs at least 2", maxConns)
	}
	pg, err := pgstore.Open(ctx, pgstore.Config{
		DSN:              loc.DSN,
		MaxConns:         int32(min(maxConns, 1<<20)),
		ConnectTimeout:   opts.ConnectTimeout,
		StatementTimeout: opts.StatementTimeout,
		Lazy:             opts.Lazy,
	})
	if err != nil {
		return nil, err
	}
	lock := func(ctx context.Context) (func(), error) { return pg.AdvisoryLock(ctx, migrationLockKey) }
	m, err := newMigrator(pg.SQLDB(), goose.DialectPostgres, migrations.Postgres(), lock, opts.MigrationLockTimeout, opts.Logger)
	if err != nil {
		_ = pg.Close()
		return nil, err
	}
	opts.Logger.Info("session database: PostgreSQL, shared by every replica",
		"backend", BackendPostgres, "target", pg.Target(), "max_conns", maxConns)
	return &opened{backend: pg, kind: BackendPostgres, migrator: m}, nil
}

func openSQLite(ctx context.Context, loc Location, opts Options) (*opened, error) {
	lite, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: loc.Path, StatementTimeout: opts.StatementTimeout})
	if err != nil {
		return nil, err
	}
	// One process per file (sqlitestore's lock): nothing to coordinate.
	m, err := newMigrator(lite.SQLDB(), goose.DialectSQLite3, migrations.SQLite(), nil, 0, opts.Logger)
	if err != nil {
		_ = lite.Close()
		return nil, err
	}
	if lite.InMemory() {
		opts.Logger.Warn("session database: in memory; principals, sessions and API keys end with this process. "+
			"Set database.uri (sqlite:///path/auth.db, or postgresql://... for several replicas) to keep them",
			"backend", BackendMemory)
		return &opened{backend: lite, kind: BackendMemory, migrator: m}, nil
	}
	opts.Logger.Info("session database: SQLite file, for this one process only",
		"backend", BackendSQLite, "path", lite.Describe())
	return &opened{backend: lite, kind: BackendSQLite, migrator: m}, nil
}
