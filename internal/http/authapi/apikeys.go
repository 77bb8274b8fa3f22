package authapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
)

// parseKeyRequest reads Tiled's APIKeyRequestParams. Every member is optional
// but must have the right type when present.
func parseKeyRequest(r *http.Request) (apikeys.Request, error) {
	body, err := readJSON(r)
	if err != nil {
		return apikeys.Request{}, err
	}
	var req apikeys.Request
	var problems []map[string]any
	decode := func(name string, dst any, msg string) {
		raw, ok := body[name]
		if !ok || string(raw) == "null" {
			return
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			problems = append(problems, invalid(msg, name))
		}
	}
	var expires *float64
	decode("scopes", &req.Scopes, "Input should be a valid list of strings")
	decode("expires_in", &expires, "Input should be a valid integer")
	decode("note", &req.Note, "Input should be a valid string")
	decode("access_tags", &req.AccessTags, "Input should be a valid list of strings")
	if expires != nil {
		switch {
		case *expires > float64(apikeys.MaxExpiresIn):
			problems = append(problems, tooLong(body["expires_in"]))
		case *expires != math.Trunc(*expires):
			problems = append(problems, invalid("Input should be a valid integer", "expires_in"))
		case *expires < 1:
			problems = append(problems, invalid("Input should be greater than 0", "expires_in"))
		default:
			n := int64(*expires)
			req.ExpiresIn = &n
		}
	}
	if raw, ok := body["scopes"]; ok && string(raw) != "null" && req.Scopes == nil {
		req.Scopes = []string{} // an explicit empty list, not "inherit"
	}
	if len(problems) > 0 {
		return apikeys.Request{}, unprocessable(problems...)
	}
	return req, nil
}

// tooLong is pydantic's less_than_equal error for an expires_in past the
// cap, saying what the cap is in words too.
func tooLong(input json.RawMessage) map[string]any {
	d := invalid(fmt.Sprintf("Input should be less than or equal to %d (100 years): an API key may live at most that long",
		apikeys.MaxExpiresIn), "expires_in")
	d["type"] = "less_than_equal"
	d["ctx"] = map[string]any{"le": apikeys.MaxExpiresIn}
	if input != nil {
		d["input"] = input
	}
	return d
}

// issueKey makes a key for owner on behalf of a creator allowed grant.
func (h *Handlers) issueKey(c echo.Context, owner identity.Principal, grant apikeys.Grant) error {
	req, err := parseKeyRequest(c.Request())
	if err != nil {
		return err
	}
	issued, err := h.issue(c.Request().Context(), owner, grant, req)
	if err != nil {
		return err
	}
	out := apiKeyJSON(issued.Key)
	if exp := issued.Key.ExpiresAt; exp != nil {
		out["expiration_time"] = exp.UTC().Format(awareTimeLayout)
	}
	out["secret"] = issued.Secret
	return c.JSON(http.StatusOK, out)
}

// issue makes the key, records it, and says in Tiled's words why not.
func (h *Handlers) issue(ctx context.Context, owner identity.Principal, grant apikeys.Grant, req apikeys.Request) (apikeys.Issued, error) {
	issued, err := h.APIKeys.Issue(ctx, owner, grant, req)
	switch {
	case errors.Is(err, apikeys.ErrScopesNotHeld):
		return issued, httperr.Forbidden(fmt.Sprintf("Requested scopes %s must be a subset of the principal's scopes %s.",
			authn.PyList(req.Scopes), authn.PyList(grant.Scopes.Sorted())))
	case errors.Is(err, apikeys.ErrTagsNotHeld):
		return issued, httperr.Forbidden(fmt.Sprintf("This API key is restricted to access tags %s; a key it creates must be "+
			"restricted to some of them (requested access_tags %s).", authn.PyList(grant.AccessTags), pyListOrNone(req.AccessTags)))
	case errors.Is(err, apikeys.ErrTagsUnenforced):
		return issued, httperr.BadRequest("access_tags restrict a key only under a tag-based access policy " +
			"(access_control with TagBasedAccessPolicy), and this server has none: the key would reach everything " +
			"its scopes allow. Create the key without access_tags.")
	case errors.Is(err, apikeys.ErrTagsWithScopes):
		return issued, httperr.Forbidden(fmt.Sprintf("Requested scopes %s contain scopes that cannot be combined with access tag restrictions.",
			authn.PyList(req.Scopes)))
	case errors.Is(err, apikeys.ErrInvalidLifetime):
		return issued, unprocessable(invalid("Input should be greater than 0", "expires_in"))
	case errors.Is(err, apikeys.ErrLifetimeTooLong):
		return issued, unprocessable(tooLong(nil))
	case errors.Is(err, apikeys.ErrTooManyKeys):
		return issued, httperr.BadRequest(fmt.Sprintf("This Principal already has %d API keys which is greater than or equal to "+
			"the maximum number allowed, %d. Some API keys must be deleted before creating new ones.",
			apikeys.MaxKeysPerPrincipal, apikeys.MaxKeysPerPrincipal))
	case err != nil:
		return issued, err
	}
	ev := audit.Event{Name: audit.APIKeyCreate, Outcome: audit.Success, PrincipalID: owner.ID,
		Detail: map[string]any{"first_eight": issued.Key.FirstEight, "scopes": issued.Key.Scopes}}
	if caller := authn.FromContext(ctx); caller.PrincipalID != owner.ID {
		ev.Detail["created_by"] = caller.PrincipalID.String() // an admin, for a service principal
	}
	h.record(ctx, ev)
	return issued, nil
}

// ownGrant is what a caller may put in a key for its own principal: a
// session what its principal holds; an API key only what it holds itself,
// within the access tags it is restricted to.
func ownGrant(owner identity.Principal, caller *authn.Caller) apikeys.Grant {
	return apikeys.Grant{Scopes: identity.ScopesOfRoles(owner.Roles).Intersect(caller.Scopes), AccessTags: caller.AccessTags}
}

// createAPIKey is POST /auth/apikey: a key for the caller's own principal.
func (h *Handlers) createAPIKey(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeCreateAPIKeys); err != nil {
		return err
	}
	caller, err := principalCaller(c)
	if err != nil {
		return err
	}
	owner, err := h.Identities.GetPrincipal(c.Request().Context(), caller.PrincipalID)
	if err != nil {
		if isNotFound(err) {
			return httperr.Unauthorized("Principal no longer exists.")
		}
		return err
	}
	return h.issueKey(c, owner, ownGrant(owner, caller))
}

// apiKeyInfo is GET /auth/apikey: what the presented key is.
func (h *Handlers) apiKeyInfo(c echo.Context) error {
	creds, err := authn.Extract(c.Request())
	if err != nil {
		return err
	}
	if creds.APIKey == "" {
		return httperr.New(http.StatusUnauthorized, authn.MsgNoAPIKeyProvided)
	}
	k, err := h.APIKeys.Lookup(c.Request().Context(), creds.APIKey)
	if errors.Is(err, authn.ErrInvalidAPIKey) {
		return httperr.New(http.StatusUnauthorized, authn.MsgInvalidAPIKey)
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiKeyJSON(k))
}

// deleteAPIKey is DELETE /auth/apikey?first_eight=: revoke one of the
// caller's own keys.
func (h *Handlers) deleteAPIKey(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeRevokeAPIKeys); err != nil {
		return err
	}
	caller, err := principalCaller(c)
	if err != nil {
		return err
	}
	first, err := firstEightParam(c)
	if err != nil {
		return err
	}
	err = h.Identities.DeleteAPIKey(c.Request().Context(), caller.PrincipalID, first)
	if isNotFound(err) {
		return httperr.NotFound(fmt.Sprintf("The currently-authenticated %s has no such API key.", caller.PrincipalType))
	} else if err != nil {
		return err
	}
	h.recordBy(c.Request().Context(), caller, audit.APIKeyDelete, uuid.Nil, map[string]any{"first_eight": first})
	return c.NoContent(http.StatusNoContent)
}

// createAPIKeyFor is POST /auth/principal/{uuid}/apikey (admin:apikeys).
func (h *Handlers) createAPIKeyFor(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeAdminAPIKeys); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("uuid"))
	if err != nil {
		return unprocessable(invalid("Input should be a valid UUID", "uuid"))
	}
	owner, err := h.Identities.GetPrincipal(c.Request().Context(), id)
	if isNotFound(err) {
		return httperr.NotFound(fmt.Sprintf("Principal %s does not exist or insufficient permissions.", id))
	} else if err != nil {
		return err
	}
	// An admin key cannot carry access tags (ErrTagsWithScopes), so the
	// creator is unrestricted here; its tags are passed all the same.
	caller := authn.FromContext(c.Request().Context())
	return h.issueKey(c, owner, apikeys.Grant{Scopes: identity.ScopesOfRoles(owner.Roles), AccessTags: caller.AccessTags})
}

// deleteAPIKeyFor is DELETE /auth/principal/{uuid}/apikey?first_eight= (admin:apikeys).
func (h *Handlers) deleteAPIKeyFor(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeAdminAPIKeys); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("uuid"))
	if err != nil {
		return unprocessable(invalid("Input should be a valid UUID", "uuid"))
	}
	first, err := firstEightParam(c)
	if err != nil {
		return err
	}
	err = h.Identities.DeleteAPIKey(c.Request().Context(), id, first)
	if isNotFound(err) {
		return httperr.NotFound(fmt.Sprintf("The principal %s has no such API key.", id))
	} else if err != nil {
		return err
	}
	caller := authn.FromContext(c.Request().Context())
	h.record(c.Request().Context(), audit.Event{Name: audit.APIKeyDelete, Outcome: audit.Success, PrincipalID: id,
		Detail: map[string]any{"first_eight": first, "deleted_by": caller.PrincipalID.String()}})
	return c.NoContent(http.StatusNoContent)
}

func firstEightParam(c echo.Context) (string, error) {
	q := c.QueryParams()
	if !q.Has("first_eight") {
		return "", httperr.Unprocessable([]map[string]any{{"type": "missing", "loc": []any{"query", "first_eight"}, "msg": "Field required", "input": nil}})
	}
	f := q.Get("first_eight")
	if len(f) > 8 {
		f = f[:8]
	}
	return f, nil
}

// pyListOrNone is Python's repr of an optional list of strings.
func pyListOrNone(l []string) string {
	if l == nil {
		return "None"
	}
	return authn.PyList(l)
}
