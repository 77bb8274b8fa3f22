package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/audit"
)

var _ audit.Store = (*Store)(nil)

const auditCols = `at, event, outcome, principal_id, provider, identity, client_addr, session_id, request_id, detail`

// AppendAuditEvent implements audit.Store.
func (s *Store) AppendAuditEvent(ctx context.Context, e audit.Event) (err error) {
	ctx, end := s.op(ctx, "AppendAuditEvent")
	defer end(&err)
	if e.Name == "" || e.At.IsZero() {
		return errors.New("append audit event: empty name or time")
	}
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	detailJSON, err := jsonArg(detail)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		ts(e.At), e.Name, e.Outcome, nullUUID(e.PrincipalID), e.Provider, e.IdentityID, e.ClientAddr,
		nullUUID(e.SessionID), e.RequestID, detailJSON); err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// AuditEvents implements audit.Store.
func (s *Store) AuditEvents(ctx context.Context, since time.Time, limit int) (_ []audit.Event, err error) {
	ctx, end := s.op(ctx, "AuditEvents")
	defer end(&err)
	if limit <= 0 {
		return nil, fmt.Errorf("audit events: limit %d must be positive", limit)
	}
	out, err := collect(ctx, s.db, func(r scanner) (audit.Event, error) {
		var e audit.Event
		var pid, sid uuid.NullUUID
		err := r.Scan(&e.ID, timeCol{&e.At}, &e.Name, &e.Outcome, &pid, &e.Provider, &e.IdentityID, &e.ClientAddr,
			&sid, &e.RequestID, jsonCol{&e.Detail})
		e.PrincipalID, e.SessionID = pid.UUID, sid.UUID
		return e, err
	}, `SELECT id, `+auditCols+` FROM audit_events WHERE at >= $1 ORDER BY at, id LIMIT $2`, ts(since), limit)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return out, nil
}

// nullUUID binds the zero UUID as NULL.
func nullUUID(id uuid.UUID) uuid.NullUUID { return uuid.NullUUID{UUID: id, Valid: id != uuid.Nil} }
