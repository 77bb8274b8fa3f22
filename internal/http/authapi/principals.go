package authapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
)

// Page sizes, as Tiled's (tiled/server/settings: DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE).
const (
	defaultPageSize = 100
	maxPageSize     = 300
)

// listPrincipals is GET /auth/principal (read:principals).
func (h *Handlers) listPrincipals(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeReadPrincipals); err != nil {
		return err
	}
	offset, err := queryInt(c, "page[offset]", 0, 0, -1)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "page[limit]", defaultPageSize, 0, maxPageSize)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ps, _, err := h.Identities.ListPrincipals(ctx, identity.Page{Offset: offset, Limit: limit})
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		one, err := h.renderPrincipal(ctx, p.ID)
		if isNotFound(err) {
			continue // deleted between the list and the read
		} else if err != nil {
			return err
		}
		out = append(out, one)
	}
	return c.JSON(http.StatusOK, out)
}

// getPrincipal is GET /auth/principal/{uuid} (read:principals).
func (h *Handlers) getPrincipal(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeReadPrincipals); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("uuid"))
	if err != nil {
		return unprocessable(invalid("Input should be a valid UUID", "uuid"))
	}
	out, err := h.renderPrincipal(c.Request().Context(), id)
	if isNotFound(err) {
		return httperr.NotFound(fmt.Sprintf("No such Principal %s", id))
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// createServicePrincipal is POST /auth/principal?role=... (write:principals):
// a principal with no identity, that acts through API keys an admin makes.
func (h *Handlers) createServicePrincipal(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeWritePrincipals); err != nil {
		return err
	}
	q := c.QueryParams()
	if !q.Has("role") {
		return httperr.Unprocessable([]map[string]any{{"type": "missing", "loc": []any{"query", "role"}, "msg": "Field required", "input": nil}})
	}
	role := q.Get("role")
	if _, ok := identity.RoleByName(role); !ok {
		return httperr.BadRequest(fmt.Sprintf("No such role %q", role))
	}
	ctx := c.Request().Context()
	p, err := h.Identities.CreatePrincipal(ctx, identity.Principal{
		ID: uuid.New(), Type: identity.TypeService, CreatedAt: h.Now().UTC(),
		Roles: []identity.Role{{Name: role}},
	})
	if err != nil {
		return err
	}
	out, err := h.renderPrincipal(ctx, p.ID)
	if err != nil {
		return err
	}
	h.recordBy(ctx, authn.FromContext(ctx), audit.PrincipalCreate, uuid.Nil, map[string]any{"created": p.ID.String(),
		"type": string(identity.TypeService), "roles": []string{role}})
	return c.JSON(http.StatusOK, out)
}

// queryInt reads an integer query parameter within [lo, hi] (hi < 0: no max).
func queryInt(c echo.Context, name string, def, lo, hi int) (int, error) {
	q := c.QueryParams()
	if !q.Has(name) {
		return def, nil
	}
	v, err := strconv.Atoi(q.Get(name))
	if err != nil || v < lo || (hi >= 0 && v > hi) {
		return 0, httperr.Unprocessable([]map[string]any{{
			"type": "int_parsing", "loc": []any{"query", name},
			"msg": fmt.Sprintf("Input should be a valid integer between %d and %d", lo, hi), "input": q.Get(name),
		}})
	}
	return v, nil
}
