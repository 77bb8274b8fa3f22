// Package sqlstore implements identity.Store and sessions.Store once, in SQL
// that PostgreSQL and SQLite both accept, over a small DB interface that each
// backend (pgstore, sqlitestore) provides. The backends differ only in their
// schema files, their drivers' error codes, and how they lock across
// replicas; the semantics the conformance suite checks live here, once.
package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiledgo/server/internal/dbbudget"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/storeerr"
)

// Config is what New needs.
type Config struct {
	DB      DB
	Dialect Dialect
	// Tracer starts one span per store method.
	Tracer trace.Tracer
	// StatementTimeout bounds each store method (each GC batch for GC), so
	// that a database that is down or saturated yields
	// storeerr.ErrUnavailable quickly instead of holding the request.
	StatementTimeout time.Duration
	// Now stamps revocation-log entries of changes whose methods take no
	// time (DeletePrincipal, role and key changes); default time.Now.
	Now func() time.Time
}

// Store implements identity.Store and sessions.Store.
type Store struct {
	db      DB
	dialect Dialect
	tracer  trace.Tracer
	timeout time.Duration
	now     func() time.Time
	hub     hub
	// rotations gathers concurrent refresh rotations (Dialect.BatchRotations).
	rotations rotationBatcher
}

var (
	_ identity.Store = (*Store)(nil)
	_ sessions.Store = (*Store)(nil)
)

// New returns a Store over cfg.DB.
func New(cfg Config) (*Store, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("sqlstore: no DB")
	case cfg.Tracer == nil:
		return nil, errors.New("sqlstore: no tracer")
	case cfg.StatementTimeout <= 0:
		return nil, fmt.Errorf("sqlstore: statement timeout %s must be positive", cfg.StatementTimeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{db: cfg.DB, dialect: cfg.Dialect, tracer: cfg.Tracer, timeout: cfg.StatementTimeout, now: cfg.Now}, nil
}

// op starts the span of one store method and bounds it by the statement
// timeout and by what is left of the request's database budget (dbbudget),
// to which the call's duration is charged. The returned function ends
// both; call it deferred with the method's named error. Expected outcomes (absent, taken, stale) are
// recorded as error.type but do not mark the span failed. No argument value
// is recorded: hashes and keys stay out of traces.
func (s *Store) op(ctx context.Context, name string) (context.Context, func(*error)) {
	ctx, span := s.tracer.Start(ctx, "store."+name,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", s.dialect.System),
			attribute.String("db.operation.name", name),
		))
	ctx, done := dbbudget.Bound(ctx, s.timeout)
	return ctx, func(errp *error) {
		done()
		if err := *errp; err != nil {
			kind := errorKind(err)
			span.SetAttributes(attribute.String("error.type", kind))
			if kind == "unavailable" || kind == "other" {
				span.RecordError(err)
				span.SetStatus(codes.Error, kind)
			}
		}
		span.End()
	}
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, storeerr.ErrNotFound):
		return "not_found"
	case errors.Is(err, storeerr.ErrConflict):
		return "conflict"
	case errors.Is(err, sessions.ErrStaleRefresh):
		return "stale_refresh"
	case errors.Is(err, storeerr.ErrUnavailable):
		return "unavailable"
	default:
		return "other"
	}
}

// ts normalizes a time to what both backends store: UTC, whole
// microseconds. It truncates (PostgreSQL alone would round), so that a time
// compares the same way in both.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// uuidArg binds the zero UUID as NULL.
func uuidArg(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// tsArg is ts for a nullable column.
func tsArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// bytesArg binds nil as NULL (database/sql drivers bind a nil []byte as an
// empty value).
func bytesArg(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// jsonArg encodes v as JSON text, which both jsonb and TEXT columns accept.
func jsonArg(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode JSON column: %w", err)
	}
	return string(b), nil
}

// placeholders returns "$from, $from+1, ..." for n arguments.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// timeCol scans a NOT NULL timestamp: a time.Time from PostgreSQL or integer
// microseconds from SQLite.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	t, err := scanTime(src)
	if err != nil {
		return err
	}
	if t == nil {
		return errors.New("timestamp column: unexpected NULL")
	}
	*c.t = *t
	return nil
}

// nullTimeCol scans a nullable timestamp into a *time.Time.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(src any) error {
	t, err := scanTime(src)
	if err != nil {
		return err
	}
	*c.t = t
	return nil
}

func scanTime(src any) (*time.Time, error) {
	switch v := src.(type) {
	case nil:
		return nil, nil
	case time.Time:
		t := v.UTC()
		return &t, nil
	case int64:
		t := time.UnixMicro(v).UTC()
		return &t, nil
	default:
		return nil, fmt.Errorf("timestamp column: unexpected %T", src)
	}
}

// boolCol scans a boolean: a bool from PostgreSQL or an integer 0/1 from
// SQLite.
type boolCol struct{ b *bool }

func (c boolCol) Scan(src any) error {
	switch v := src.(type) {
	case bool:
		*c.b = v
	case int64:
		*c.b = v != 0
	default:
		return fmt.Errorf("boolean column: unexpected %T", src)
	}
	return nil
}

// jsonCol scans a JSON column (jsonb or TEXT) into dst; NULL leaves it nil.
type jsonCol struct{ dst any }

func (c jsonCol) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("JSON column: unexpected %T", src)
	}
	if err := json.Unmarshal(b, c.dst); err != nil {
		return fmt.Errorf("JSON column: %w", err)
	}
	return nil
}

// scanner is a Row or a Rows.
type scanner interface{ Scan(dest ...any) error }

// collect reads every row of a query with scan.
func collect[T any](ctx context.Context, q Querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// count runs a query returning one integer.
func count(ctx context.Context, q Querier, query string, args ...any) (int, error) {
	var n int64
	if err := q.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		return 0, err
	}
	return int(n), nil
}

// mustAffect turns "no row changed" into storeerr.ErrNotFound.
func mustAffect(n int64, err error) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return storeerr.ErrNotFound
	}
	return nil
}
