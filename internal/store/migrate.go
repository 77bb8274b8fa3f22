package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
)

// ErrSchemaStale: the database lacks migrations this binary needs. Serving
// on it would fail at the first query, so the server refuses to become
// ready until `server migrate up` (or database.init_if_not_exists) runs.
var ErrSchemaStale = errors.New("session database schema is not up to date")

// VersionTable is where goose records applied migrations.
const VersionTable = "goose_db_version"

// migrationLockKey names the PostgreSQL advisory lock migrations run under.
const migrationLockKey int64 = 0x7469_6c65_6467_0003

// MigrationState is one migration as `server migrate status` shows it.
type MigrationState struct {
	Version int64
	// Name is the migration's file name, e.g. 00001_init.sql.
	Name    string
	Applied bool
	// AppliedAt is when it was applied (zero if pending), as goose recorded it.
	AppliedAt time.Time
}

// MigrationResult is one migration applied or rolled back.
type MigrationResult struct {
	Version   int64
	Name      string
	Direction string // "up" or "down"
	Duration  time.Duration
}

// Migrator applies the embedded migrations of one backend with goose's
// Provider. On PostgreSQL, Up and DownTo run whole under a session-level
// advisory lock (pg_advisory_lock, waiting in the server's queue), so that
// replicas starting together migrate once, one after another, and the rest
// find nothing left to do. The lock wraps the whole call rather than being
// goose's WithSessionLocker, because goose checks for pending migrations
// and creates its version table before taking that lock: replicas racing
// there retry after a second each, where this way they wait only for the
// one migration. Status and Pending only read: they take no lock and create
// nothing, so readiness probes can call them freely.
type Migrator struct {
	provider *goose.Provider
	versions database.Store
	db       *sql.DB
	// lock, if set, takes the cluster-wide migration lock.
	lock     func(ctx context.Context) (unlock func(), err error)
	lockWait time.Duration
	logger   *slog.Logger
}

type lockFunc = func(ctx context.Context) (unlock func(), err error)

func newMigrator(db *sql.DB, dialect goose.Dialect, fsys fs.FS, lock lockFunc, lockWait time.Duration, logger *slog.Logger) (*Migrator, error) {
	p, err := goose.NewProvider(dialect, db, fsys, goose.WithTableName(VersionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	versions, err := database.NewStore(dialect, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return &Migrator{provider: p, versions: versions, db: db, lock: lock, lockWait: lockWait, logger: logger}, nil
}

// locked runs fn holding the migration lock, if the backend has one.
func (m *Migrator) locked(ctx context.Context, fn func() error) error {
	if m.lock == nil {
		return fn()
	}
	lctx, cancel := context.WithTimeout(ctx, m.lockWait)
	defer cancel()
	unlock, err := m.lock(lctx)
	if err != nil {
		return fmt.Errorf("wait for the migration lock (another replica migrating for over %s?): %w", m.lockWait, err)
	}
	defer unlock()
	return fn()
}

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) (_ []MigrationResult, err error) {
	// One span for the whole run (the lock wait included); each migration's
	// statements nest under it, from the pgx tracer.
	ctx, span := otel.Tracer(tracerName).Start(ctx, "store.migrate.up")
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, "migration failed")
			span.RecordError(err)
		}
		span.End()
	}()
	var res []*goose.MigrationResult
	err = m.locked(ctx, func() (err error) {
		res, err = m.provider.Up(ctx)
		return err
	})
	out := m.results(res)
	span.SetAttributes(attribute.Int("tiled.migrations.applied", len(out)))
	if err != nil {
		return out, fmt.Errorf("migrate up: %w", err)
	}
	return out, nil
}

// tracerName names the migrator's spans.
const tracerName = "github.com/tiledgo/server/internal/store"

// DownTo rolls back every migration above version (0 empties the database).
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]MigrationResult, error) {
	if version < 0 {
		return nil, fmt.Errorf("migrate down-to %d: version must not be negative", version)
	}
	var res []*goose.MigrationResult
	err := m.locked(ctx, func() (err error) {
		res, err = m.provider.DownTo(ctx, version)
		return err
	})
	out := m.results(res)
	if err != nil {
		return out, fmt.Errorf("migrate down-to %d: %w", version, err)
	}
	return out, nil
}

func (m *Migrator) results(res []*goose.MigrationResult) []MigrationResult {
	out := make([]MigrationResult, 0, len(res))
	for _, r := range res {
		mr := MigrationResult{Version: r.Source.Version, Name: path.Base(r.Source.Path), Direction: r.Direction, Duration: r.Duration}
		m.logger.Info("schema migration", "version", mr.Version, "name", mr.Name, "direction", mr.Direction, "duration", mr.Duration)
		out = append(out, mr)
	}
	return out
}

// Status lists every migration this binary knows, oldest first, and whether
// the database has it.
func (m *Migrator) Status(ctx context.Context) ([]MigrationState, error) {
	exists, err := m.tableExists(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	var out []MigrationState
	for _, src := range m.provider.ListSources() {
		st := MigrationState{Version: src.Version, Name: path.Base(src.Path)}
		if exists {
			r, err := m.versions.GetMigration(ctx, m.db, src.Version)
			switch {
			case errors.Is(err, database.ErrVersionNotFound):
			case err != nil:
				return nil, fmt.Errorf("migration status of version %d: %w", src.Version, err)
			default:
				st.Applied, st.AppliedAt = r.IsApplied, r.Timestamp.UTC()
			}
		}
		out = append(out, st)
	}
	return out, nil
}

func (m *Migrator) tableExists(ctx context.Context) (bool, error) {
	if ext, ok := m.versions.(database.StoreExtender); ok {
		exists, err := ext.TableExists(ctx, m.db)
		if !errors.Is(err, errors.ErrUnsupported) {
			return exists, err
		}
	}
	// goose has no catalog query for SQLite; ask sqlite_master.
	var n int
	err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1`,
		VersionTable).Scan(&n)
	return n > 0, err
}

// Pending counts the migrations the database lacks. The readiness check
// calls it (or Check): ready only when it returns 0, nil.
func (m *Migrator) Pending(ctx context.Context) (int, error) {
	states, err := m.Status(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, st := range states {
		if !st.Applied {
			n++
		}
	}
	return n, nil
}

// Check returns nil when the schema is current, an error wrapping
// ErrSchemaStale (with the remedy) when migrations are pending, and another
// error when the database cannot be asked.
func (m *Migrator) Check(ctx context.Context) error {
	n, err := m.Pending(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: %d migration(s) pending; run `server migrate up` or set database.init_if_not_exists: true", ErrSchemaStale, n)
	}
	return nil
}

// Version is the highest schema version applied (0 on an empty database).
func (m *Migrator) Version(ctx context.Context) (int64, error) {
	v, err := m.provider.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
