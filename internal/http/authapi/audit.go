package authapi

import (
	"context"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/forwarded"
)

// record adds an event to the audit trail with the request's client
// address. Without a recorder (tests that do not look) it does nothing.
func (h *Handlers) record(ctx context.Context, e audit.Event) {
	if h.Audit == nil {
		return
	}
	if e.ClientAddr == "" {
		e.ClientAddr = forwarded.FromContext(ctx).String()
	}
	h.Audit.Record(ctx, e)
}

// recordLogin records a login's outcome. On success principal and session
// are the new session's; on failure only what was tried is known.
func (h *Handlers) recordLogin(ctx context.Context, provider, id, outcome string, principal, session uuid.UUID, detail map[string]any) {
	h.record(ctx, audit.Event{
		Name: audit.Login, Outcome: outcome, Provider: provider, IdentityID: id,
		PrincipalID: principal, SessionID: session, Detail: detail,
	})
}

// recordBy records an event done by the request's caller (its principal,
// and its session or key).
func (h *Handlers) recordBy(ctx context.Context, caller *authn.Caller, name string, session uuid.UUID, detail map[string]any) {
	e := audit.Event{Name: name, Outcome: audit.Success, SessionID: session, Detail: detail}
	if caller != nil {
		e.PrincipalID = caller.PrincipalID
		if len(caller.Identities) > 0 {
			e.Provider, e.IdentityID = caller.Identities[0].Provider, caller.Identities[0].ID
		}
		if e.Detail == nil {
			e.Detail = map[string]any{}
		}
		e.Detail["caller"] = caller.Kind.String()
		if caller.APIKeyFirstEight != "" {
			e.Detail["caller_key"] = caller.APIKeyFirstEight
		}
		if session == uuid.Nil && caller.SessionID != uuid.Nil {
			e.Detail["caller_session"] = caller.SessionID.String()
		}
	}
	h.record(ctx, e)
}
