// Package pages serves the pages people use in a browser: sign in, their
// account (sessions and API keys, each with Revoke), and for admins the
// principals. Pages are rendered on the server (package view); a signed-in
// browser holds its session in two HttpOnly cookies that only /account
// receives, and every form carries a CSRF token.
//
// Pages perform nothing themselves: signing in, ending sessions and making
// or revoking keys are the auth API's own operations (Accounts), so a page
// and a script meet the same limits, messages and audit trail. What the
// pages own is the browser's session: its cookies, and keeping it alive by
// rotating its refresh token when the access token runs out.
package pages

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
)

// Accounts are the auth API's operations the pages perform
// (authapi.Handlers implements it).
type Accounts interface {
	SignInPassword(ctx context.Context, provider, username, password string) (sessions.Tokens, error)
	BeginSignIn(c echo.Context, provider, next string) error
	EndSession(ctx context.Context, caller *authn.Caller, sid uuid.UUID) error
	IssueOwnKey(ctx context.Context, caller *authn.Caller, req apikeys.Request) (apikeys.Issued, error)
	DeleteOwnKey(ctx context.Context, caller *authn.Caller, firstEight string) error
}

// Tokens is what the pages need of the session manager: rotating the
// browser's refresh token once its access token has run out (the access
// token itself is checked by the Resolver, as the API checks it).
type Tokens interface {
	Refresh(ctx context.Context, refreshToken string) (sessions.Tokens, error)
}

// SessionLister reads a principal's sessions.
type SessionLister interface {
	ListSessions(ctx context.Context, principalID uuid.UUID) ([]sessions.Session, error)
}

// Principals reads principals and their keys.
type Principals interface {
	GetPrincipal(ctx context.Context, id uuid.UUID) (identity.Principal, error)
	ListPrincipals(ctx context.Context, page identity.Page) ([]identity.Principal, int, error)
	ListAPIKeys(ctx context.Context, principalID uuid.UUID) ([]identity.APIKey, error)
}

// Handlers serves the pages.
type Handlers struct {
	// Accounts, Tokens, Sessions and Principals are nil in single-user
	// mode, where there is no one to sign in but the key's holder.
	Accounts   Accounts
	Tokens     Tokens
	Resolver   *authn.Resolver
	Sessions   SessionLister
	Principals Principals
	Providers  []view.Provider
	// SingleUser: the server has one API key and no providers.
	SingleUser bool
	View       *view.Renderer
	Now        func() time.Time
	Logger     *slog.Logger
}

// Paths of the pages. Every form posts under one of them; the API's own
// double-submit check leaves them to CheckForm (see OwnsCSRF).
const (
	loginPath   = "/login"
	accountPath = "/account"
)

// Register adds the pages at the root of the server.
func (h *Handlers) Register(g *echo.Group) {
	g = g.Group("", limitForm)
	g.GET(loginPath, h.loginPage)
	g.POST(loginPath+"/:provider", h.passwordSignIn)
	g.GET(loginPath+"/:provider", h.continueWith)
	g.GET(accountPath, h.account)
	g.POST(accountPath+"/logout", h.signOut)
	g.POST(accountPath+"/sessions/:id/revoke", h.revokeSession)
	g.POST(accountPath+"/apikeys", h.createKey)
	g.POST(accountPath+"/apikeys/:first_eight/revoke", h.revokeKey)
	g.GET(accountPath+"/principals", h.principals)
	g.GET(accountPath+"/principals/:id", h.principal)
}

// maxForm bounds a page form's body: the largest, a new key's note and
// scopes, is well under it.
const maxForm = 16 << 10

// limitForm refuses a larger body as it is read (FormParams then fails,
// and the page says the form could not be read).
func limitForm(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxForm)
		return next(c)
	}
}

// readForm reads a posted page form: 413 past maxForm, as the API answers
// an oversized body, and 400 for one that is not a form.
func readForm(c echo.Context) (url.Values, error) {
	form, err := c.FormParams()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "This form is larger than any page sends.")
	case err != nil:
		return nil, httperr.BadRequest("The form could not be read.")
	}
	return form, nil
}

// OwnsCSRF says whether route (a route template) is a page that checks its
// own forms' CSRF token, so the API's header-based check must not.
func (h *Handlers) OwnsCSRF(route string) bool {
	return route == loginPath || strings.HasPrefix(route, loginPath+"/") ||
		route == accountPath || strings.HasPrefix(route, accountPath+"/")
}

// render writes a page, with the header of the signed-in caller if any.
func (h *Handlers) render(c echo.Context, status int, name string, caller *authn.Caller, p view.Page) error {
	if p.Nav == nil && caller != nil {
		p.Nav = nav(caller)
	}
	return h.View.Render(c, status, name, p)
}

func nav(caller *authn.Caller) *view.Nav {
	switch caller.Kind {
	case authn.SingleUser:
		return &view.Nav{Name: "single-user key", SignOut: true}
	case authn.Session:
		return &view.Nav{Name: caller.Name(), Admin: caller.Scopes.Has(identity.ScopeReadPrincipals), SignOut: true}
	}
	return nil
}

// problem answers an error a person caused with a page saying so, with its
// status; anything else goes to the server's error handler (logged, 500).
func (h *Handlers) problem(c echo.Context, caller *authn.Caller, err error) error {
	he, ok := view.Shown(c, err)
	if !ok {
		return err
	}
	back := &view.Link{URL: view.RootPath(c.Request()) + accountPath, Label: "Back to my account"}
	if caller == nil {
		back = &view.Link{URL: view.RootPath(c.Request()) + loginPath, Label: "Sign in"}
	}
	return h.render(c, he.Status, "notice", caller, view.Page{Title: "Not done", Data: view.Notice{
		Heading: "That did not work", Message: view.Message(he), Next: back,
	}})
}

// message is the person-facing message of an error of ours.
func message(err error) string {
	var he *httperr.Error
	if errors.As(err, &he) {
		return view.Message(he)
	}
	return "Something went wrong."
}

// localPath accepts a place to land after signing in only if it is a path
// on this server's pages: never another site (an open redirect), never the
// API (a GET there could act on the person's behalf only through the
// cookie-less API, but there is no reason to allow it).
func localPath(next string) string {
	if !strings.HasPrefix(next, accountPath) || strings.ContainsAny(next, "\\\r\n") || strings.Contains(next, "//") {
		return ""
	}
	rest := strings.TrimPrefix(next, accountPath)
	if rest != "" && rest[0] != '/' && rest[0] != '?' {
		return ""
	}
	return next
}
