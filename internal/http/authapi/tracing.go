package authapi

import (
	"errors"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/tiledgo/server/internal/http/httperr"
)

// TracerName names this package's spans.
const TracerName = "github.com/tiledgo/server/internal/http/authapi"

// traced runs a login or refresh route under an "authenticate" span: which
// provider and authenticator, which grant, and the outcome. The store calls
// and token signing it makes nest under it. Never a credential.
func (h *Handlers) traced(grant string, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		ctx, span := otel.Tracer(TracerName).Start(r.Context(), "authenticate")
		defer span.End()
		if !span.IsRecording() {
			return next(c)
		}
		c.SetRequest(r.WithContext(ctx))
		attrs := []attribute.KeyValue{attribute.String("tiled.auth.grant", grant)}
		if name := c.Param("provider"); name != "" {
			attrs = append(attrs, attribute.String("tiled.auth.provider", name))
			for _, p := range h.Providers {
				if p.Name == name {
					attrs = append(attrs, attribute.String("tiled.auth.authenticator", p.Kind))
				}
			}
		}
		span.SetAttributes(attrs...)
		err := next(c)
		outcome := "accepted"
		var he *httperr.Error
		switch {
		case err == nil && c.Response().Status < 400:
		case err == nil, errors.As(err, &he) && he.Status < 500:
			outcome = "rejected"
		default:
			outcome = "error"
			span.SetStatus(codes.Error, "authentication failed")
		}
		span.SetAttributes(attribute.String("tiled.auth.outcome", outcome))
		return err
	}
}
