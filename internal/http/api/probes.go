package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
)

// defaultReadinessTimeout bounds a readiness check, so a hung database
// makes the probe fail fast instead of piling up probe requests.
const defaultReadinessTimeout = 2 * time.Second

// healthz says the process is alive and serving HTTP. It checks nothing
// else, so a database outage never gets a replica restarted. The body is
// Tiled's.
func (s *Server) healthz(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, []byte(`{"status":"ready"}`))
}

// readyz says whether this replica should receive traffic: not while it
// drains, nor while a dependency (database, schema) is not ready. The body is
// generic; the reason goes to the log.
func (s *Server) readyz(c echo.Context) error {
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	}
	if s.deps.Ready != nil {
		timeout := s.deps.ReadinessTimeout
		if timeout <= 0 {
			timeout = defaultReadinessTimeout
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), timeout)
		defer cancel()
		if err := s.deps.Ready(ctx); err != nil {
			s.deps.Logger.WarnContext(ctx, "not ready", "error", err)
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		}
	}
	if s.deps.Degraded != nil {
		if err := s.deps.Degraded(); err != nil {
			s.deps.Logger.WarnContext(c.Request().Context(), "degraded", "error", err)
			return c.JSON(http.StatusOK, map[string]string{"status": "degraded"})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) version(c echo.Context) error {
	return c.JSON(http.StatusOK, s.deps.Build)
}

// metrics is GET /api/v1/metrics: Prometheus metrics for callers holding
// the metrics scope (Tiled's route and scope). A scraper uses an API key of
// a service principal with that scope, or the separate unauthenticated
// listener (--metrics-addr) that keeps metrics off the public port.
func (s *Server) metrics(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeMetrics); err != nil {
		return err
	}
	s.deps.MetricsHandler.ServeHTTP(c.Response(), c.Request())
	return nil
}
