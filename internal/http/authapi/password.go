package authapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/sessions"
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
	t, id, err := h.passwordSignIn(c.Request().Context(), p, form.Get("username"), form.Get("password"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokenResponse(t, p.Name, id))
}

// passwordSignIn checks a password against p under the login limits and
// opens a session; id is the identity the provider vouched for.
func (h *Handlers) passwordSignIn(ctx context.Context, p *Provider, username, password string) (t sessions.Tokens, id string, err error) {
	gate, err := h.admitLogin(ctx, p.Name, username)
	if err != nil {
		var he *httperr.Error
		if errors.As(err, &he) && he.Status == http.StatusTooManyRequests {
			h.record(ctx, audit.Event{Name: audit.LoginThrottled, Outcome: audit.Failure, Provider: p.Name,
				IdentityID: username, Detail: map[string]any{"limit": fmt.Sprint(he.Detail)}})
		}
		return t, "", err
	}
	id, err = p.Password.Authenticate(ctx, username, password)
	switch {
	case errors.Is(err, authenticator.ErrBadCredentials):
		pairN, addrN := gate.failed()
		h.recordLogin(ctx, p.Name, username, audit.Failure, uuid.Nil, uuid.Nil, map[string]any{
			"method": "password", "pair_attempts": pairN, "address_attempts": addrN})
		return t, "", httperr.Unauthorized("Incorrect username or password")
	case errors.Is(err, authenticator.ErrUnavailable):
		gate.abandon(ctx)
		return t, "", httperr.Unavailable("Authentication is temporarily unavailable. Please retry.", 5).Wrap(err)
	case err != nil:
		gate.abandon(ctx)
		return t, "", fmt.Errorf("authenticate: %w", err)
	}
	gate.succeeded(ctx)
	t, err = h.completeLogin(ctx, p.Name, id, nil)
	if err != nil {
		return t, "", err
	}
	h.recordLogin(ctx, p.Name, id, audit.Success, t.Principal.ID, t.SessionID, map[string]any{"method": "password"})
	return t, id, nil
}
