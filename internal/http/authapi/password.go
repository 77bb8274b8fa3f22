package authapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
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
		// Every attempt is counted before the password is checked, in one
		// atomic statement, and a success clears the count: concurrent
		// wrong passwords cannot slip past the limit between a check and a
		// write.
		now := h.Now().UTC()
		a, err := h.Sessions.TakeLoginAttempt(ctx, limitKey, now, h.LoginLimit.Window, h.LoginLimit.MaxFailures)
		if err != nil {
			return fmt.Errorf("count login attempt: %w", err)
		}
		if !a.Allowed {
			wait := int64(math.Ceil(a.WindowEnd.Sub(now).Seconds()))
			return httperr.New(http.StatusTooManyRequests, "Too many failed login attempts. Try again later.").
				WithHeader("Retry-After", strconv.FormatInt(max(wait, 1), 10))
		}
	}
	id, err := p.Password.Authenticate(ctx, username, password)
	switch {
	case errors.Is(err, authenticator.ErrBadCredentials):
		h.Logger.InfoContext(ctx, "login failed", "provider", p.Name)
		return httperr.Unauthorized("Incorrect username or password")
	case errors.Is(err, authenticator.ErrUnavailable):
		return httperr.Unavailable("Authentication is temporarily unavailable. Please retry.", 5).Wrap(err)
	case err != nil:
		return fmt.Errorf("authenticate: %w", err)
	}
	if h.LoginLimit.MaxFailures > 0 {
		if err := h.Sessions.ResetLoginAttempts(ctx, limitKey); err != nil {
			h.Logger.WarnContext(ctx, "reset login attempts", "error", err)
		}
	}
	t, err := h.completeLogin(ctx, p.Name, id, nil)
	if err != nil {
		return err
	}
	h.Logger.InfoContext(ctx, "login", "provider", p.Name, "principal", t.Principal.ID, "session", t.SessionID)
	return c.JSON(http.StatusOK, tokenResponse(t, p.Name, id))
}
