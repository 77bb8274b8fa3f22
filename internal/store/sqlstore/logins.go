package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/sessions"
)

const pendingCols = `id, provider, device_code_hash, user_code, created_at, expires_at, session_id`

func scanPending(r scanner) (sessions.PendingDevice, error) {
	var p sessions.PendingDevice
	var sid uuid.NullUUID
	err := r.Scan(&p.ID, &p.Provider, &p.DeviceCodeHash, &p.UserCode, timeCol{&p.CreatedAt}, timeCol{&p.ExpiresAt}, &sid)
	if sid.Valid {
		p.SessionID = &sid.UUID
	}
	return p, err
}

// CreatePendingDevice implements sessions.Store. "Unexpired" is judged at
// p.CreatedAt. An expired login holding the same user code is deleted in the
// same transaction, so the unique index on (provider, user_code) only ever
// sees codes in use and turns a concurrent duplicate into ErrConflict.
func (s *Store) CreatePendingDevice(ctx context.Context, p sessions.PendingDevice) (err error) {
	ctx, end := s.op(ctx, "CreatePendingDevice")
	defer end(&err)
	switch {
	case p.ID == uuid.Nil:
		return errors.New("create pending device: nil id")
	case p.Provider == "" || p.UserCode == "" || len(p.DeviceCodeHash) == 0:
		return errors.New("create pending device: empty provider, user code or device code hash")
	case !p.ExpiresAt.After(p.CreatedAt):
		return errors.New("create pending device: expires before it is created")
	}
	var sid uuid.NullUUID
	if p.SessionID != nil {
		sid = uuid.NullUUID{UUID: *p.SessionID, Valid: true}
	}
	err = s.db.InTx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `DELETE FROM pending_devices WHERE provider = $1 AND user_code = $2 AND expires_at <= $3`,
			p.Provider, p.UserCode, ts(p.CreatedAt)); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO pending_devices (`+pendingCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			p.ID, p.Provider, p.DeviceCodeHash, p.UserCode, ts(p.CreatedAt), ts(p.ExpiresAt), sid)
		return err
	})
	if err != nil {
		return fmt.Errorf("create pending device login: %w", err)
	}
	return nil
}

// ApprovePendingDevice implements sessions.Store. A session that does not
// exist fails the foreign key, which is ErrNotFound too.
func (s *Store) ApprovePendingDevice(ctx context.Context, provider, userCode string, sessionID uuid.UUID, now time.Time) (err error) {
	ctx, end := s.op(ctx, "ApprovePendingDevice")
	defer end(&err)
	if err := mustAffect(s.db.Exec(ctx, `UPDATE pending_devices SET session_id = $3
		WHERE provider = $1 AND user_code = $2 AND session_id IS NULL AND expires_at > $4`,
		provider, userCode, sessionID, ts(now))); err != nil {
		return fmt.Errorf("approve pending device login: %w", err)
	}
	return nil
}

// FindPendingDevice implements sessions.Store.
func (s *Store) FindPendingDevice(ctx context.Context, provider, userCode string, now time.Time) (_ sessions.PendingDevice, err error) {
	ctx, end := s.op(ctx, "FindPendingDevice")
	defer end(&err)
	p, err := scanPending(s.db.QueryRow(ctx, `SELECT `+pendingCols+` FROM pending_devices
		WHERE provider = $1 AND user_code = $2 AND session_id IS NULL AND expires_at > $3`,
		provider, userCode, ts(now)))
	if err != nil {
		return sessions.PendingDevice{}, fmt.Errorf("find pending device login: %w", err)
	}
	return p, nil
}

// TakePendingDevice implements sessions.Store. The row is locked as it is
// read, so of several concurrent takers of an approved login the first
// deletes it and the others, waking on the deleted row, find nothing.
func (s *Store) TakePendingDevice(ctx context.Context, provider string, deviceCodeHash []byte, now time.Time) (_ sessions.PendingDevice, err error) {
	ctx, end := s.op(ctx, "TakePendingDevice")
	defer end(&err)
	var p sessions.PendingDevice
	err = s.db.InTx(ctx, func(q Querier) error {
		p, err = scanPending(q.QueryRow(ctx, `SELECT `+pendingCols+` FROM pending_devices
			WHERE provider = $1 AND device_code_hash = $2 AND expires_at > $3`+s.dialect.ForUpdate,
			provider, deviceCodeHash, ts(now)))
		if err != nil || p.SessionID == nil {
			return err
		}
		return mustAffect(q.Exec(ctx, `DELETE FROM pending_devices WHERE id = $1`, p.ID))
	})
	if err != nil {
		return sessions.PendingDevice{}, fmt.Errorf("take pending device login: %w", err)
	}
	return p, nil
}

const authStateCols = `state_hash, provider, code_verifier, nonce, extra, created_at, expires_at`

// PutAuthState implements sessions.Store.
func (s *Store) PutAuthState(ctx context.Context, st sessions.AuthState) (err error) {
	ctx, end := s.op(ctx, "PutAuthState")
	defer end(&err)
	switch {
	case len(st.StateHash) == 0 || st.Provider == "":
		return errors.New("put auth state: empty state hash or provider")
	case !st.ExpiresAt.After(st.CreatedAt):
		return errors.New("put auth state: expires before it is created")
	}
	extra := st.Extra
	if extra == nil {
		extra = map[string]any{}
	}
	extraJSON, err := jsonArg(extra)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO auth_states (`+authStateCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		st.StateHash, st.Provider, st.CodeVerifier, st.Nonce, extraJSON, ts(st.CreatedAt), ts(st.ExpiresAt)); err != nil {
		return fmt.Errorf("put auth state: %w", err)
	}
	return nil
}

// TakeAuthState implements sessions.Store with one DELETE ... RETURNING:
// only the statement that deletes the row gets it.
func (s *Store) TakeAuthState(ctx context.Context, stateHash []byte, now time.Time) (_ sessions.AuthState, err error) {
	ctx, end := s.op(ctx, "TakeAuthState")
	defer end(&err)
	var st sessions.AuthState
	err = s.db.QueryRow(ctx, `DELETE FROM auth_states WHERE state_hash = $1 AND expires_at > $2 RETURNING `+authStateCols,
		stateHash, ts(now)).Scan(&st.StateHash, &st.Provider, &st.CodeVerifier, &st.Nonce, jsonCol{&st.Extra},
		timeCol{&st.CreatedAt}, timeCol{&st.ExpiresAt})
	if err != nil {
		return sessions.AuthState{}, fmt.Errorf("take auth state: %w", err)
	}
	if st.Extra == nil {
		st.Extra = map[string]any{}
	}
	return st, nil
}
