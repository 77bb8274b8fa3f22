package authapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/http/httperr"
)

// passwordLogin is Tiled's handle_credentials_route: an OAuth2 password
// grant posted as a form (OAuth2PasswordRequestForm).
func (h *Handlers) passwordLogin(c echo.Context, p *Provider) error {
	form, err := readForm(c.Request())
	if err != nil {
		return err
	}
	var problems []map[string]any
	for _, f := range []string{"username", "password"} {
		if !form.Has(f) {
			problems = append(problems, missing(f))
		}
	}
	if gt := form.Get("grant_type"); form.Has("grant_type") && gt != "password" {
		problems = append(problems, invalid("String should match pattern '^password$'", "grant_type"))
	}
	if len(problems) > 0 {
		return unprocessable(problems...)
	}
	username, password := form.Get("username"), form.Get("password")
	ctx := c.Request().Context()

	limitKey := "password:" + p.Name + ":" + strings.ToLower(username)
	if h.LoginLimit.MaxFailures > 0 {
		n, err := h.Sessions.LoginFailures(ctx, limitKey, h.Now().UTC())
		if err != nil {
			return fmt.Errorf("read login failures: %w", err)
		}
		if n >= h.LoginLimit.MaxFailures {
			return httperr.New(http.StatusTooManyRequests, "Too many failed login attempts. Try again later.").
				WithHeader("Retry-After", fmt.Sprint(int(h.LoginLimit.Window.Seconds())))
		}
	}
	id, err := p.Password.Authenticate(ctx, username, password)
	switch {
	case errors.Is(err, authenticator.ErrBadCredentials):
		if h.LoginLimit.MaxFailures > 0 {
			if _, rerr := h.Sessions.RecordLoginFailure(ctx, limitKey, h.Now().UTC(), h.LoginLimit.Window); rerr != nil {
				h.Logger.WarnContext(ctx, "record login failure", "error", rerr)
			}
		}
		h.Logger.InfoContext(ctx, "login failed", "provider", p.Name)
		return httperr.Unauthorized("Incorrect username or password")
	case errors.Is(err, authenticator.ErrUnavailable):
		return httperr.Unavailable("Authentication is temporarily unavailable. Please retry.", 5).Wrap(err)
	case err != nil:
		return fmt.Errorf("authenticate: %w", err)
	}
	if h.LoginLimit.MaxFailures > 0 {
		if err := h.Sessions.ResetLoginFailures(ctx, limitKey); err != nil {
			h.Logger.WarnContext(ctx, "reset login failures", "error", err)
		}
	}
	t, err := h.completeLogin(ctx, p.Name, id, nil)
	if err != nil {
		return err
	}
	h.Logger.InfoContext(ctx, "login", "provider", p.Name, "principal", t.Principal.ID, "session", t.SessionID)
	return c.JSON(http.StatusOK, tokenResponse(t, p.Name, id))
}
