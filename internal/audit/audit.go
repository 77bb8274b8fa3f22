// Package audit records the security-relevant events of the authentication
// layer (logins and their failures, refresh-token reuse, revocations, API
// keys created and deleted, principals created and roles granted): each one
// as a structured log record and a row in the session database, which is
// kept for a retention period and deleted by the store's GC. An event never
// carries a secret: no password, token, refresh token or API key (a key is
// named by its first eight characters, which listings show anyway).
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/logging"
)

// Event names.
const (
	Login              = "login"                // a password, OIDC or device-code login
	LoginThrottled     = "login.throttled"      // refused by a login limit (logged only)
	RefreshReuse       = "session.reuse"        // a rotated refresh token presented again: session revoked
	SessionRevoke      = "session.revoke"       // detail.by: refresh_token, id or logout
	APIKeyCreate       = "apikey.create"        // detail.first_eight, detail.scopes
	APIKeyDelete       = "apikey.delete"        // detail.first_eight
	PrincipalCreate    = "principal.create"     // detail.type, detail.roles
	PrincipalRoleGrant = "principal.role_grant" // detail.role
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
)

// Event is one audit event.
type Event struct {
	ID   int64
	At   time.Time
	Name string
	// Outcome is Success or Failure.
	Outcome     string
	PrincipalID uuid.UUID // zero when unknown (a failed login)
	Provider    string
	// IdentityID is the identity's id at the provider (a username, an
	// OIDC subject); for a failed login, the username that was tried.
	IdentityID string
	ClientAddr string
	SessionID  uuid.UUID // zero when none
	RequestID  string
	// Detail holds event-specific facts, never a secret.
	Detail map[string]any
}

// Store keeps audit events.
type Store interface {
	// AppendAuditEvent stores e (its ID is assigned by the store).
	AppendAuditEvent(ctx context.Context, e Event) error
	// AuditEvents returns the events at or after since, oldest first, at
	// most limit of them.
	AuditEvents(ctx context.Context, since time.Time, limit int) ([]Event, error)
}

// Recorder writes events to the log and the store. A nil Store records to
// the log only (single-user mode has no database).
type Recorder struct {
	Store  Store
	Logger *slog.Logger
	Now    func() time.Time
	// Count, when set, is told of every event (metrics).
	Count Counter
}

// Counter counts events (the metrics registry implements it).
type Counter interface {
	AuditEvent(Event)
}

// Record logs e as one structured record ("audit" with its fields) and
// appends it to the store. Failing to store it is logged, never returned:
// the log record already holds the event, and refusing logins because the
// audit table is unreachable would turn a database hiccup into an outage.
func (r *Recorder) Record(ctx context.Context, e Event) {
	if r == nil {
		return
	}
	if e.At.IsZero() {
		e.At = r.Now().UTC()
	}
	if e.RequestID == "" {
		e.RequestID = logging.RequestID(ctx)
	}
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	if r.Count != nil {
		r.Count.AuditEvent(e)
	}
	level := slog.LevelInfo
	if e.Outcome == Failure || e.Name == RefreshReuse {
		level = slog.LevelWarn
	}
	r.Logger.Log(ctx, level, "audit", "event", e.Name, "outcome", e.Outcome,
		"principal", idOrEmpty(e.PrincipalID), "provider", e.Provider, "identity", e.IdentityID,
		"client", e.ClientAddr, "session", idOrEmpty(e.SessionID), "detail", e.Detail)
	if r.Store == nil || e.Name == LoginThrottled {
		// Throttled attempts are not stored: a client hammering a limit
		// would otherwise write a row per attempt, which is what the
		// limit exists to prevent. The failures that reached it are.
		return
	}
	if err := r.Store.AppendAuditEvent(ctx, e); err != nil {
		r.Logger.WarnContext(ctx, "store audit event", "event", e.Name, "error", err)
	}
}

func idOrEmpty(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}
