// Package authapi serves Tiled's /api/v1/auth routes: logins for each
// provider, session refresh and revocation, whoami, API keys and the admin
// routes for principals. Messages and status codes are Tiled's
// (tiled/server/authentication.py) so the Tiled Python client works as is.
package authapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/authenticator/oidc"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
)

// Provider is one configured authentication provider. Exactly one of
// Password and OIDC is set.
type Provider struct {
	Name string
	// Kind names the authenticator (dictionary, dummy, pam, oidc), for
	// spans and logs.
	Kind                string
	ConfirmationMessage *string
	Password            authenticator.Password
	OIDC                *oidc.Provider
}

// MessageBeforeLogin is the confirmation_message to show before anyone has
// logged in: empty when it names the identity ({id}), which only a
// finished login can fill in.
func (p Provider) MessageBeforeLogin() string {
	if p.ConfirmationMessage == nil || strings.Contains(*p.ConfirmationMessage, "{id}") {
		return ""
	}
	return *p.ConfirmationMessage
}

// AdminIdentity names an identity that is made admin (tiled_admins).
type AdminIdentity struct{ Provider, ID string }

// Handlers serves the auth routes.
type Handlers struct {
	Providers  []Provider
	Admins     []AdminIdentity
	Manager    *sessions.Manager
	Sessions   sessions.Store
	Identities identity.Store
	APIKeys    *apikeys.Service
	LoginLimit LoginLimit
	// Audit records logins, revocations, keys and principal changes; nil
	// records nothing.
	Audit  *audit.Recorder
	Now    func() time.Time
	Logger *slog.Logger
	// View renders the device-code pages; nil uses the embedded default.
	View *view.Renderer
	// SignedIn ends a sign-in begun on the sign-in page (BeginSignIn):
	// it hands the new session to the browser and leads it to next (""
	// for the account page). Nil: such sign-ins are not offered.
	SignedIn func(c echo.Context, t sessions.Tokens, next string) error
}

// Register adds the routes under the API group.
func (h *Handlers) Register(g *echo.Group) {
	// Every auth body is tiny: a larger one is refused before it is read.
	a := g.Group("/auth", limitBody(maxBody))
	a.POST("/provider/:provider/token", h.traced("password_or_device_code", h.token))
	h.registerExternal(a)
	a.POST("/session/refresh", h.traced("refresh_token", h.refresh))
	a.POST("/session/revoke", h.revokeByToken)
	a.DELETE("/session/revoke/:session_id", h.revokeByID)
	a.POST("/logout", h.logout)
	a.GET("/whoami", h.whoami)
	a.POST("/apikey", h.createAPIKey)
	a.GET("/apikey", h.apiKeyInfo)
	a.DELETE("/apikey", h.deleteAPIKey)
	a.GET("/principal", h.listPrincipals)
	a.POST("/principal", h.createServicePrincipal)
	a.GET("/principal/:uuid", h.getPrincipal)
	a.POST("/principal/:uuid/apikey", h.createAPIKeyFor)
	a.DELETE("/principal/:uuid/apikey", h.deleteAPIKeyFor)
}

func (h *Handlers) provider(c echo.Context) (*Provider, error) {
	if p, ok := h.providerNamed(c.Param("provider")); ok {
		return p, nil
	}
	return nil, httperr.NotFound("Not Found")
}

// token is POST /auth/provider/{p}/token: a password login for password
// providers, the device-code poll for external ones (Tiled mounts one or the
// other at the same path).
func (h *Handlers) token(c echo.Context) error {
	p, err := h.provider(c)
	if err != nil {
		return err
	}
	if p.OIDC != nil {
		return h.deviceToken(c, p)
	}
	return h.passwordLogin(c, p)
}

// completeLogin is the end of every successful login: find or create the
// principal for (provider, id), make it admin if tiled_admins lists it, and
// open a session.
func (h *Handlers) completeLogin(ctx context.Context, provider, id string, state map[string]any) (sessions.Tokens, error) {
	p, created, err := h.Identities.LoginIdentity(ctx, provider, id, []string{identity.RoleUser}, h.Now().UTC())
	if err != nil {
		return sessions.Tokens{}, fmt.Errorf("login identity: %w", err)
	}
	if created {
		h.record(ctx, audit.Event{Name: audit.PrincipalCreate, Outcome: audit.Success, PrincipalID: p.ID,
			Provider: provider, IdentityID: id, Detail: map[string]any{"type": string(p.Type), "roles": roleNames(p), "by": "first login"}})
	}
	if h.isAdmin(provider, id) && !hasRole(p, identity.RoleAdmin) {
		if err := h.Identities.GrantRole(ctx, p.ID, identity.RoleAdmin); err != nil {
			return sessions.Tokens{}, fmt.Errorf("grant admin: %w", err)
		}
		h.record(ctx, audit.Event{Name: audit.PrincipalRoleGrant, Outcome: audit.Success, PrincipalID: p.ID,
			Provider: provider, IdentityID: id, Detail: map[string]any{"role": identity.RoleAdmin, "by": "tiled_admins"}})
		if p, err = h.Identities.GetPrincipal(ctx, p.ID); err != nil {
			return sessions.Tokens{}, fmt.Errorf("reload principal: %w", err)
		}
	}
	t, err := h.Manager.Start(ctx, p, state)
	if errors.Is(err, sessions.ErrTooManySessions) {
		n, _ := h.Sessions.CountActiveSessions(ctx, p.ID, h.Now().UTC())
		return sessions.Tokens{}, httperr.BadRequest(fmt.Sprintf(
			"This Principal already has %d sessions which is greater than or equal to the maximum number allowed, %d. "+
				"Some Sessions must be closed before creating new ones.", n, h.Manager.Config.MaxSessions))
	}
	return t, err
}

func (h *Handlers) isAdmin(provider, id string) bool {
	for _, a := range h.Admins {
		if a.Provider == provider && a.ID == id {
			return true
		}
	}
	return false
}

func roleNames(p identity.Principal) []string {
	out := make([]string, 0, len(p.Roles))
	for _, r := range p.Roles {
		out = append(out, r.Name)
	}
	return out
}

func hasRole(p identity.Principal, role string) bool {
	for _, r := range p.Roles {
		if r.Name == role {
			return true
		}
	}
	return false
}

// tokenResponse is Tiled's token JSON. Identity and principal are included
// only on login: "once you are logged in, it does not matter how".
type tokenBody struct {
	AccessToken           string         `json:"access_token"`
	ExpiresIn             int64          `json:"expires_in"`
	RefreshToken          string         `json:"refresh_token"`
	RefreshTokenExpiresIn int64          `json:"refresh_token_expires_in"`
	TokenType             string         `json:"token_type"`
	Identity              *tokenIdentity `json:"identity,omitempty"`
	Principal             string         `json:"principal,omitempty"`
}

type tokenIdentity struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
}

func tokenResponse(t sessions.Tokens, provider, id string) tokenBody {
	out := tokenBody{AccessToken: t.AccessToken, ExpiresIn: t.ExpiresIn, RefreshToken: t.RefreshToken,
		RefreshTokenExpiresIn: t.RefreshTokenExpiresIn, TokenType: "bearer"}
	if provider != "" {
		out.Identity = &tokenIdentity{ID: id, Provider: provider}
		out.Principal = strings.ReplaceAll(t.Principal.ID.String(), "-", "")
	}
	return out
}

// sessionEnded is Tiled's one answer for an unknown, expired or revoked
// session, so that revocation is not revealed.
func sessionEnded() *httperr.Error {
	return httperr.New(http.StatusUnauthorized, "Session has expired. Please re-authenticate.")
}
