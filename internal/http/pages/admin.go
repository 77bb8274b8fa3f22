package pages

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
)

// principalsPerPage is how many principals a page lists.
const principalsPerPage = 50

// admin is the signed-in caller if it may read principals; otherwise the
// answer has been written (sign in, or a 403 page).
func (h *Handlers) admin(c echo.Context) (*authn.Caller, bool, error) {
	caller, err := h.caller(c)
	if err != nil {
		return nil, false, err
	}
	if caller == nil {
		return nil, false, h.toSignIn(c)
	}
	if caller.Kind != authn.Session || !caller.Scopes.Has(identity.ScopeReadPrincipals) {
		return nil, false, h.problem(c, caller, httperr.Forbidden("Only administrators may see other principals."))
	}
	return caller, true, nil
}

// principals is GET /account/principals (admins).
func (h *Handlers) principals(c echo.Context) error {
	caller, ok, err := h.admin(c)
	if !ok {
		return err
	}
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	offset = max(0, offset)
	ctx := c.Request().Context()
	ps, total, err := h.Principals.ListPrincipals(ctx, identity.Page{Offset: offset, Limit: principalsPerPage})
	if err != nil {
		return err
	}
	now := h.Now().UTC()
	d := view.Principals{Prev: offset > 0, PrevOffset: max(0, offset-principalsPerPage),
		Next: offset+len(ps) < total, NextOffset: offset + len(ps)}
	for _, p := range ps {
		row := view.PrincipalRow{ID: p.ID, Type: string(p.Type), LatestActivity: p.LatestActivity}
		for _, i := range p.Identities {
			row.Identities = append(row.Identities, i.ID+" ("+i.Provider+")")
		}
		for _, r := range p.Roles {
			row.Roles = append(row.Roles, r.Name)
		}
		ss, err := h.Sessions.ListSessions(ctx, p.ID)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.Active(now) {
				row.Sessions++
			}
		}
		keys, err := h.Principals.ListAPIKeys(ctx, p.ID)
		if err != nil {
			return err
		}
		row.Keys = len(keys)
		d.Rows = append(d.Rows, row)
	}
	return h.render(c, http.StatusOK, "principals", caller, view.Page{Title: "Principals", Data: d})
}

// principal is GET /account/principals/{id} (admins): the account page of
// another principal, with Revoke on each of its sessions.
func (h *Handlers) principal(c echo.Context) error {
	caller, ok, err := h.admin(c)
	if !ok {
		return err
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return h.problem(c, caller, httperr.NotFound("No such principal."))
	}
	d, err := h.accountOf(c, caller, id)
	if err != nil {
		return h.problem(c, caller, err)
	}
	return h.render(c, http.StatusOK, "account", caller, view.Page{Title: "Principal", Flash: flashes[c.QueryParam("done")], Data: d})
}
