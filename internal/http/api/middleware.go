package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/logging"
)

// Header and cookie names shared with Tiled (tiled/server/app.py).
const (
	requestIDHeader = "X-Tiled-Request-Id"
	csrfHeader      = "X-Csrf"
	csrfQuery       = "csrf"
)

// recoverPanics turns a panic into a logged 500, so one bad request cannot
// take the replica down.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.deps.Logger.ErrorContext(c.Request().Context(), "panic serving request",
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// requestID gives every request an id, echoed in X-Tiled-Request-Id as Tiled
// does, and put in the context for log records.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		c.Response().Header().Set(requestIDHeader, id)
		r := c.Request()
		c.SetRequest(r.WithContext(logging.WithRequestID(r.Context(), id)))
		return next(c)
	}
}

// observe records each request in the metrics, once it has been answered
// (after compression and the error handler), by route template. Requests no
// route took are recorded as unmatched, so that probing random paths
// cannot grow the series.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		done := s.deps.Metrics.BeginRequest()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if unmatched, _ := c.Get(unmatchedKey).(bool); unmatched {
			route = ""
		}
		res := c.Response()
		done(route, c.Request().Method, res.Status, res.Size)
		return nil
	}
}

// unmatchedKey marks, in the echo.Context, a request that no route took.
const unmatchedKey = "tiled.unmatched"

// accessLog writes one line per request. It logs the path, never the query
// string: the query may carry an API key.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		level := slog.LevelInfo
		if isProbe(c) {
			level = slog.LevelDebug
		}
		r := c.Request()
		s.deps.Logger.Log(r.Context(), level, "request",
			"method", r.Method, "path", r.URL.Path, "route", c.Path(),
			"status", c.Response().Status, "bytes", c.Response().Size,
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
			"caller", authn.FromContext(r.Context()).Name(), "remote", forwarded.FromContext(r.Context()).String())
		return nil
	}
}

// csrf implements Tiled's double-submit-cookie protection: a request that
// changes state and carries the API-key cookie must repeat the tiled_csrf
// cookie's value in the X-Csrf header (or csrf query parameter). Every
// response sets the cookie when the request lacked it, so a client can read
// it from its first (safe) request, as the Tiled Python client does. The
// pages' forms post the same token in a form field, which they check
// themselves (view.CheckForm).
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		cookie, _ := r.Cookie(view.CSRFCookie)
		pageForm := s.deps.Pages != nil && s.deps.Pages.OwnsCSRF(c.Path())
		if !isSafeMethod(r.Method) && hasCookie(r, authn.APIKeyCookie) && !pageForm {
			if cookie == nil || cookie.Value == "" {
				return httperr.Forbidden("Expected tiled_csrf_token cookie")
			}
			token := r.Header.Get(csrfHeader)
			if token == "" {
				token = r.URL.Query().Get(csrfQuery)
			}
			if token == "" {
				return httperr.Forbidden("Expected csrf query parameter or x-csrf header")
			}
			if subtle.ConstantTimeCompare([]byte(token), []byte(cookie.Value)) != 1 {
				return httperr.Forbidden("Double-submit CSRF tokens do not match")
			}
		}
		if cookie == nil {
			view.NewCSRFCookie(c)
		}
		return next(c)
	}
}

// authenticate resolves the request's credentials into a Caller. Rejected
// credentials are recorded, not answered here: see authn.WithError.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isProbe(c) {
			return next(c)
		}
		r := c.Request()
		ctx := r.Context()
		creds, err := authn.Extract(r)
		if err == nil {
			var caller *authn.Caller
			caller, err = s.resolve(ctx, creds)
			if err == nil {
				ctx = authn.WithCaller(ctx, caller)
				if creds.APIKeySource == authn.FromQuery && s.plantsKeyCookie(r) {
					// Like Jupyter: the start-up URL with ?api_key= opened in
					// a browser logs the browser in, so the key can leave
					// the URL.
					if ck, _ := r.Cookie(authn.APIKeyCookie); ck == nil || ck.Value != creds.APIKey {
						view.SetCookie(c, authn.APIKeyCookie, creds.APIKey, "/", 0)
					}
				}
			}
		}
		var he *httperr.Error
		if errors.As(err, &he) && he.Detail == authn.MsgInvalidAPIKey && s.deps.Resolver.SingleUserKey == "" {
			// Tiled's multi-user 401 for a bad key points the client at the
			// API root, as its scope errors do (headers_for_401).
			he.WithHeader("X-Tiled-Root", links.API(r))
		}
		if err != nil {
			ctx = authn.WithError(ctx, err)
		}
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// plantsKeyCookie says whether ?api_key= may set the tiled_api_key cookie:
// only in single-user mode, where the start-up URL is how a browser logs
// in, and only on a navigation the person made (typed, bookmarked, or from
// this server's own pages: Sec-Fetch-Site none or same-origin, or absent in
// browsers that do not send it). Otherwise a link or image on another site
// could plant the attacker's key in a victim's browser, and the victim
// would then work, unknowingly, as the attacker (login CSRF). Tiled sets
// it on any request in every mode. The key in the query still
// authenticates the request itself.
func (s *Server) plantsKeyCookie(r *http.Request) bool {
	if s.deps.Resolver.SingleUserKey == "" {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
		return true
	}
	return false
}

// setCookie sets a session cookie (no expiry: it lasts as long as the
// browser keeps it, as Tiled's do), HttpOnly and SameSite=Lax, and Secure
// when the client reached us over HTTPS.
func hasCookie(r *http.Request, name string) bool {
	_, err := r.Cookie(name)
	return err == nil
}

func isSafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
