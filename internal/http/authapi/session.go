package authapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
)

// refreshTokenFrom reads {"refresh_token": "..."} from a JSON body, or the
// OAuth2 form (grant_type=refresh_token) some clients post instead.
func refreshTokenFrom(r *http.Request) (string, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := readForm(r)
		if err != nil {
			return "", err
		}
		if !form.Has("refresh_token") {
			return "", unprocessable(missing("refresh_token"))
		}
		return form.Get("refresh_token"), nil
	}
	body, err := readJSON(r)
	if err != nil {
		return "", err
	}
	tok, problem := stringField(body, "refresh_token")
	if problem != nil {
		return "", unprocessable(*problem)
	}
	return tok, nil
}

// refresh is POST /auth/session/refresh.
func (h *Handlers) refresh(c echo.Context) error {
	tok, err := refreshTokenFrom(c.Request())
	if err != nil {
		return err
	}
	t, err := h.Manager.Refresh(c.Request().Context(), tok)
	var reused *sessions.ReusedError
	if errors.As(err, &reused) {
		h.record(c.Request().Context(), audit.Event{Name: audit.RefreshReuse, Outcome: audit.Failure,
			PrincipalID: reused.PrincipalID, SessionID: reused.SessionID,
			Detail: map[string]any{"action": "session revoked"}})
	}
	switch {
	case errors.Is(err, sessions.ErrMalformed):
		return httperr.Unauthorized(authn.MsgBadCredentials)
	case errors.Is(err, sessions.ErrEnded):
		return sessionEnded()
	case errors.Is(err, sessions.ErrNewerKey):
		return httperr.Unavailable("This session was refreshed by a server holding a newer signing key. Please retry.", 1).Wrap(err)
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, tokenResponse(t, "", ""))
}

// revokeByToken is POST /auth/session/revoke: whoever holds a refresh token
// may end its session.
func (h *Handlers) revokeByToken(c echo.Context) error {
	tok, err := refreshTokenFrom(c.Request())
	if err != nil {
		return err
	}
	sid, err := h.Manager.RevokeByRefreshToken(c.Request().Context(), tok)
	switch {
	case errors.Is(err, sessions.ErrMalformed):
		return httperr.Unauthorized(authn.MsgBadCredentials)
	case errors.Is(err, sessions.ErrEnded):
		return httperr.Conflict(fmt.Sprintf("No session %s", hexID(sid)))
	case err != nil:
		return err
	}
	h.record(c.Request().Context(), audit.Event{Name: audit.SessionRevoke, Outcome: audit.Success, SessionID: sid,
		Detail: map[string]any{"by": "refresh_token"}})
	return c.NoContent(http.StatusNoContent)
}

// revokeByID is DELETE /auth/session/revoke/{session_id}: a principal ends
// one of its own sessions (an admin, anyone's).
func (h *Handlers) revokeByID(c echo.Context) error {
	caller, err := principalCaller(c)
	if err != nil {
		return err
	}
	if err := requireKeyManagement(c, caller); err != nil {
		return err
	}
	raw := c.Param("session_id")
	sid, err := uuid.Parse(raw)
	if err != nil {
		return httperr.NotFound(fmt.Sprintf("No session %s", raw))
	}
	err = h.Manager.Revoke(c.Request().Context(), caller, sid)
	if errors.Is(err, sessions.ErrEnded) {
		return httperr.NotFound("Sessions does not exist or requester has insufficient permissions")
	} else if err != nil {
		return err
	}
	h.recordBy(c.Request().Context(), caller, audit.SessionRevoke, sid, map[string]any{"by": "id"})
	return c.NoContent(http.StatusNoContent)
}

// logout is Tiled's deprecated POST /auth/logout: it clears the API-key
// cookie. Going further than Tiled, a request made with a session's access
// token also ends that session, so "log out" means what it says.
func (h *Handlers) logout(c echo.Context) error {
	if caller, err := authn.Current(c.Request().Context()); err == nil && caller.Kind == authn.Session {
		if err := h.Manager.Revoke(c.Request().Context(), caller, caller.SessionID); err != nil && !errors.Is(err, sessions.ErrEnded) {
			return err
		}
		h.recordBy(c.Request().Context(), caller, audit.SessionRevoke, caller.SessionID, map[string]any{"by": "logout"})
	}
	view.SetCookie(c, authn.APIKeyCookie, "", "/", -1)
	return c.JSON(http.StatusOK, map[string]any{})
}

// whoami is GET /auth/whoami: the caller's principal, or null when anonymous.
func (h *Handlers) whoami(c echo.Context) error {
	caller, err := authn.Current(c.Request().Context())
	if err != nil {
		return err
	}
	if !caller.IsPrincipal() {
		return c.JSONBlob(http.StatusOK, []byte("null"))
	}
	out, err := h.renderPrincipal(c.Request().Context(), caller.PrincipalID)
	if err != nil {
		if isNotFound(err) {
			return httperr.Unauthorized("Principal no longer exists.")
		}
		return err
	}
	if !mayManageCredentials(caller) {
		// A key that may not manage its owner's credentials does not see
		// them either (the same members, empty).
		out["api_keys"], out["sessions"] = []any{}, []any{}
	}
	return c.JSON(http.StatusOK, out)
}

// mayManageCredentials says whether caller may see and end its owner's
// sessions and keys. A session may (it is the person, logged in); an API
// key only with revoke:apikeys, the scope that already lets it delete the
// owner's keys (the user role holds it, so a key of scopes ["inherit"]
// works as in Tiled), or as an admin key (read:principals or
// write:principals, which reach every principal's anyway). Without it, a
// key handed to a notebook or a service for reading data cannot list the
// owner's keys and sessions or log the owner out.
func mayManageCredentials(caller *authn.Caller) bool {
	return caller.Kind != authn.APIKey || caller.Admin ||
		caller.Scopes.Has(identity.ScopeRevokeAPIKeys) || caller.Scopes.Has(identity.ScopeReadPrincipals)
}

// requireKeyManagement is Tiled's scope 401 for an API key that may not
// end sessions (see mayManageCredentials).
func requireKeyManagement(c echo.Context, caller *authn.Caller) error {
	if caller.Kind != authn.APIKey || caller.Admin {
		return nil
	}
	return authn.RequireScopes(c.Request(), identity.ScopeRevokeAPIKeys)
}

// principalCaller returns the caller if it is a logged-in principal (session
// or API key), else FastAPI's 401 "Not authenticated".
func principalCaller(c echo.Context) (*authn.Caller, error) {
	caller, err := authn.Current(c.Request().Context())
	if err != nil {
		return nil, err
	}
	if !caller.IsPrincipal() {
		return nil, httperr.Unauthorized("Not authenticated")
	}
	return caller, nil
}

func hexID(id uuid.UUID) string { return strings.ReplaceAll(id.String(), "-", "") }
