package pages

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/sessions"
)

// The browser's session: the access token and the refresh token of an
// ordinary session, each in an HttpOnly cookie that only the account pages
// receive (Path=/account): the API never sees them, so they cannot be
// replayed against it from another site, and no script can read them.
// SameSite=Lax rather than Strict, because a sign-in through an identity
// provider lands here at the end of a redirect chain that began on the
// provider's site, and Strict would withhold the cookies from it.
const (
	accessCookie  = "tiled_access_token"
	refreshCookie = "tiled_refresh_token"
)

// setSession gives the browser a session's tokens. The refresh cookie
// lives as long as the refresh token; the access cookie as long as the
// access token, after which the next page rotates the refresh token.
func setSession(c echo.Context, t sessions.Tokens) {
	put(c, accessCookie, t.AccessToken, int(t.ExpiresIn))
	put(c, refreshCookie, t.RefreshToken, int(t.RefreshTokenExpiresIn))
}

// clearSession removes both cookies.
func clearSession(c echo.Context) {
	put(c, accessCookie, "", -1)
	put(c, refreshCookie, "", -1)
}

func put(c echo.Context, name, value string, maxAge int) {
	view.SetCookie(c, name, value, view.RootPath(c.Request())+accountPath, maxAge)
}

// caller is who is signed in on this page: the browser's session (rotating
// its refresh token when the access token has run out), else the caller
// the API's middleware found (the single-user key's cookie), else nil.
// A session that has ended clears its cookies and reads as signed out.
func (h *Handlers) caller(c echo.Context) (*authn.Caller, error) {
	r := c.Request()
	ctx := r.Context()
	if h.Tokens != nil {
		if ck, err := r.Cookie(accessCookie); err == nil && ck.Value != "" {
			if caller, err := h.Resolver.Resolve(ctx, authn.Credentials{Bearer: ck.Value}); err == nil && caller.Kind == authn.Session {
				return h.adopt(c, caller), nil
			}
		}
		if ck, err := r.Cookie(refreshCookie); err == nil && ck.Value != "" {
			t, err := h.Tokens.Refresh(ctx, ck.Value)
			switch {
			case errors.Is(err, sessions.ErrEnded), errors.Is(err, sessions.ErrMalformed):
				clearSession(c)
			case err != nil:
				return nil, err
			default:
				setSession(c, t)
				caller, err := h.Resolver.Resolve(ctx, authn.Credentials{Bearer: t.AccessToken})
				if err != nil {
					return nil, err
				}
				return h.adopt(c, caller), nil
			}
		}
	}
	if caller := authn.FromContext(ctx); caller != nil && caller.Kind == authn.SingleUser {
		return caller, nil
	}
	return nil, nil
}

// adopt makes caller the request's caller, for the access log and the
// audit trail of what the page does.
func (h *Handlers) adopt(c echo.Context, caller *authn.Caller) *authn.Caller {
	r := c.Request()
	c.SetRequest(r.WithContext(authn.WithCaller(r.Context(), caller)))
	return caller
}

// toSignIn sends a signed-out browser to the sign-in page, to come back
// here afterwards. (Paths on the request are below the root path: the
// proxy strips it.)
func (h *Handlers) toSignIn(c echo.Context) error {
	r := c.Request()
	target := view.RootPath(r) + loginPath
	if next := localPath(r.URL.RequestURI()); next != "" && r.Method == http.MethodGet && next != accountPath {
		target += "?next=" + url.QueryEscape(next)
	}
	return c.Redirect(http.StatusSeeOther, target)
}
