package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/storeerr"
)

// Limits of rotationBatcher.
const (
	// maxRotationBatch bounds the rotations one statement carries (six
	// parameters each).
	maxRotationBatch = 64
	// maxRotationBatchesInFlight bounds the statements running at once.
	// One, as in group commit: rotations that arrive while it runs go
	// together in the next one. On the two-core bench machine one gave
	// 0.44x the raw UPDATE, two 0.40x, four 0.34x (BENCHMARKS.md); a
	// statement never waits on a row lock (see rotateMany), so one slow
	// row cannot hold the rest.
	maxRotationBatchesInFlight = 1
)

// rotationBatcher gathers refresh rotations that arrive while others are
// running into one UPDATE ... FROM (VALUES ...) statement: one round trip,
// one executor start and one commit (one WAL flush) for all of them,
// where each on its own pays all three. It is group commit for rotations,
// and adds no wait: a rotation that finds the statement slot free runs at
// once, alone if nothing else is queued.
//
// Each rotation keeps its own semantics. Two rotations of one session never
// share a statement (the second waits for the next one, which sees the
// first's row, as two statements in a row would). A row the statement did
// not return did not match, or was held by another transaction; its caller
// rotates it in a statement of its own, as without batching. A failed
// statement fails every rotation it carried, none of which is then
// committed. A caller whose context ends while queued leaves the queue; one
// whose statement is running is answered with its context's error, and its
// rotation may commit, as for a lone statement that timed out (see
// sessions.Manager.Refresh: the rotation stays pending).
type rotationBatcher struct {
	mu       sync.Mutex
	queue    []*queuedRotation
	inFlight int
	// statements caches the SQL text by batch size and shape.
	statements sync.Map
}

type queuedRotation struct {
	r sessions.Rotation
	// ctx is the caller's, for its trace: a statement is traced under
	// the first caller it answers.
	ctx  context.Context
	done chan struct{}
	// Set before done is closed.
	out     sessions.Rotated
	rotated bool
	err     error
	shared  int // rotations in the statement
}

// rotate queues r and waits for its statement's answer, or for ctx. With a
// statement slot free it starts a runner; the runner works apart from the
// caller, so that no caller waits on statements for others beyond its own
// context.
func (b *rotationBatcher) rotate(ctx context.Context, s *Store, r sessions.Rotation) (sessions.Rotated, bool, error) {
	q := &queuedRotation{r: r, ctx: ctx, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	if b.inFlight < maxRotationBatchesInFlight {
		b.inFlight++
		go b.run(s)
	}
	b.mu.Unlock()
	select {
	case <-q.done:
		trace.SpanFromContext(ctx).SetAttributes(attribute.Int("tiled.rotation.batch", q.shared))
		return q.out, q.rotated, q.err
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.queue, q); i >= 0 {
			b.queue = slices.Delete(b.queue, i, i+1)
		}
		b.mu.Unlock()
		return sessions.Rotated{}, false, fmt.Errorf("rotation waiting for the database: %w", errors.Join(storeerr.ErrUnavailable, ctx.Err()))
	}
}

// run takes batches off the queue and runs them, holding one statement
// slot, until the queue is empty.
func (b *rotationBatcher) run(s *Store) {
	for {
		b.mu.Lock()
		batch := b.take()
		if len(batch) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		s.rotateBatch(batch)
	}
}

// statement returns the SQL for n rotations, made once per shape: the
// text is the same for every batch of that size, and pgx prepares it once
// per connection.
func (b *rotationBatcher) statement(n int, withPrincipal bool, principal func() string) string {
	key := 2 * n
	if withPrincipal {
		key++
	}
	if q, ok := b.statements.Load(key); ok {
		return q.(string)
	}
	var values strings.Builder
	for i := range n {
		if i > 0 {
			values.WriteString(", ")
		}
		p := 6 * i
		fmt.Fprintf(&values, "($%d::uuid, $%d::bytea, $%d::bytea, $%d::timestamptz, $%d::timestamptz, $%d::bigint)",
			p+1, p+2, p+3, p+4, p+5, p+6)
	}
	// Rows another transaction holds are skipped, not waited for: the
	// statement answers many callers, and one row lock (a rotation from
	// another replica, a principal being deleted) must not hold them all.
	// A skipped rotation is answered "no match", and its caller retries it
	// alone (Store.RotateRefresh). Never waiting, the statement cannot
	// deadlock either.
	query := `WITH v (v_id, v_presented, v_new, v_now, v_expires, v_cursor) AS (VALUES ` + values.String() + `),
		free AS (SELECT id AS free_id FROM sessions WHERE id IN (SELECT v_id FROM v) FOR UPDATE SKIP LOCKED)
		UPDATE sessions SET
			prev_refresh_hash = refresh_hash, refresh_hash = v_new, rotated_at = v_now,
			generation = generation + 1, refresh_expires_at = v_expires, last_used_at = v_now,
			rotation_pending = TRUE
		FROM v, free
		WHERE id = v_id AND id = free_id AND refresh_hash = v_presented AND revoked_at IS NULL
			AND refresh_expires_at > v_now AND (expires_at IS NULL OR expires_at > v_now)
		RETURNING ` + sessionCols + `, EXISTS (SELECT 1 FROM revocations WHERE seq > v_cursor)`
	if withPrincipal {
		query += `, ` + principal()
	}
	b.statements.Store(key, query)
	return query
}

// take removes up to maxRotationBatch queued rotations, oldest first, at
// most one per session; b.mu is held.
func (b *rotationBatcher) take() []*queuedRotation {
	var batch []*queuedRotation
	seen := make(map[uuid.UUID]bool, min(len(b.queue), maxRotationBatch))
	rest := b.queue[:0]
	for _, q := range b.queue {
		if len(batch) < maxRotationBatch && !seen[q.r.SessionID] {
			seen[q.r.SessionID] = true
			batch = append(batch, q)
			continue
		}
		rest = append(rest, q)
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return batch
}

// rotateBatch runs one statement for batch and answers each rotation. The
// statement has its own time bound rather than any one caller's context:
// it answers them all.
func (s *Store) rotateBatch(batch []*queuedRotation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), s.timeout)
	defer cancel()
	results, err := s.rotateMany(ctx, batch)
	for _, q := range batch {
		q.shared = len(batch)
		if err != nil {
			q.err = err
		} else if res, ok := results[q.r.SessionID]; ok {
			q.out, q.rotated, q.err = res.out, true, res.err
		}
		close(q.done)
	}
}

type rotationResult struct {
	out sessions.Rotated
	err error
}

// rotateMany is one UPDATE ... FROM (VALUES ...) for the rotations of
// distinct sessions in batch; it returns the rows that matched, by session.
// The principal is read for every row if any rotation asks for it.
func (s *Store) rotateMany(ctx context.Context, batch []*queuedRotation) (map[uuid.UUID]rotationResult, error) {
	withPrincipal := false
	args := make([]any, 0, 6*len(batch))
	for _, q := range batch {
		cursor := q.r.LogCursor
		if !q.r.SkipPrincipal {
			withPrincipal = true
			cursor = -1
		}
		args = append(args, q.r.SessionID, q.r.PresentedHash, q.r.NewHash, q.r.Now, q.r.NewRefreshExpiresAt, cursor)
	}
	query := s.rotations.statement(len(batch), withPrincipal, s.principalSubselects)
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%d rotations: %w", len(batch), err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID]rotationResult, len(batch))
	for rows.Next() {
		var (
			res rotationResult
			p   tokenPrincipal
		)
		dests := []any{boolCol{&res.out.LogAhead}}
		if withPrincipal {
			dests = append(dests, p.dests()...)
		}
		if res.out.Session, err = scanSession(scanTail{rows, dests}); err != nil {
			return nil, fmt.Errorf("%d rotations: %w", len(batch), err)
		}
		if withPrincipal {
			res.out.Principal, res.err = p.principal(res.out.Session)
		}
		out[res.out.Session.ID] = res
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%d rotations: %w", len(batch), err)
	}
	// A rotation that read the principal has no use for LogAhead, nor one
	// that skipped it for the principal: each keeps what it asked for.
	for _, q := range batch {
		if res, ok := out[q.r.SessionID]; ok && !q.r.SkipPrincipal {
			res.out.LogAhead = false
			out[q.r.SessionID] = res
		} else if ok {
			res.out.Principal = identity.Principal{}
			out[q.r.SessionID] = res
		}
	}
	return out, nil
}
