// Package sessions owns sliding sessions: refresh-token rotation with a grace
// window and reuse detection, revocation, pending device-code logins, OAuth
// state (PKCE verifier and nonce) between the two legs of a browser login, and
// login-attempt counters. All of it lives in the Store, never in one replica's
// memory, so any replica can serve the next request of any flow.
package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
)

// ErrStaleRefresh: the presented refresh hash is no longer the session's
// current one (another request rotated it first). The caller decides between
// "racing reuse inside the grace window" and "replay".
var ErrStaleRefresh = errors.New("refresh token already rotated")

// Session is one login: a chain of refresh tokens, of which only the current
// one (and, for a short grace window, the previous one) is accepted.
type Session struct {
	ID          uuid.UUID
	PrincipalID uuid.UUID
	CreatedAt   time.Time
	// ExpiresAt caps the whole session (session_max_age); nil = unlimited.
	ExpiresAt *time.Time
	// RefreshExpiresAt is the last refresh plus the max inactive age.
	RefreshExpiresAt time.Time
	// RefreshHash is SHA-256 of the current refresh secret; PrevRefreshHash
	// of the one it replaced at RotatedAt. Generation counts rotations.
	RefreshHash     []byte
	PrevRefreshHash []byte
	RotatedAt       *time.Time
	Generation      int64
	RevokedAt       *time.Time
	RevokedReason   string
	LastUsedAt      time.Time
	// State is Tiled's free-form per-session state (JSON object).
	State map[string]any
	// RotationPending: the last rotation has not been confirmed, so it is not
	// known whether its new refresh token reached anyone (see
	// Manager.Refresh). Set by RotateRefresh, cleared by ConfirmRotations.
	RotationPending bool
}

// Active reports whether the session may still be refreshed at now.
func (s Session) Active(now time.Time) bool {
	if s.RevokedAt != nil || !now.Before(s.RefreshExpiresAt) {
		return false
	}
	return s.ExpiresAt == nil || now.Before(*s.ExpiresAt)
}

// Rotation asks the store to replace a session's refresh hash, but only if the
// presented hash is still the current one and the session is active at Now.
type Rotation struct {
	SessionID     uuid.UUID
	PresentedHash []byte
	NewHash       []byte
	Now           time.Time
	// NewRefreshExpiresAt slides the inactivity deadline.
	NewRefreshExpiresAt time.Time
	// SkipPrincipal leaves the principal out of the statement: the caller
	// holds it in a cache that has applied the revocation log through
	// LogCursor. The statement then says instead whether the log had
	// entries past LogCursor when it ran (Rotated.LogAhead), that is
	// whether a change the rotation could see may be missing from that
	// cache. Reading the principal costs the statement three sub-selects.
	SkipPrincipal bool
	LogCursor     int64
}

// Rotated is what a successful rotation returns.
type Rotated struct {
	// Session is the session as the rotation left it (or, with
	// ErrStaleRefresh, as a racing rotation left it).
	Session Session
	// Principal is what new tokens need of the session's principal, read
	// in the same statement: ID, Type, Roles and Identities (Provider and
	// ID only). Zero with Rotation.SkipPrincipal.
	Principal identity.Principal
	// LogAhead, with Rotation.SkipPrincipal: the revocation log had
	// entries past Rotation.LogCursor in the rotation's snapshot.
	LogAhead bool
}

// RotationRef names one rotation: the session and the generation it made.
type RotationRef struct {
	SessionID  uuid.UUID
	Generation int64
}

// RevocationKind says what a log entry records.
type RevocationKind string

// The kinds of the revocation log. Only session revocations and principal
// deletions deny access tokens; every kind invalidates cached API keys of
// the principal or key it names.
const (
	// RevokedSession: the session's access tokens are refused from now on.
	RevokedSession RevocationKind = "session"
	// ChangedPrincipal: the principal's roles or identities changed.
	ChangedPrincipal RevocationKind = "principal"
	// DeletedPrincipal: the principal, its sessions and its keys are gone.
	DeletedPrincipal RevocationKind = "principal_deleted"
	// DeletedAPIKey: the key is gone.
	DeletedAPIKey RevocationKind = "api_key"
)

// Revocation is one entry of the revocation log, which every change that a
// replica's cache of the authentication state depends on is appended to,
// in the transaction that makes the change. Replicas follow it (notified
// after each commit) and catch up from it after any gap.
type Revocation struct {
	Seq  int64
	Kind RevocationKind
	// SessionID is set for RevokedSession; PrincipalID for the principal
	// kinds and DeletedAPIKey; APIKeyID for DeletedAPIKey.
	SessionID   uuid.UUID
	PrincipalID uuid.UUID
	APIKeyID    uuid.UUID
	// RevokedAt is when the change happened.
	RevokedAt time.Time
}

// PendingDevice is a device-code login waiting for the person to finish it in
// a browser. Only a hash of the device code is stored; the user code is short
// and shown to the person.
type PendingDevice struct {
	ID             uuid.UUID
	Provider       string
	DeviceCodeHash []byte
	UserCode       string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	// SessionID is set once the person has logged in and typed the user code.
	SessionID *uuid.UUID
}

// AuthState carries what the second leg of an OAuth code flow needs (the PKCE
// verifier, the nonce, where to send the browser) from the first leg, which
// may have been served by another replica. Looked up by a hash of the state.
type AuthState struct {
	StateHash    []byte
	Provider     string
	CodeVerifier string
	Nonce        string
	// Extra is flow-specific data (for example the device user code), JSON.
	Extra     map[string]any
	CreatedAt time.Time
	ExpiresAt time.Time
}

// LoginAttempt is TakeLoginAttempt's answer.
type LoginAttempt struct {
	// Allowed: the attempt was counted and may go ahead.
	Allowed bool
	// Count is the attempts counted in the window, this one included.
	Count int
	// WindowEnd is when the window closes and counting starts afresh.
	WindowEnd time.Time
}

// PoolStats is a snapshot of a store's connection pool (pgxpool's Stat).
type PoolStats struct {
	Acquired, Idle, Total, Max, Constructing int32
	// Acquires counts every acquire; EmptyAcquires those that had to wait
	// for a connection; CanceledAcquires those abandoned while waiting.
	Acquires, EmptyAcquires, CanceledAcquires int64
	// AcquireDuration is the total time spent acquiring.
	AcquireDuration time.Duration
}

// GCResult counts what one garbage-collection pass deleted.
type GCResult struct {
	Sessions, PendingDevices, AuthStates, LoginAttempts, APIKeys, Revocations, AuditEvents int64
}

// Total is every row deleted.
func (r GCResult) Total() int64 {
	return r.Sessions + r.PendingDevices + r.AuthStates + r.LoginAttempts + r.APIKeys + r.Revocations + r.AuditEvents
}

// GCPolicy says what GC keeps.
type GCPolicy struct {
	// Retain keeps ended sessions (for whoami) and revocation-log entries
	// this long after they end.
	Retain time.Duration
	// AuditRetain keeps audit events this long; 0 keeps them for ever.
	AuditRetain time.Duration
	// Batch is the most rows one statement deletes.
	Batch int
}

// Store persists sessions and the short-lived state of login flows. Every
// method takes ctx first; errors are storeerr.ErrNotFound,
// storeerr.ErrConflict, storeerr.ErrUnavailable or ErrStaleRefresh (wrapped).
type Store interface {
	// CreateSession stores s. ErrNotFound if the principal does not exist.
	// With limit > 0 it is storeerr.ErrLimit, and nothing is written, if the
	// principal already has limit sessions active at s.CreatedAt; concurrent
	// calls cannot pass the limit together.
	CreateSession(ctx context.Context, s Session, limit int) error
	// GetSession returns a session, revoked or not.
	GetSession(ctx context.Context, id uuid.UUID) (Session, error)
	// ListSessions returns a principal's sessions, newest first.
	ListSessions(ctx context.Context, principalID uuid.UUID) ([]Session, error)
	// CountActiveSessions counts a principal's sessions that are active at now.
	CountActiveSessions(ctx context.Context, principalID uuid.UUID, now time.Time) (int, error)
	// RotateRefresh applies r in one atomic conditional update and returns the
	// session as it is afterwards. If the presented hash is not current it
	// returns ErrStaleRefresh; if the session is missing, revoked or expired,
	// ErrNotFound. Of N concurrent rotations with the same hash exactly one wins.
	// With ErrStaleRefresh it also returns the session as it is now, so the
	// caller can compare PrevRefreshHash and RotatedAt (grace window or
	// replay) without another read.
	// The rotated session is RotationPending until ConfirmRotations.
	// On success it also returns, read in the same statement, what new
	// tokens need of the session's principal (Rotated.Principal), unless
	// r.SkipPrincipal, so a refresh is one round trip either way.
	RotateRefresh(ctx context.Context, r Rotation) (Rotated, error)
	// ConfirmRotations clears RotationPending of each session whose
	// generation is still the one named; others are left alone.
	ConfirmRotations(ctx context.Context, refs []RotationRef) error
	// RevokeSession marks a session revoked (idempotent: revoking a revoked
	// session is not an error) and appends to the revocation log, atomically.
	// ErrNotFound if there is no such session.
	RevokeSession(ctx context.Context, id uuid.UUID, reason string, now time.Time) error
	// RevocationsSince returns log entries with Seq > after, oldest first.
	RevocationsSince(ctx context.Context, after int64, limit int) ([]Revocation, error)
	// RevocationLogStart returns a cursor for RevocationsSince from which
	// every entry that happened at or after since is read: one below the
	// oldest such entry, or the newest Seq if there is none (0 for an
	// empty log). A replica rebuilding its cache reads from there.
	RevocationLogStart(ctx context.Context, since time.Time) (int64, error)

	// CreatePendingDevice stores p. ErrConflict if its user code is in use by
	// a pending login of the same provider unexpired at p.CreatedAt (the
	// caller draws another), or if its device-code hash exists.
	CreatePendingDevice(ctx context.Context, p PendingDevice) error
	// ApprovePendingDevice attaches a session to the unexpired, unapproved
	// pending login with that provider and user code. ErrNotFound otherwise.
	ApprovePendingDevice(ctx context.Context, provider, userCode string, sessionID uuid.UUID, now time.Time) error
	// FindPendingDevice returns the unexpired, unapproved pending login with
	// that provider and user code, so that a mistyped code is turned away
	// before anything is written. ErrNotFound otherwise.
	FindPendingDevice(ctx context.Context, provider, userCode string, now time.Time) (PendingDevice, error)
	// TakePendingDevice returns the pending login with that device-code hash.
	// If it has been approved it is deleted in the same statement, so a device
	// code yields tokens exactly once. ErrNotFound if missing or expired.
	TakePendingDevice(ctx context.Context, provider string, deviceCodeHash []byte, now time.Time) (PendingDevice, error)

	// PutAuthState stores s. ErrConflict if the hash exists.
	PutAuthState(ctx context.Context, s AuthState) error
	// TakeAuthState returns and deletes the unexpired state with that hash,
	// atomically, so a state is used at most once. ErrNotFound otherwise.
	TakeAuthState(ctx context.Context, stateHash []byte, now time.Time) (AuthState, error)

	// TakeLoginAttempt counts a login attempt for key in a fixed window
	// that starts at the window's first attempt, unless max attempts are
	// counted in the open window already: then nothing is written and the
	// attempt is not Allowed. Of any number of concurrent calls for one key,
	// at most max are allowed per window.
	TakeLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (LoginAttempt, error)
	// ResetLoginAttempts forgets key (after a successful login).
	ResetLoginAttempts(ctx context.Context, key string) error
	// RefundLoginAttempt uncounts one attempt of key, if the window that
	// TakeLoginAttempt answered (windowEnd) is still the open one: the
	// attempt turned out not to be a failure. A count that falls to zero
	// removes the key. Concurrent takes and refunds of one key never lose
	// an update.
	RefundLoginAttempt(ctx context.Context, key string, windowEnd time.Time) error

	// GC deletes, in batches of at most p.Batch rows per statement,
	// sessions that can no longer be used at now (kept for p.Retain after
	// they end so that whoami can still show them), expired pending logins,
	// auth states, login counters and API keys, revocation log entries
	// older than p.Retain, and audit events older than p.AuditRetain.
	// One replica collects at a time: while another is collecting, GC
	// returns an empty result and no error.
	GC(ctx context.Context, now time.Time, p GCPolicy) (GCResult, error)
}
