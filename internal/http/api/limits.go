package api

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/dbbudget"
	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/http/httperr"
)

// inFlightRetryAfter is what a client turned away by the in-flight cap is
// told to wait, in seconds: requests finish in milliseconds to seconds.
const inFlightRetryAfter = 1

// resolveClient decides once who the client is (address and scheme,
// believing forwarding headers only from trusted proxies) and puts it in
// the context, where links, cookies, logs, login limits and the audit
// trail read it.
func (s *Server) resolveClient(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		cl := s.deps.Forwarded.Resolve(r)
		c.SetRequest(r.WithContext(forwarded.WithClient(r.Context(), cl)))
		return next(c)
	}
}

// limitInFlight turns requests away with 503 and Retry-After while
// MaxInFlight are being served, so that a flood (or a slow dependency that
// makes requests pile up) cannot exhaust the replica; the load balancer
// and well-behaved clients retry elsewhere or later. Probes are exempt: a
// busy replica is alive, and /readyz must still answer.
//
// Echo applies middleware anew for every request, so the slots live in the
// Server (s.slots, made in New), never in this function's closure.
func (s *Server) limitInFlight(next echo.HandlerFunc) echo.HandlerFunc {
	if s.slots == nil {
		return next
	}
	return func(c echo.Context) error {
		if isProbe(c) {
			return next(c)
		}
		select {
		case s.slots <- struct{}{}:
		default:
			return httperr.Unavailable("The server is busy. Please retry.", inFlightRetryAfter)
		}
		defer func() { <-s.slots }()
		return next(c)
	}
}

// bound gives each request a deadline (RequestTimeout) and a budget of
// session-database time (DatabaseBudget) shared by all its store calls.
// Probes keep their own bounds (readiness_timeout).
func (s *Server) bound(next echo.HandlerFunc) echo.HandlerFunc {
	timeout, budget := s.deps.RequestTimeout, s.deps.DatabaseBudget
	if timeout <= 0 && budget <= 0 {
		return next
	}
	return func(c echo.Context) error {
		if isProbe(c) {
			return next(c)
		}
		r := c.Request()
		ctx := r.Context()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		if budget > 0 {
			ctx = dbbudget.With(ctx, budget)
		}
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}
