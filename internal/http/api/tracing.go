package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
)

// TracerName names this package's spans.
const TracerName = "github.com/tiledgo/server/internal/http/api"

// trace starts one server span per request, continuing a W3C traceparent.
// It is written here rather than taken from otelecho, whose last release
// speaks the semantic conventions of 2023 (http.method, net.host.name set
// to the service name): these spans use the same conventions (v1.40.0) as
// the database spans from otelpgx, so one query language covers both.
//
// The span is named by the route template, never the raw path, and carries
// url.path but never the query string (it may hold an API key).
func (s *Server) trace(next echo.HandlerFunc) echo.HandlerFunc {
	tracer := otel.Tracer(TracerName)
	return func(c echo.Context) error {
		if isProbe(c) {
			return next(c)
		}
		r := c.Request()
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		route := c.Path()
		name := r.Method
		if route != "" {
			name += " " + route
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		c.SetRequest(r.WithContext(ctx))
		if !span.IsRecording() {
			return next(c)
		}
		attrs := []attribute.KeyValue{
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.URLScheme(scheme(r)),
			semconv.NetworkProtocolVersion(strings.TrimPrefix(r.Proto, "HTTP/")),
			semconv.UserAgentOriginal(r.UserAgent()),
			semconv.ClientAddress(c.RealIP()),
		}
		if host, port, err := net.SplitHostPort(r.Host); err == nil {
			attrs = append(attrs, semconv.ServerAddress(host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, semconv.ServerPort(p))
			}
		} else if r.Host != "" {
			attrs = append(attrs, semconv.ServerAddress(r.Host))
		}
		if route != "" {
			attrs = append(attrs, semconv.HTTPRoute(route))
		}
		span.SetAttributes(attrs...)

		err := next(c)
		if err != nil {
			c.Error(err)
		}
		if unmatched, _ := c.Get(unmatchedKey).(bool); unmatched {
			span.SetName(r.Method)
		}
		status := c.Response().Status
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		}
		return nil
	}
}

// scheme is the request's scheme as the client used it.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// resolve authenticates creds under an "authenticate" span: which kind of
// credential was presented (never its value), what kind of caller it
// resolved to, and the outcome. Verification work below it (the session or
// key lookup, the JWT check) nests under it.
func (s *Server) resolve(ctx context.Context, creds authn.Credentials) (*authn.Caller, error) {
	if creds.Empty() {
		// Anonymous: nothing to verify, nothing worth a span.
		return s.deps.Resolver.Resolve(ctx, creds)
	}
	ctx, span := otel.Tracer(TracerName).Start(ctx, "authenticate")
	defer span.End()
	caller, err := s.deps.Resolver.Resolve(ctx, creds)
	if span.IsRecording() {
		credential := "bearer"
		if creds.APIKey != "" {
			credential = "api_key"
		}
		span.SetAttributes(attribute.String("tiled.auth.credential", credential))
		switch {
		case err == nil:
			span.SetAttributes(attribute.String("tiled.auth.caller", caller.Kind.String()),
				attribute.String("tiled.auth.outcome", "accepted"))
		case isClientError(err):
			span.SetAttributes(attribute.String("tiled.auth.outcome", "rejected"))
		default:
			span.SetAttributes(attribute.String("tiled.auth.outcome", "error"))
			span.SetStatus(codes.Error, "authentication failed")
			span.RecordError(err)
		}
	}
	return caller, err
}

// isClientError reports whether err is a 4xx answer (refused credentials)
// rather than a failure to decide.
func isClientError(err error) bool {
	var he *httperr.Error
	return errors.As(err, &he) && he.Status >= 400 && he.Status < 500
}
