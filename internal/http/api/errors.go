package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/storeerr"
)

// retryAfterSeconds is what a client is told to wait when the session
// database is busy or unreachable.
const retryAfterSeconds = 2

// handleError is the one place where an error becomes a response. Client
// errors (4xx) are logged at info, server errors at error with the cause; the
// client never sees internal details.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, echo.ErrNotFound) || errors.Is(err, echo.ErrMethodNotAllowed) {
		// The router found no route (or only catch-alls that groups with
		// middleware add): answer as Starlette's router would.
		c.Set(unmatchedKey, true)
		if err = s.routeNotFound(c); err == nil {
			return
		}
	}
	he := toHTTPError(err)
	ctx := c.Request().Context()
	level := slog.LevelInfo
	if he.Status >= 500 {
		level = slog.LevelError
	}
	s.deps.Logger.Log(ctx, level, "request failed",
		"status", he.Status, "method", c.Request().Method, "route", c.Path(), "error", err)
	h := c.Response().Header()
	for k, vs := range he.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(he.Status)
		return
	}
	_ = c.JSON(he.Status, map[string]any{"detail": he.Detail})
}

func toHTTPError(err error) *httperr.Error {
	var he *httperr.Error
	var ee *echo.HTTPError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &ee):
		detail := http.StatusText(ee.Code)
		if msg, ok := ee.Message.(string); ok && ee.Code != http.StatusNotFound && ee.Code != http.StatusMethodNotAllowed {
			detail = msg
		}
		return httperr.New(ee.Code, detail)
	case errors.Is(err, storeerr.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return httperr.Unavailable("The service is temporarily unavailable. Please retry.", retryAfterSeconds)
	case errors.Is(err, context.Canceled):
		// The client went away; the status is for the log only.
		return httperr.New(499, "Client closed request")
	case errors.Is(err, storeerr.ErrNotFound):
		return httperr.NotFound("Not Found")
	case errors.Is(err, storeerr.ErrConflict):
		return httperr.Conflict("Conflict")
	default:
		return httperr.New(http.StatusInternalServerError, "Internal server error")
	}
}
