package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/storeerr"
)

const sessionCols = `id, principal_id, created_at, expires_at, refresh_expires_at, refresh_hash,
	prev_refresh_hash, rotated_at, generation, revoked_at, revoked_reason, last_used_at, state, rotation_pending`

func scanSession(r scanner) (sessions.Session, error) {
	var s sessions.Session
	err := r.Scan(&s.ID, &s.PrincipalID, timeCol{&s.CreatedAt}, nullTimeCol{&s.ExpiresAt},
		timeCol{&s.RefreshExpiresAt}, &s.RefreshHash, &s.PrevRefreshHash, nullTimeCol{&s.RotatedAt},
		&s.Generation, nullTimeCol{&s.RevokedAt}, &s.RevokedReason, timeCol{&s.LastUsedAt}, jsonCol{&s.State},
		boolCol{&s.RotationPending})
	if s.State == nil {
		s.State = map[string]any{}
	}
	return s, err
}

// CreateSession implements sessions.Store. A zero LastUsedAt is stored as
// CreatedAt: a new session was last used when it was made. With a limit,
// the count and the insert happen under a lock of the principal's row
// (see withinLimit).
func (s *Store) CreateSession(ctx context.Context, sess sessions.Session, limit int) (err error) {
	ctx, end := s.op(ctx, "CreateSession")
	defer end(&err)
	switch {
	case sess.ID == uuid.Nil:
		return errors.New("create session: nil id")
	case len(sess.RefreshHash) == 0:
		return errors.New("create session: no refresh hash")
	case sess.CreatedAt.IsZero() || sess.RefreshExpiresAt.IsZero():
		return errors.New("create session: zero creation or refresh expiry time")
	case sess.Generation < 0:
		return fmt.Errorf("create session: negative generation %d", sess.Generation)
	}
	if sess.LastUsedAt.IsZero() {
		sess.LastUsedAt = sess.CreatedAt
	}
	state := sess.State
	if state == nil {
		state = map[string]any{}
	}
	stateJSON, err := jsonArg(state)
	if err != nil {
		return err
	}
	insert := func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO sessions (`+sessionCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			sess.ID, sess.PrincipalID, ts(sess.CreatedAt), tsArg(sess.ExpiresAt), ts(sess.RefreshExpiresAt),
			sess.RefreshHash, bytesArg(sess.PrevRefreshHash), tsArg(sess.RotatedAt), sess.Generation,
			tsArg(sess.RevokedAt), sess.RevokedReason, ts(sess.LastUsedAt), stateJSON,
			sess.RotationPending)
		return err
	}
	if limit <= 0 {
		err = insert(s.db)
	} else {
		err = s.db.InTx(ctx, func(q Querier) error {
			return s.withinLimit(ctx, q, sess.PrincipalID, limit,
				`SELECT count(*) FROM sessions WHERE principal_id = $1 AND `+activeAt, ts(sess.CreatedAt), insert)
		})
	}
	if err != nil {
		return fmt.Errorf("create session for principal %s: %w", sess.PrincipalID, err)
	}
	return nil
}

// GetSession implements sessions.Store.
func (s *Store) GetSession(ctx context.Context, id uuid.UUID) (_ sessions.Session, err error) {
	ctx, end := s.op(ctx, "GetSession")
	defer end(&err)
	sess, err := getSession(ctx, s.db, id)
	if err != nil {
		return sessions.Session{}, fmt.Errorf("get session %s: %w", id, err)
	}
	return sess, nil
}

func getSession(ctx context.Context, q Querier, id uuid.UUID) (sessions.Session, error) {
	return scanSession(q.QueryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id))
}

// ListSessions implements sessions.Store.
func (s *Store) ListSessions(ctx context.Context, principalID uuid.UUID) (_ []sessions.Session, err error) {
	ctx, end := s.op(ctx, "ListSessions")
	defer end(&err)
	out, err := collect(ctx, s.db, scanSession, `SELECT `+sessionCols+` FROM sessions
		WHERE principal_id = $1 ORDER BY created_at DESC, id DESC`, principalID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of principal %s: %w", principalID, err)
	}
	return out, nil
}

// activeAt is the SQL form of sessions.Session.Active, with now as $2.
const activeAt = `revoked_at IS NULL AND refresh_expires_at > $2 AND (expires_at IS NULL OR expires_at > $2)`

// CountActiveSessions implements sessions.Store.
func (s *Store) CountActiveSessions(ctx context.Context, principalID uuid.UUID, now time.Time) (_ int, err error) {
	ctx, end := s.op(ctx, "CountActiveSessions")
	defer end(&err)
	n, err := count(ctx, s.db, `SELECT count(*) FROM sessions WHERE principal_id = $1 AND `+activeAt,
		principalID, ts(now))
	if err != nil {
		return 0, fmt.Errorf("count sessions of principal %s: %w", principalID, err)
	}
	return n, nil
}

// RotateRefresh implements sessions.Store with one conditional UPDATE: the
// database's row lock makes concurrent rotations with the same presented hash
// queue, and each one after the first re-checks the WHERE clause against the
// row the first one wrote, no longer matches, and changes nothing. The
// winner's RETURNING clause also reads what the new tokens need of the
// principal (type, roles, identities) with sub-selects, so a successful
// rotation is one round trip; with r.SkipPrincipal it asks the revocation
// log instead whether it moved past r.LogCursor, an index probe that costs
// the database far less. Where the dialect allows, rotations that arrive
// together share one such statement (see rotationBatcher). Only when
// nothing changed is the row read again, to tell a stale hash from a
// session that is gone; that read is returned with ErrStaleRefresh. (It
// cannot be folded into the statement: a sub-select would see the row as
// it was before a racing winner's update, and the caller needs the row as
// that winner left it.)
func (s *Store) RotateRefresh(ctx context.Context, r sessions.Rotation) (_ sessions.Rotated, err error) {
	ctx, end := s.op(ctx, "RotateRefresh")
	defer end(&err)
	if len(r.PresentedHash) == 0 || len(r.NewHash) == 0 {
		return sessions.Rotated{}, errors.New("rotate refresh: empty hash")
	}
	r.Now, r.NewRefreshExpiresAt = ts(r.Now), ts(r.NewRefreshExpiresAt)
	var (
		out     sessions.Rotated
		rotated bool
	)
	if s.dialect.BatchRotations {
		out, rotated, err = s.rotations.rotate(ctx, s, r)
	}
	if !rotated && err == nil {
		// Alone, or again alone: a shared statement skips rows that
		// another transaction holds, where this one waits its turn.
		out, rotated, err = s.rotateOne(ctx, r)
	}
	if err != nil {
		return sessions.Rotated{}, fmt.Errorf("rotate refresh of session %s: %w", r.SessionID, err)
	}
	if rotated {
		return out, nil
	}
	cur, err := getSession(ctx, s.db, r.SessionID)
	switch {
	case err != nil:
		return sessions.Rotated{}, fmt.Errorf("rotate refresh of session %s: %w", r.SessionID, err)
	case !cur.Active(r.Now):
		return sessions.Rotated{}, fmt.Errorf("rotate refresh: session %s is revoked or expired: %w", r.SessionID, storeerr.ErrNotFound)
	default:
		return sessions.Rotated{Session: cur}, fmt.Errorf("rotate refresh of session %s (generation %d): %w", r.SessionID, cur.Generation, sessions.ErrStaleRefresh)
	}
}

// rotateOne is the rotation in a statement of its own; rotated is false
// when the row did not match.
func (s *Store) rotateOne(ctx context.Context, r sessions.Rotation) (out sessions.Rotated, rotated bool, err error) {
	const update = `UPDATE sessions SET
			prev_refresh_hash = refresh_hash, refresh_hash = $3, rotated_at = $2,
			generation = generation + 1, refresh_expires_at = $4, last_used_at = $2,
			rotation_pending = TRUE
		WHERE id = $1 AND refresh_hash = $5 AND ` + activeAt + `
		RETURNING ` + sessionCols
	var p tokenPrincipal
	if r.SkipPrincipal {
		row := s.db.QueryRow(ctx, update+`, EXISTS (SELECT 1 FROM revocations WHERE seq > $6)`,
			r.SessionID, r.Now, r.NewHash, r.NewRefreshExpiresAt, r.PresentedHash, r.LogCursor)
		out.Session, err = scanSession(scanTail{row, []any{boolCol{&out.LogAhead}}})
	} else {
		row := s.db.QueryRow(ctx, update+`, `+s.principalSubselects(),
			r.SessionID, r.Now, r.NewHash, r.NewRefreshExpiresAt, r.PresentedHash)
		out.Session, err = scanSession(scanTail{row, p.dests()})
	}
	switch {
	case errors.Is(err, storeerr.ErrNotFound):
		return sessions.Rotated{}, false, nil
	case err != nil:
		return sessions.Rotated{}, false, err
	case !r.SkipPrincipal:
		if out.Principal, err = p.principal(out.Session); err != nil {
			return sessions.Rotated{}, false, err
		}
	}
	return out, true, nil
}

// principalSubselects reads, beside a sessions row, what tokens need of
// its principal: type, roles, identities (tokenPrincipal scans them).
func (s *Store) principalSubselects() string {
	d := s.dialect
	return `(SELECT type FROM principals WHERE principals.id = sessions.principal_id),
		(SELECT ` + d.JSONAgg + `(role) FROM principal_roles WHERE principal_roles.principal_id = sessions.principal_id),
		(SELECT ` + d.JSONAgg + `(` + d.JSONArray + `(provider, external_id)) FROM identities
			WHERE identities.principal_id = sessions.principal_id)`
}

type tokenPrincipal struct {
	ptype  *string
	roles  []string
	idents [][]string
}

func (p *tokenPrincipal) dests() []any { return []any{&p.ptype, jsonCol{&p.roles}, jsonCol{&p.idents}} }

func (p *tokenPrincipal) principal(sess sessions.Session) (identity.Principal, error) {
	return rotatedPrincipal(sess, p.ptype, p.roles, p.idents)
}

// rotatedPrincipal assembles the principal from the rotation's sub-selects.
func rotatedPrincipal(sess sessions.Session, ptype *string, roles []string, idents [][]string) (identity.Principal, error) {
	if ptype == nil {
		// The principal went with its sessions (ON DELETE CASCADE), so
		// this cannot happen short of a broken schema.
		return identity.Principal{}, fmt.Errorf("principal %s: %w", sess.PrincipalID, storeerr.ErrNotFound)
	}
	p := identity.Principal{ID: sess.PrincipalID, Type: identity.PrincipalType(*ptype)}
	slices.Sort(roles)
	for _, name := range roles {
		role, _ := identity.RoleByName(name)
		p.Roles = append(p.Roles, role)
	}
	for _, pair := range idents {
		if len(pair) != 2 {
			return identity.Principal{}, fmt.Errorf("identity column: %q", pair)
		}
		p.Identities = append(p.Identities, identity.Identity{Provider: pair[0], ID: pair[1], PrincipalID: sess.PrincipalID})
	}
	slices.SortFunc(p.Identities, func(a, b identity.Identity) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.ID, b.ID))
	})
	return p, nil
}

// scanTail scans a row whose first columns another scan function reads,
// into those destinations followed by tail.
type scanTail struct {
	r    scanner
	tail []any
}

func (t scanTail) Scan(dest ...any) error { return t.r.Scan(append(dest, t.tail...)...) }

// ConfirmRotations implements sessions.Store in one statement per call. A
// rotation that was superseded (the generation moved on) is left alone: the
// newer rotation is confirmed, or not, on its own.
func (s *Store) ConfirmRotations(ctx context.Context, refs []sessions.RotationRef) (err error) {
	ctx, end := s.op(ctx, "ConfirmRotations")
	defer end(&err)
	if len(refs) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 2*len(refs))
	for i, r := range refs {
		if i > 0 {
			b.WriteString(" OR ")
		}
		fmt.Fprintf(&b, "(id = $%d AND generation = $%d)", 2*i+1, 2*i+2)
		args = append(args, r.SessionID, r.Generation)
	}
	query := `UPDATE sessions SET rotation_pending = FALSE WHERE rotation_pending AND (` + b.String() + `)`
	if s.dialect.SkipLocked != "" {
		// A row locked by a rotation in flight is skipped, never waited
		// for: that rotation supersedes the one confirmed here (or, if it
		// fails, leaves it pending, the lenient state). So a batch of
		// confirmations neither queues behind rotations nor holds a row
		// lock that they then wait for, and, with rotation batches that
		// never wait either (rotateMany), no cycle of waits can form.
		query = `UPDATE sessions SET rotation_pending = FALSE WHERE id IN (
			SELECT id FROM sessions WHERE rotation_pending AND (` + b.String() + `)` + s.dialect.SkipLocked + `)`
	}
	if _, err := s.db.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("confirm %d rotations: %w", len(refs), err)
	}
	return nil
}

// RevokeSession implements sessions.Store. Only the first revocation writes,
// and it appends to the log in the same transaction.
func (s *Store) RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) (err error) {
	ctx, end := s.op(ctx, "RevokeSession")
	defer end(&err)
	now = ts(now)
	err = s.inLoggedTx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `UPDATE sessions SET revoked_at = $2, revoked_reason = $3
			WHERE id = $1 AND revoked_at IS NULL`, id, now, reason)
		if err != nil {
			return err
		}
		if n == 0 {
			var one int64
			return q.QueryRow(ctx, `SELECT 1 FROM sessions WHERE id = $1`, id).Scan(&one)
		}
		return s.appendLog(ctx, q, sessions.Revocation{Kind: sessions.RevokedSession, SessionID: id, RevokedAt: now})
	})
	if err != nil {
		return fmt.Errorf("revoke session %s: %w", id, err)
	}
	return nil
}

// appendLog appends e to the revocation log inside the transaction q that
// makes the change, in sequence order, and wakes the log's followers once
// that transaction commits.
func (s *Store) appendLog(ctx context.Context, q Querier, e sessions.Revocation) error {
	if err := s.db.OrderRevocations(ctx, q); err != nil {
		return err
	}
	e.RevokedAt = ts(e.RevokedAt)
	if err := q.QueryRow(ctx, `INSERT INTO revocations (kind, session_id, principal_id, api_key_id, revoked_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING seq`, string(e.Kind), uuidArg(e.SessionID), uuidArg(e.PrincipalID),
		uuidArg(e.APIKeyID), e.RevokedAt).Scan(&e.Seq); err != nil {
		return err
	}
	return s.db.Notify(ctx, q, e)
}

// RevocationsSince implements sessions.Store.
func (s *Store) RevocationsSince(ctx context.Context, after int64, limit int) (_ []sessions.Revocation, err error) {
	ctx, end := s.op(ctx, "RevocationsSince")
	defer end(&err)
	if limit <= 0 {
		return nil, fmt.Errorf("revocations since %d: limit %d must be positive", after, limit)
	}
	out, err := collect(ctx, s.db, func(r scanner) (sessions.Revocation, error) {
		var v sessions.Revocation
		var kind string
		err := r.Scan(&v.Seq, &kind, &v.SessionID, &v.PrincipalID, &v.APIKeyID, timeCol{&v.RevokedAt})
		v.Kind = sessions.RevocationKind(kind)
		return v, err
	}, `SELECT seq, kind, session_id, principal_id, api_key_id, revoked_at FROM revocations
		WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("revocations since %d: %w", after, err)
	}
	return out, nil
}

// RevocationLogStart implements sessions.Store, on the index of revoked_at.
func (s *Store) RevocationLogStart(ctx context.Context, since time.Time) (_ int64, err error) {
	ctx, end := s.op(ctx, "RevocationLogStart")
	defer end(&err)
	var cursor int64
	if err := s.db.QueryRow(ctx, `SELECT coalesce(
			(SELECT min(seq) - 1 FROM revocations WHERE revoked_at >= $1),
			(SELECT max(seq) FROM revocations),
			0)`, ts(since)).Scan(&cursor); err != nil {
		return 0, fmt.Errorf("revocation log start: %w", err)
	}
	return cursor, nil
}

// TakeLoginAttempt implements sessions.Store with one conditional upsert:
// the row lock makes concurrent attempts for one key take turns, and each
// re-checks the count the previous one wrote, so at most max are counted in
// a window however many arrive together. A closed window restarts at now.
func (s *Store) TakeLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (_ sessions.LoginAttempt, err error) {
	ctx, end := s.op(ctx, "TakeLoginAttempt")
	defer end(&err)
	if window <= 0 || max <= 0 {
		return sessions.LoginAttempt{}, fmt.Errorf("take login attempt: window %s and max %d must be positive", window, max)
	}
	now = ts(now)
	var a sessions.LoginAttempt
	err = s.db.QueryRow(ctx, `INSERT INTO login_attempts (key, window_start, window_end, count)
		VALUES ($1, $2, $3, 1)
		ON CONFLICT (key) DO UPDATE SET
			window_start = CASE WHEN login_attempts.window_end <= $2 THEN $2 ELSE login_attempts.window_start END,
			window_end = CASE WHEN login_attempts.window_end <= $2 THEN $3 ELSE login_attempts.window_end END,
			count = CASE WHEN login_attempts.window_end <= $2 THEN 1 ELSE login_attempts.count + 1 END
		WHERE login_attempts.window_end <= $2 OR login_attempts.count < $4
		RETURNING count, window_end`, key, now, ts(now.Add(window)), max).Scan(&a.Count, timeCol{&a.WindowEnd})
	if err == nil {
		a.Allowed = true
		return a, nil
	}
	if !errors.Is(err, storeerr.ErrNotFound) {
		return sessions.LoginAttempt{}, fmt.Errorf("take login attempt: %w", err)
	}
	// Refused: nothing was written. Read when the window ends, for Retry-After.
	err = s.db.QueryRow(ctx, `SELECT count, window_end FROM login_attempts WHERE key = $1`, key).
		Scan(&a.Count, timeCol{&a.WindowEnd})
	if err != nil {
		return sessions.LoginAttempt{}, fmt.Errorf("take login attempt: read the full window: %w", err)
	}
	return a, nil
}

// ResetLoginAttempts implements sessions.Store.
func (s *Store) ResetLoginAttempts(ctx context.Context, key string) (err error) {
	ctx, end := s.op(ctx, "ResetLoginAttempts")
	defer end(&err)
	if _, err := s.db.Exec(ctx, `DELETE FROM login_attempts WHERE key = $1`, key); err != nil {
		return fmt.Errorf("reset login attempts: %w", err)
	}
	return nil
}

// RefundLoginAttempt implements sessions.Store. The row is locked as it is
// read, so a concurrent take waits and then counts on top of the refund.
func (s *Store) RefundLoginAttempt(ctx context.Context, key string, windowEnd time.Time) (err error) {
	ctx, end := s.op(ctx, "RefundLoginAttempt")
	defer end(&err)
	err = s.db.InTx(ctx, func(q Querier) error {
		var n int
		err := q.QueryRow(ctx, `SELECT count FROM login_attempts WHERE key = $1 AND window_end = $2`+s.dialect.ForUpdate,
			key, ts(windowEnd)).Scan(&n)
		switch {
		case errors.Is(err, storeerr.ErrNotFound):
			return nil // reset, collected, or a new window: nothing to refund
		case err != nil:
			return err
		case n <= 1:
			_, err = q.Exec(ctx, `DELETE FROM login_attempts WHERE key = $1`, key)
		default:
			_, err = q.Exec(ctx, `UPDATE login_attempts SET count = count - 1 WHERE key = $1`, key)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("refund login attempt: %w", err)
	}
	return nil
}
