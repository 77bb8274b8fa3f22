package pages

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/storeerr"
)

// Flash messages a redirect after an action asks for by name, so that no
// text from the URL is ever shown.
var flashes = map[string]string{
	"session-revoked": "The session was revoked: its tokens no longer work, on any replica.",
	"key-revoked":     "The API key was revoked: it no longer works, on any replica.",
}

// account is GET /account.
func (h *Handlers) account(c echo.Context) error {
	caller, err := h.caller(c)
	if err != nil {
		return err
	}
	if caller == nil {
		return h.toSignIn(c)
	}
	p := view.Page{Title: "My account", Flash: flashes[c.QueryParam("done")]}
	if caller.Kind == authn.SingleUser {
		p.Data = view.Account{SingleUser: true}
		return h.render(c, http.StatusOK, "account", caller, p)
	}
	d, err := h.accountOf(c, caller, caller.PrincipalID)
	if err != nil {
		return h.problem(c, caller, err)
	}
	p.Data = d
	return h.render(c, http.StatusOK, "account", caller, p)
}

// accountOf gathers what the account page shows of principal id.
func (h *Handlers) accountOf(c echo.Context, caller *authn.Caller, id uuid.UUID) (view.Account, error) {
	ctx := c.Request().Context()
	pr, err := h.Principals.GetPrincipal(ctx, id)
	if errors.Is(err, storeerr.ErrNotFound) {
		return view.Account{}, httperr.NotFound("No such principal.")
	} else if err != nil {
		return view.Account{}, err
	}
	self := id == caller.PrincipalID
	d := view.Account{
		Self: self, ID: pr.ID, Type: string(pr.Type), Identities: pr.Identities,
		CanEnd: self || caller.Admin, CanRevokeKeys: self && caller.Scopes.Has(identity.ScopeRevokeAPIKeys),
		CanCreateKey: self && caller.Scopes.Has(identity.ScopeCreateAPIKeys),
		Return:       accountPath,
	}
	if !self {
		d.Return = accountPath + "/principals/" + id.String()
	}
	for _, r := range pr.Roles {
		d.Roles = append(d.Roles, r.Name)
	}
	if self && len(caller.Identities) > 0 {
		d.Method = caller.Identities[0].Provider
	}
	if d.CanCreateKey {
		d.ScopeChoices = identity.ScopesOfRoles(pr.Roles).Intersect(caller.Scopes).Sorted()
	}
	ss, err := h.Sessions.ListSessions(ctx, id)
	if err != nil {
		return view.Account{}, err
	}
	now := h.Now().UTC()
	for _, s := range ss {
		if !s.Active(now) {
			continue
		}
		exp := s.RefreshExpiresAt
		if s.ExpiresAt != nil && s.ExpiresAt.Before(exp) {
			exp = *s.ExpiresAt
		}
		d.Sessions = append(d.Sessions, view.SessionRow{ID: s.ID, Created: s.CreatedAt, LastUsed: s.LastUsedAt,
			Expires: exp, Current: caller.Kind == authn.Session && s.ID == caller.SessionID})
	}
	keys, err := h.Principals.ListAPIKeys(ctx, id)
	if err != nil {
		return view.Account{}, err
	}
	for _, k := range keys {
		if k.ExpiresAt != nil && !k.ExpiresAt.After(now) {
			continue
		}
		d.Keys = append(d.Keys, view.KeyRow{FirstEight: k.FirstEight, Note: k.Note, Scopes: k.Scopes,
			Expires: k.ExpiresAt, LastUsed: k.LatestActivity})
	}
	return d, nil
}

// form reads a posted page form and checks its CSRF token. Outside of a
// signed-in page nothing is done: the browser goes to sign in.
func (h *Handlers) form(c echo.Context) (url.Values, *authn.Caller, error) {
	caller, err := h.caller(c)
	if err != nil {
		return nil, nil, err
	}
	form, err := readForm(c)
	if err != nil {
		return nil, caller, err
	}
	if err := view.CheckForm(c, form.Get(view.CSRFField)); err != nil {
		return nil, caller, err
	}
	return form, caller, nil
}

// sessionForm is the checked form of an action a signed-in session takes;
// otherwise the answer has been written (a problem page, or sign in).
func (h *Handlers) sessionForm(c echo.Context) (url.Values, *authn.Caller, bool, error) {
	form, caller, err := h.form(c)
	if err != nil {
		return nil, nil, false, h.problem(c, caller, err)
	}
	if caller == nil || caller.Kind != authn.Session {
		return nil, nil, false, h.toSignIn(c)
	}
	return form, caller, true, nil
}

// back redirects to where a Revoke came from, saying what was done.
func (h *Handlers) back(c echo.Context, form url.Values, done string) error {
	ret := localPath(form.Get("return"))
	if ret == "" || strings.Contains(ret, "?") {
		ret = accountPath
	}
	return c.Redirect(http.StatusSeeOther, view.RootPath(c.Request())+ret+"?done="+done)
}

// signOut is POST /account/logout: the session ends (everywhere, not just
// in this browser) and its cookies go; the single-user key's cookie goes.
func (h *Handlers) signOut(c echo.Context) error {
	_, caller, err := h.form(c)
	if err != nil {
		return h.problem(c, caller, err)
	}
	if caller != nil && caller.Kind == authn.Session {
		if err := h.Accounts.EndSession(c.Request().Context(), caller, caller.SessionID); err != nil && !isNotFound(err) {
			return h.problem(c, caller, err)
		}
	}
	clearSession(c)
	view.SetCookie(c, authn.APIKeyCookie, "", "/", -1)
	return c.Redirect(http.StatusSeeOther, view.RootPath(c.Request())+loginPath+"?signed_out=1")
}

// revokeSession is POST /account/sessions/{id}/revoke: one of the
// caller's sessions, or anyone's for an admin.
func (h *Handlers) revokeSession(c echo.Context) error {
	form, caller, ok, err := h.sessionForm(c)
	if !ok {
		return err
	}
	sid, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return h.problem(c, caller, httperr.NotFound("No such session."))
	}
	if err := h.Accounts.EndSession(c.Request().Context(), caller, sid); err != nil {
		return h.problem(c, caller, err)
	}
	if sid == caller.SessionID {
		clearSession(c)
		return c.Redirect(http.StatusSeeOther, view.RootPath(c.Request())+loginPath+"?signed_out=1")
	}
	return h.back(c, form, "session-revoked")
}

// createKey is POST /account/apikeys: a key for the caller, its secret
// shown once on the answer (never in a URL, never cached).
func (h *Handlers) createKey(c echo.Context) error {
	form, caller, ok, err := h.sessionForm(c)
	if !ok {
		return err
	}
	req := apikeys.Request{Note: strings.TrimSpace(form.Get("note"))}
	if len(req.Note) > 1000 {
		return h.problem(c, caller, httperr.Unprocessable("The note is too long (at most 1,000 characters)."))
	}
	if v := form.Get("expires_in"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > apikeys.MaxExpiresIn {
			return h.problem(c, caller, httperr.Unprocessable("Choose a lifetime from the list."))
		}
		req.ExpiresIn = &n
	}
	if scopes := form["scopes"]; len(scopes) > 0 {
		req.Scopes = slices.Compact(slices.Sorted(slices.Values(scopes)))
	}
	issued, err := h.Accounts.IssueOwnKey(c.Request().Context(), caller, req)
	if err != nil {
		return h.problem(c, caller, err)
	}
	return h.render(c, http.StatusOK, "key_created", caller, view.Page{Title: "API key created", Data: view.KeyCreated{
		Secret: issued.Secret, FirstEight: issued.Key.FirstEight, Note: issued.Key.Note, Scopes: issued.Key.Scopes,
		Expires: issued.Key.ExpiresAt}})
}

// revokeKey is POST /account/apikeys/{first_eight}/revoke.
func (h *Handlers) revokeKey(c echo.Context) error {
	form, caller, ok, err := h.sessionForm(c)
	if !ok {
		return err
	}
	first := c.Param("first_eight")
	if len(first) != 8 {
		return h.problem(c, caller, httperr.NotFound("No such API key."))
	}
	if err := h.Accounts.DeleteOwnKey(c.Request().Context(), caller, first); err != nil {
		return h.problem(c, caller, err)
	}
	return h.back(c, form, "key-revoked")
}

func isNotFound(err error) bool {
	var he *httperr.Error
	return errors.As(err, &he) && he.Status == http.StatusNotFound
}
