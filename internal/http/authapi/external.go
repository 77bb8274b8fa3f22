package authapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/authenticator/oidc"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/storeerr"
)

// External (OIDC) logins, Tiled's add_external_routes
// (tiled/server/authentication.py), in two flows:
//
//   - Browser: GET authorize sends the browser to the identity provider;
//     it comes back to GET code, which answers the token JSON (or redirects
//     to redirect_on_success with the tokens in the query).
//   - Device, for terminals and notebooks: POST authorize hands the client
//     a device code, a user code and an authorization URI; the person opens
//     the URI, logs in, lands on the device_code form and types the user
//     code; the client polls POST token until the tokens come.
//
// Everything one leg leaves for the next (state, PKCE verifier, nonce, the
// pending device login) is in the session database, so each request may be
// served by any replica.
//
// State: our own random state goes to the identity provider. It is the
// lookup key (stored as sha256) of the login's AuthState and the CSRF check
// of the code leg, and is single-use. Tiled instead forwards the client's
// optional ?state= to the provider and back; here the client's state is kept
// in the AuthState and handed back to redirect_on_success as Tiled does, so
// the client sees the same thing while the provider sees only ours.
//
// The browser flow's state is also bound to the browser that began the
// login, by a short-lived HttpOnly cookie named after the state (RFC 6749
// 10.12, OAuth 2.0 Security BCP 4.7): without it, an attacker could send a
// victim the provider's answer to the attacker's own login and have the
// victim's browser (or web app) logged in as the attacker. Tiled does not
// do this; a client that opens /authorize in the same browser that lands on
// /code, as every browser client does, does not notice. The device flow
// needs no cookie: the user code is what binds the login to the device.

const (
	// authStateTTL bounds the browser leg at the identity provider.
	authStateTTL = 10 * time.Minute
	// deviceCodeTTL and devicePollInterval are Tiled's DEVICE_CODE_MAX_AGE
	// and DEVICE_CODE_POLLING_INTERVAL.
	deviceCodeTTL      = 15 * time.Minute
	devicePollInterval = 5
	// maxClientState bounds the client's ?state=, which is stored and
	// echoed in a redirect.
	maxClientState = 1024
	// maxUserCodeTries bounds wrong user codes typed after one login at
	// the identity provider.
	maxUserCodeTries = 5
	// userCodeAlphabet is RFC 8628 6.1's base-20 set: no vowels (no words)
	// and nothing that reads as a digit.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
)

// Flows, and keys of AuthState.Extra.
const (
	flowBrowser = "browser"
	flowDevice  = "device"

	extraFlow        = "flow"
	extraRedirectURI = "redirect_uri"
	extraClientState = "client_state"
	// extraUserID is set once the identity provider has vouched for the
	// person but the user code they typed matched no pending login: a retry
	// needs no second trip to the provider.
	extraUserID = "user_id"
	extraTries  = "tries"
)

// Messages of Tiled's device-code pages.
const (
	msgInvalidUserCode = "Invalid user code. It may have been mistyped, or the pending request may have expired."
	msgStartAgain      = "This login link has expired or has already been used. Start the login again from your application."
	msgProviderFailed  = "Authentication with the identity provider failed. Start the login again from your application, or ask the administrator to see the logs for details."
	msgUnavailable     = "Authentication is temporarily unavailable. Please retry."
)

func (h *Handlers) registerExternal(a *echo.Group) {
	a.GET("/provider/:provider/authorize", h.authorizeRedirect)
	a.POST("/provider/:provider/authorize", h.deviceAuthorize)
	a.GET("/provider/:provider/code", h.traced("authorization_code", h.authCode))
	a.GET("/provider/:provider/device_code", h.deviceCodeForm)
	a.POST("/provider/:provider/device_code", h.deviceCodeSubmit)
}

// external is the named provider if it is an OIDC one; the routes do not
// exist for password providers, as in Tiled.
func (h *Handlers) external(c echo.Context) (*Provider, error) {
	p, err := h.provider(c)
	if err != nil {
		return nil, err
	}
	if p.OIDC == nil {
		return nil, httperr.NotFound("Not Found")
	}
	return p, nil
}

func providerURL(c echo.Context, p *Provider, leaf string) string {
	return links.Join(links.API(c.Request()), "auth/provider", p.Name, leaf)
}

// authorizeRedirect is GET authorize: 307 to the identity provider.
func (h *Handlers) authorizeRedirect(c echo.Context) error {
	p, err := h.external(c)
	if err != nil {
		return err
	}
	clientState := c.QueryParam("state")
	if len(clientState) > maxClientState {
		return unprocessable(map[string]any{
			"type": "string_too_long", "loc": []any{"query", "state"},
			"msg": fmt.Sprintf("String should have at most %d characters", maxClientState), "input": nil,
		})
	}
	extra := map[string]any{}
	if clientState != "" {
		extra[extraClientState] = clientState
	}
	u, state, err := h.beginLogin(c.Request().Context(), p, flowBrowser, providerURL(c, p, "code"), extra, authStateTTL)
	if err != nil {
		return h.oidcError(c, p, err)
	}
	setBinding(c, state, int(authStateTTL/time.Second))
	return c.Redirect(http.StatusTemporaryRedirect, u)
}

// bindingCookie is the name of the cookie that binds a browser login's state
// to the browser; one per login, so logins in two tabs do not collide.
func bindingCookie(state string) string {
	h := sha256.Sum256([]byte(state))
	return "tiled_oidc_" + hex.EncodeToString(h[:8])
}

// setBinding sets (maxAge > 0) or clears (maxAge < 0) the binding cookie.
func setBinding(c echo.Context, state string, maxAge int) {
	view.SetCookie(c, bindingCookie(state), state, "/", maxAge)
}

// boundToBrowser reports whether the request carries the binding cookie of
// state.
func boundToBrowser(c echo.Context, state string) bool {
	ck, err := c.Cookie(bindingCookie(state))
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) == 1
}

// beginLogin stores a fresh state, nonce and PKCE verifier and returns the
// identity provider's authorization URL and the state. The URL is made
// first, so nothing is stored when the provider is unreachable.
func (h *Handlers) beginLogin(ctx context.Context, p *Provider, flow, redirectURI string, extra map[string]any, ttl time.Duration) (authURL, state string, err error) {
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	u, err := p.OIDC.AuthCodeURL(ctx, redirectURI, state, nonce, verifier)
	if err != nil {
		return "", "", err
	}
	extra[extraFlow], extra[extraRedirectURI] = flow, redirectURI
	now := h.Now().UTC()
	err = h.Sessions.PutAuthState(ctx, sessions.AuthState{
		StateHash: hashString(state), Provider: p.Name, CodeVerifier: verifier, Nonce: nonce,
		Extra: extra, CreatedAt: now, ExpiresAt: now.Add(ttl),
	})
	if err != nil {
		return "", "", fmt.Errorf("store auth state: %w", err)
	}
	return u, state, nil
}

// takeState consumes the AuthState of state if it belongs to this provider
// and flow. ok is false when there is none (unknown, used, expired, or of
// another flow): the person's doing, never a server error.
func (h *Handlers) takeState(ctx context.Context, p *Provider, flow, state string) (st sessions.AuthState, ok bool, err error) {
	if state == "" {
		return st, false, nil
	}
	st, err = h.Sessions.TakeAuthState(ctx, hashString(state), h.Now().UTC())
	if errors.Is(err, storeerr.ErrNotFound) {
		return st, false, nil
	} else if err != nil {
		return st, false, fmt.Errorf("take auth state: %w", err)
	}
	return st, st.Provider == p.Name && extraString(st, extraFlow) == flow, nil
}

// authCode is GET code, where the identity provider sends the browser back.
func (h *Handlers) authCode(c echo.Context) error {
	p, err := h.external(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := c.QueryParams()
	state := q.Get("state")
	if state == "" || !boundToBrowser(c, state) {
		return h.loginFailed(c, p, errors.New("state missing or not bound to this browser"))
	}
	setBinding(c, state, -1)
	st, ok, err := h.takeState(ctx, p, flowBrowser, state)
	switch {
	case err != nil:
		return err
	case !ok:
		return h.loginFailed(c, p, errors.New("unknown, used or expired state"))
	case q.Get("error") != "":
		// RFC 6749 4.1.2.1: the person declined, or the provider refused.
		return h.loginFailed(c, p, fmt.Errorf("identity provider answered error=%q", q.Get("error")))
	case q.Get("code") == "":
		return h.loginFailed(c, p, errors.New("no code"))
	}
	id, err := p.OIDC.Exchange(ctx, q.Get("code"), extraString(st, extraRedirectURI), st.CodeVerifier, st.Nonce)
	if err != nil {
		if errors.Is(err, oidc.ErrRejected) {
			return h.loginFailed(c, p, err)
		}
		return h.browserFailure(c, h.oidcError(c, p, err))
	}
	t, err := h.completeLogin(ctx, p.Name, id, nil)
	if err != nil {
		return h.browserFailure(c, err)
	}
	h.recordLogin(ctx, p.Name, id, audit.Success, t.Principal.ID, t.SessionID, map[string]any{"method": "oidc", "flow": flowBrowser})
	if extraString(st, extraLanding) == landingPages && h.SignedIn != nil {
		return h.pageSignedIn(c, p, st, t)
	}
	body := tokenResponse(t, p.Name, id)
	c.Response().Header().Set("Cache-Control", "no-store")
	dest := p.OIDC.RedirectOnSuccess()
	if dest == "" {
		return c.JSON(http.StatusOK, body)
	}
	// Tiled's redirect_on_success: the tokens ride in the query.
	u, err := url.Parse(dest)
	if err != nil {
		return fmt.Errorf("redirect_on_success: %w", err)
	}
	v := u.Query()
	v.Set("access_token", t.AccessToken)
	v.Set("refresh_token", t.RefreshToken)
	v.Set("identity.id", id)
	v.Set("identity.provider", p.Name)
	v.Set("principal", body.Principal)
	if s := extraString(st, extraClientState); s != "" {
		v.Set("state", s)
	}
	u.RawQuery = v.Encode()
	return c.Redirect(http.StatusFound, u.String())
}

// loginFailed is Tiled's answer to a failed browser login: redirect to
// redirect_on_failure, else 401 "Authentication failure".
func (h *Handlers) loginFailed(c echo.Context, p *Provider, cause error) error {
	h.Logger.InfoContext(c.Request().Context(), "login failed", "provider", p.Name, "error", cause)
	h.recordLogin(c.Request().Context(), p.Name, "", audit.Failure, uuid.Nil, uuid.Nil, map[string]any{"method": "oidc", "flow": flowBrowser})
	if dest := p.OIDC.RedirectOnFailure(); dest != "" {
		return c.Redirect(http.StatusFound, dest)
	}
	if view.WantsHTML(c.Request()) {
		// A person in a browser: say it plainly, and what to do next.
		return h.failurePage(c, http.StatusUnauthorized, "Signing in with "+p.Name+" did not complete: the identity "+
			"provider refused or was cancelled, or this sign-in link had expired or was opened in another browser. "+
			"Nothing was signed in.")
	}
	return httperr.New(http.StatusUnauthorized, "Authentication failure").Wrap(cause)
}

// browserFailure answers an error of the browser flow's code route: a page
// for a person in a browser when the error is one they can act on (the
// provider unavailable, the session limit), the error itself otherwise.
func (h *Handlers) browserFailure(c echo.Context, err error) error {
	if !view.WantsHTML(c.Request()) {
		return err
	}
	he, ok := view.Shown(c, err)
	if !ok {
		return err
	}
	return h.failurePage(c, he.Status, view.Message(he)+" Nothing was signed in.")
}

// failurePage is the page a failed browser sign-in ends on.
func (h *Handlers) failurePage(c echo.Context, status int, msg string) error {
	return h.renderer().Render(c, status, "notice", view.Page{Title: "Sign-in failed", Data: view.Notice{
		Heading: "Sign-in failed", Message: msg,
		Next: &view.Link{URL: view.RootPath(c.Request()) + "/login", Label: "Sign in again"},
	}})
}

// oidcError maps an error of the oidc package that the person did not
// cause: an unreachable identity provider is 503 with Retry-After.
func (h *Handlers) oidcError(c echo.Context, p *Provider, err error) error {
	if errors.Is(err, authenticator.ErrUnavailable) {
		h.Logger.WarnContext(c.Request().Context(), "identity provider unavailable", "provider", p.Name, "error", err)
		return httperr.Unavailable(msgUnavailable, retrySeconds(p)).Wrap(err)
	}
	return err
}

func retrySeconds(p *Provider) int {
	return max(1, int(p.OIDC.RetryAfter().Round(time.Second)/time.Second))
}

// deviceAuthorize is POST authorize: start a device-code login. The body,
// if any, is ignored (the Tiled client sends none).
func (h *Handlers) deviceAuthorize(c echo.Context) error {
	p, err := h.external(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	authURI, _, err := h.beginLogin(ctx, p, flowDevice, providerURL(c, p, "device_code"), map[string]any{}, deviceCodeTTL)
	if err != nil {
		return h.oidcError(c, p, err)
	}
	// Tiled: 32 random bytes, shown as hex, stored as sha256 of the bytes.
	var code [32]byte
	_, _ = rand.Read(code[:])
	hash := sha256.Sum256(code[:])
	now := h.Now().UTC()
	var userCode string
	for range 5 {
		userCode = newUserCode()
		err = h.Sessions.CreatePendingDevice(ctx, sessions.PendingDevice{
			ID: uuid.New(), Provider: p.Name, DeviceCodeHash: hash[:], UserCode: userCode,
			CreatedAt: now, ExpiresAt: now.Add(deviceCodeTTL),
		})
		if !errors.Is(err, storeerr.ErrConflict) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create pending device login: %w", err)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"authorization_uri": authURI,
		"verification_uri":  providerURL(c, p, "token"),
		"interval":          devicePollInterval,
		"device_code":       hex.EncodeToString(code[:]),
		"expires_in":        int(deviceCodeTTL / time.Second),
		"user_code":         userCode[:4] + "-" + userCode[4:],
	})
}

// deviceCodeForm is GET device_code, where the identity provider sends the
// person's browser: a form asking for the user code, carrying the
// provider's code and our state in hidden fields.
func (h *Handlers) deviceCodeForm(c echo.Context) error {
	p, err := h.external(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	if e := q.Get("error"); e != "" {
		// Consume the state: this login is over.
		if _, _, err := h.takeState(c.Request().Context(), p, flowDevice, q.Get("state")); err != nil {
			return err
		}
		h.Logger.InfoContext(c.Request().Context(), "device login declined at the identity provider", "provider", p.Name, "error", e)
		return h.page(c, http.StatusUnauthorized, failurePage, view.Device{Message: msgProviderFailed})
	}
	if q.Get("code") == "" || q.Get("state") == "" {
		return h.page(c, http.StatusBadRequest, failurePage, view.Device{Message: msgStartAgain})
	}
	return h.page(c, http.StatusOK, formPage, view.Device{Code: q.Get("code"), State: q.Get("state")})
}

// deviceCodeSubmit is POST device_code: the person typed the user code.
//
// The user code is checked by attaching a session to the pending login, so
// the session is opened first and revoked if the code matches nothing. A
// wrong code does not send the person back to the identity provider: the
// identity it vouched for is kept under a fresh state for a few more tries.
func (h *Handlers) deviceCodeSubmit(c echo.Context) error {
	p, err := h.external(c)
	if err != nil {
		return err
	}
	form, err := readForm(c.Request())
	if err != nil {
		return err
	}
	// Tiled's form action carries the provider's code in the query; take
	// it from there too.
	field := func(k string) string {
		if v := form.Get(k); v != "" {
			return v
		}
		return c.QueryParam(k)
	}
	code, state := field("code"), field("state")
	var problems []map[string]any
	if !form.Has("user_code") {
		problems = append(problems, missing("user_code"))
	}
	if state == "" {
		problems = append(problems, missing("state"))
	}
	if len(problems) > 0 {
		return unprocessable(problems...)
	}
	if err := view.CheckForm(c, form.Get(view.CSRFField)); err != nil {
		// Nothing consumed: the form, shown again, carries a good token.
		var he *httperr.Error
		if errors.As(err, &he) {
			return h.page(c, he.Status, formPage, view.Device{Code: code, State: state, Message: fmt.Sprint(he.Detail)})
		}
		return err
	}
	userCode, ok := normalizeUserCode(form.Get("user_code"))
	if !ok {
		// Nothing consumed: the same form can be submitted again.
		return h.page(c, http.StatusUnauthorized, formPage, view.Device{Code: code, State: state, Message: msgInvalidUserCode})
	}
	ctx := c.Request().Context()
	st, ok, err := h.takeState(ctx, p, flowDevice, state)
	if err != nil {
		return err
	}
	if !ok {
		return h.page(c, http.StatusUnauthorized, failurePage, view.Device{Message: msgStartAgain})
	}
	id := extraString(st, extraUserID)
	if id == "" {
		if code == "" {
			return h.page(c, http.StatusUnauthorized, failurePage, view.Device{Message: msgStartAgain})
		}
		id, err = p.OIDC.Exchange(ctx, code, extraString(st, extraRedirectURI), st.CodeVerifier, st.Nonce)
		switch {
		case errors.Is(err, authenticator.ErrUnavailable):
			// The provider's code may still be good: keep the state so the
			// person can submit again.
			if perr := h.Sessions.PutAuthState(ctx, st); perr != nil {
				h.Logger.WarnContext(ctx, "restore auth state", "error", perr)
			}
			h.Logger.WarnContext(ctx, "identity provider unavailable", "provider", p.Name, "error", err)
			c.Response().Header().Set("Retry-After", fmt.Sprint(retrySeconds(p)))
			return h.page(c, http.StatusServiceUnavailable, formPage, view.Device{Code: code, State: state, Message: msgUnavailable})
		case err != nil:
			h.Logger.InfoContext(ctx, "device login failed", "provider", p.Name, "error", err)
			h.recordLogin(ctx, p.Name, "", audit.Failure, uuid.Nil, uuid.Nil, map[string]any{"method": "oidc", "flow": flowDevice})
			return h.page(c, http.StatusUnauthorized, failurePage, view.Device{Message: msgProviderFailed})
		}
	}
	// Turn a mistyped user code away before a session is opened for it.
	if _, err := h.Sessions.FindPendingDevice(ctx, p.Name, userCode, h.Now().UTC()); errors.Is(err, storeerr.ErrNotFound) {
		return h.wrongUserCode(c, p, st, id, uuid.Nil)
	} else if err != nil {
		return fmt.Errorf("find pending device login: %w", err)
	}
	t, err := h.completeLogin(ctx, p.Name, id, nil)
	if err != nil {
		var he *httperr.Error
		if errors.As(err, &he) && he.Status < 500 {
			return h.page(c, he.Status, failurePage, view.Device{Message: fmt.Sprint(he.Detail)})
		}
		return err
	}
	err = h.Sessions.ApprovePendingDevice(ctx, p.Name, userCode, t.SessionID, h.Now().UTC())
	if errors.Is(err, storeerr.ErrNotFound) {
		return h.wrongUserCode(c, p, st, id, t.SessionID)
	} else if err != nil {
		return fmt.Errorf("approve pending device login: %w", err)
	}
	h.recordLogin(ctx, p.Name, id, audit.Success, t.Principal.ID, t.SessionID, map[string]any{"method": "oidc", "flow": flowDevice})
	msg := ""
	if p.ConfirmationMessage != nil {
		// Tiled formats confirmation_message with str.format(id=...).
		msg = strings.ReplaceAll(*p.ConfirmationMessage, "{id}", id)
	}
	return h.page(c, http.StatusOK, successPage, view.Device{Message: msg, Interval: devicePollInterval})
}

// wrongUserCode turns away a user code that matches no pending login
// (revoking the session, if one was opened in a race with the code's
// expiry) and lets the person try again, a few times, without another trip
// to the identity provider.
func (h *Handlers) wrongUserCode(c echo.Context, p *Provider, st sessions.AuthState, id string, session uuid.UUID) error {
	ctx := c.Request().Context()
	now := h.Now().UTC()
	// A session exists only if the code expired between the check and the
	// approval; it must not outlive this request.
	if session != uuid.Nil {
		if err := h.Sessions.RevokeSession(ctx, session, "device user code matched no pending login", now); err != nil {
			return fmt.Errorf("revoke unused session: %w", err)
		}
	}
	tries := extraInt(st, extraTries) + 1
	h.recordLogin(ctx, p.Name, id, audit.Failure, uuid.Nil, uuid.Nil, map[string]any{
		"method": "oidc", "flow": flowDevice, "reason": "wrong user code", "tries": tries})
	if tries >= maxUserCodeTries || !now.Before(st.ExpiresAt) {
		return h.page(c, http.StatusUnauthorized, failurePage, view.Device{Message: msgInvalidUserCode + " " + msgStartAgain})
	}
	state := randomString()
	err := h.Sessions.PutAuthState(ctx, sessions.AuthState{
		StateHash: hashString(state), Provider: p.Name,
		Extra: map[string]any{
			extraFlow: flowDevice, extraRedirectURI: extraString(st, extraRedirectURI),
			extraUserID: id, extraTries: tries,
		},
		CreatedAt: now, ExpiresAt: st.ExpiresAt,
	})
	if err != nil {
		return fmt.Errorf("store auth state: %w", err)
	}
	return h.page(c, http.StatusUnauthorized, formPage, view.Device{State: state, Message: msgInvalidUserCode})
}

// deviceToken is POST token of an external provider: the device's poll.
func (h *Handlers) deviceToken(c echo.Context, p *Provider) error {
	body, err := readJSON(c.Request())
	if err != nil {
		return err
	}
	var problems []map[string]any
	deviceCode, prob := stringField(body, "device_code")
	if prob != nil {
		problems = append(problems, *prob)
	}
	// grant_type is required but, as in Tiled, its value is not checked.
	if _, prob := stringField(body, "grant_type"); prob != nil {
		problems = append(problems, *prob)
	}
	if len(problems) > 0 {
		return unprocessable(problems...)
	}
	raw, err := hex.DecodeString(deviceCode)
	if err != nil {
		return httperr.New(http.StatusUnauthorized, "Invalid device code")
	}
	hash := sha256.Sum256(raw)
	ctx := c.Request().Context()
	pd, err := h.Sessions.TakePendingDevice(ctx, p.Name, hash[:], h.Now().UTC())
	if errors.Is(err, storeerr.ErrNotFound) {
		return httperr.NotFound("No such device_code. The pending request may have expired.")
	} else if err != nil {
		return fmt.Errorf("take pending device login: %w", err)
	}
	if pd.SessionID == nil {
		return httperr.BadRequest(map[string]string{"error": "authorization_pending"})
	}
	t, err := h.Manager.TokensForSession(ctx, *pd.SessionID)
	if errors.Is(err, sessions.ErrEnded) {
		// Revoked between approval and this poll.
		return sessionEnded()
	} else if err != nil {
		return fmt.Errorf("tokens for device session: %w", err)
	}
	id := ""
	for _, i := range t.Principal.Identities {
		if i.Provider == p.Name {
			id = i.ID
		}
	}
	h.Logger.InfoContext(ctx, "device login delivered", "provider", p.Name, "principal", t.Principal.ID, "session", t.SessionID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, tokenResponse(t, p.Name, id))
}

// normalizeUserCode is Tiled's normalisation (upper case, dash removed),
// also forgiving spaces, and checks the result could be one of ours.
func normalizeUserCode(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		return r
	}, strings.ToUpper(s))
	if len(s) != userCodeLen {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(userCodeAlphabet, s[i]) < 0 {
			return "", false
		}
	}
	return s, true
}

// newUserCode draws userCodeLen characters from userCodeAlphabet without
// modulo bias (20^8, about 34 bits, against Tiled's 32).
func newUserCode() string {
	const n = byte(len(userCodeAlphabet))
	const limit = 256 - 256%int(n) // largest multiple of n below 256
	out := make([]byte, 0, userCodeLen)
	var buf [16]byte
	for len(out) < userCodeLen {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			if int(b) < limit && len(out) < userCodeLen {
				out = append(out, userCodeAlphabet[b%n])
			}
		}
	}
	return string(out)
}

// randomString is 32 random bytes, base64url: states and nonces.
func randomString() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashString(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func extraString(st sessions.AuthState, k string) string {
	s, _ := st.Extra[k].(string)
	return s
}

// extraInt reads a number of Extra, which has been through JSON.
func extraInt(st sessions.AuthState, k string) int {
	switch v := st.Extra[k].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return 0
}

// The device-code pages, rendered by the view package with the other
// pages (self-contained, unlike Tiled's, which load Bulma from a CDN).
const (
	formPage    = "device_form"
	failurePage = "device_failure"
	successPage = "device_success"
)

// page renders one of the device-code pages.
func (h *Handlers) page(c echo.Context, status int, name string, d view.Device) error {
	p := view.Page{Title: "Authorize a Tiled session", Data: d}
	switch name {
	case formPage:
		p.Error, d.Message = d.Message, ""
		if pr, err := h.provider(c); err == nil {
			d.Message = pr.MessageBeforeLogin()
		}
		p.Data = d
	case failurePage:
		p.Title = "Sign-in failed"
	case successPage:
		p.Title = "Signed in"
	}
	return h.renderer().Render(c, status, name, p)
}

// renderer is the configured view, or the embedded default.
func (h *Handlers) renderer() *view.Renderer {
	if h.View != nil {
		return h.View
	}
	return defaultView
}

var defaultView = view.MustNew("")
