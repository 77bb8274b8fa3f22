package pages

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/sessions"
)

// maxCredential bounds what the sign-in form passes on: a username or
// password longer than this is nobody's.
const maxCredential = 1024

// loginPage is GET /login: every provider, a password form or a "Continue
// with" button each.
func (h *Handlers) loginPage(c echo.Context) error {
	d := view.Login{Providers: h.Providers, SingleUser: h.SingleUser, Next: localPath(c.QueryParam("next"))}
	p := view.Page{Title: "Sign in", Data: d}
	if c.QueryParam("signed_out") != "" {
		p.Flash = "You are signed out. This browser's session has ended."
	}
	return h.render(c, http.StatusOK, "login", nil, p)
}

// passwordSignIn is POST /login/{provider}: the password form.
func (h *Handlers) passwordSignIn(c echo.Context) error {
	name := c.Param("provider")
	if !h.hasProvider(name, false) {
		return httperr.NotFound("No such provider.")
	}
	form, err := readForm(c)
	if err != nil {
		return h.problem(c, nil, err)
	}
	d := view.Login{Providers: h.Providers, Next: localPath(form.Get("next")), Provider: name, Username: form.Get("username")}
	fail := func(status int, msg string) error {
		return h.render(c, status, "login", nil, view.Page{Title: "Sign in", Error: msg, Data: d})
	}
	if err := view.CheckForm(c, form.Get(view.CSRFField)); err != nil {
		return fail(http.StatusForbidden, message(err))
	}
	username, password := form.Get("username"), form.Get("password")
	if username == "" || password == "" {
		return fail(http.StatusUnprocessableEntity, "Enter a username and a password.")
	}
	if len(username) > maxCredential || len(password) > maxCredential {
		d.Username = ""
		return fail(http.StatusUnprocessableEntity, "That username or password is too long.")
	}
	t, err := h.Accounts.SignInPassword(c.Request().Context(), name, username, password)
	if err != nil {
		he, ok := view.Shown(c, err)
		if !ok {
			return err
		}
		return fail(he.Status, view.Message(he))
	}
	setSession(c, t)
	return h.land(c, d.Next)
}

// continueWith is GET /login/{provider} for an OIDC provider: off to the
// identity provider, back through its code route, then to the account.
func (h *Handlers) continueWith(c echo.Context) error {
	name := c.Param("provider")
	if !h.hasProvider(name, true) {
		return httperr.NotFound("No such provider.")
	}
	err := h.Accounts.BeginSignIn(c, name, localPath(c.QueryParam("next")))
	if err != nil {
		return h.problem(c, nil, err)
	}
	return nil
}

// SignedIn ends an OIDC sign-in begun here (authapi calls it from its code
// route): the browser gets its session and goes on.
func (h *Handlers) SignedIn(c echo.Context, t sessions.Tokens, next string) error {
	setSession(c, t)
	if u, err := url.Parse(next); err == nil && u.IsAbs() {
		// The operator's redirect_on_success.
		return c.Redirect(http.StatusSeeOther, next)
	}
	return h.land(c, localPath(next))
}

// land sends a browser that has just signed in to next, else its account.
func (h *Handlers) land(c echo.Context, next string) error {
	if next == "" {
		next = accountPath
	}
	return c.Redirect(http.StatusSeeOther, view.RootPath(c.Request())+next)
}

func (h *Handlers) hasProvider(name string, external bool) bool {
	for _, p := range h.Providers {
		if p.Name == name && p.External == external {
			return true
		}
	}
	return false
}
