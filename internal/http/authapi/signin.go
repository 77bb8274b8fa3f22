package authapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
)

// The operations the sign-in and account pages (package pages) perform.
// They are the JSON routes' own code with Go values in and out, so a page
// and a script meet the same limits, checks, messages and audit trail.

// Keys of AuthState.Extra for a sign-in begun on the sign-in page.
const (
	extraLanding = "landing"
	landingPages = "pages"
	extraNext    = "next"
)

// SignInPassword signs in with a password provider, as POST
// /auth/provider/{p}/token does: login limits, principal creation,
// tiled_admins, the session limit and the audit trail.
func (h *Handlers) SignInPassword(ctx context.Context, provider, username, password string) (sessions.Tokens, error) {
	p, ok := h.providerNamed(provider)
	if !ok || p.Password == nil {
		return sessions.Tokens{}, httperr.NotFound(fmt.Sprintf("No password provider %q", provider))
	}
	t, _, err := h.passwordSignIn(ctx, p, username, password)
	return t, err
}

// BeginSignIn sends the browser to an OIDC provider for a sign-in begun on
// the sign-in page. The provider comes back to the usual code route, which
// ends the sign-in with SignedIn rather than the token JSON. next is where
// to land after (a path the caller has checked), or "".
func (h *Handlers) BeginSignIn(c echo.Context, provider, next string) error {
	p, ok := h.providerNamed(provider)
	if !ok || p.OIDC == nil || h.SignedIn == nil {
		return httperr.NotFound(fmt.Sprintf("No provider %q to continue with", provider))
	}
	extra := map[string]any{extraLanding: landingPages}
	if next != "" {
		extra[extraNext] = next
	}
	u, state, err := h.beginLogin(c.Request().Context(), p, flowBrowser, providerURL(c, p, "code"), extra, authStateTTL)
	if err != nil {
		return h.oidcError(c, p, err)
	}
	setBinding(c, state, int(authStateTTL.Seconds()))
	return c.Redirect(http.StatusSeeOther, u)
}

// EndSession revokes a session on behalf of caller: one of its own, or any
// for an admin, as DELETE /auth/session/revoke/{id}.
func (h *Handlers) EndSession(ctx context.Context, caller *authn.Caller, sid uuid.UUID) error {
	if caller.Kind == authn.APIKey && !mayManageCredentials(caller) {
		return httperr.Forbidden("This API key may not end sessions.")
	}
	err := h.Manager.Revoke(ctx, caller, sid)
	if errors.Is(err, sessions.ErrEnded) {
		return httperr.NotFound("Sessions does not exist or requester has insufficient permissions")
	} else if err != nil {
		return err
	}
	h.recordBy(ctx, caller, audit.SessionRevoke, sid, map[string]any{"by": "id"})
	return nil
}

// IssueOwnKey makes an API key for caller's own principal, as POST
// /auth/apikey.
func (h *Handlers) IssueOwnKey(ctx context.Context, caller *authn.Caller, req apikeys.Request) (apikeys.Issued, error) {
	if !caller.Scopes.Has(identity.ScopeCreateAPIKeys) {
		return apikeys.Issued{}, httperr.Forbidden("Your sign-in does not allow creating API keys (scope create:apikeys).")
	}
	owner, err := h.Identities.GetPrincipal(ctx, caller.PrincipalID)
	if isNotFound(err) {
		return apikeys.Issued{}, httperr.Unauthorized("Principal no longer exists.")
	} else if err != nil {
		return apikeys.Issued{}, err
	}
	return h.issue(ctx, owner, ownGrant(owner, caller), req)
}

// DeleteOwnKey revokes one of caller's own keys, as DELETE /auth/apikey.
func (h *Handlers) DeleteOwnKey(ctx context.Context, caller *authn.Caller, firstEight string) error {
	if !caller.Scopes.Has(identity.ScopeRevokeAPIKeys) {
		return httperr.Forbidden("Your sign-in does not allow revoking API keys (scope revoke:apikeys).")
	}
	err := h.Identities.DeleteAPIKey(ctx, caller.PrincipalID, firstEight)
	if isNotFound(err) {
		return httperr.NotFound(fmt.Sprintf("The currently-authenticated %s has no such API key.", caller.PrincipalType))
	} else if err != nil {
		return err
	}
	h.recordBy(ctx, caller, audit.APIKeyDelete, uuid.Nil, map[string]any{"first_eight": firstEight})
	return nil
}

// providerNamed finds a configured provider.
func (h *Handlers) providerNamed(name string) (*Provider, bool) {
	for i := range h.Providers {
		if h.Providers[i].Name == name {
			return &h.Providers[i], true
		}
	}
	return nil, false
}

// pageSignedIn ends a sign-in begun on the sign-in page: the session goes
// to the browser (SignedIn sets its cookies) and the browser goes to the
// page it came for, else redirect_on_success, else its account.
func (h *Handlers) pageSignedIn(c echo.Context, p *Provider, st sessions.AuthState, t sessions.Tokens) error {
	next := extraString(st, extraNext)
	if next == "" {
		next = p.OIDC.RedirectOnSuccess()
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return h.SignedIn(c, t, next)
}
