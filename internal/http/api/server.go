// Package api assembles the HTTP surface: the Echo instance, its middleware,
// the table of routes, the one place where errors become responses, and the
// routes that belong to no other surface (about, probes, landing page).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/version"
)

// Registrar is a surface that adds its own routes to the API group
// (data handlers, auth handlers).
type Registrar interface {
	Register(g *echo.Group)
}

// Provider describes an authentication provider for the about document.
type Provider struct {
	Name string
	// External is true for providers that send the person to another site
	// (OIDC); false for username/password providers.
	External            bool
	ConfirmationMessage *string
	// Proxied, for Tiled's ProxiedOIDCAuthenticator, returns the provider's
	// endpoints (from discovery, so possibly empty while it is down): the
	// Python client runs the device flow at the provider itself.
	Proxied func() ProxiedInfo
}

// ProxiedInfo is what the about document says of a proxied provider.
type ProxiedInfo struct {
	DeviceAuthorizationEndpoint string
	TokenEndpoint               string
	EndSessionEndpoint          string
	DeviceFlowClientID          string
	ExtraScopes                 []string
}

// Deps are everything the HTTP surface needs, passed in explicitly.
type Deps struct {
	Logger   *slog.Logger
	Build    version.Info
	Resolver *authn.Resolver
	// Providers are listed in the about document; none means single-user.
	Providers []Provider
	// Formats and Aliases describe the serializers, for the about document.
	Formats map[string][]string
	Aliases map[string]map[string][]string
	// Queries are the search query types the data routes support.
	Queries []string
	// Surfaces register the rest of the API (data, auth).
	Surfaces []Registrar
	// Ready reports whether this replica should receive traffic; nil means
	// always ready. Its error is logged, never sent.
	Ready func(ctx context.Context) error
	// ReadinessTimeout bounds Ready (default 2s).
	ReadinessTimeout time.Duration
	// Tracing adds an OpenTelemetry span to every request.
	Tracing bool
	// RootPath is the prefix a reverse proxy strips (uvicorn's root_path):
	// routes stay where they are, links the server hands out include it.
	RootPath string
	// AllowOrigins lists the browser origins allowed to call the API with
	// credentials (Tiled's allow_origins); none means same-origin only.
	AllowOrigins []string
	// Middleware runs after the caller is resolved, before every route
	// (the resource server's read_scopes gate).
	Middleware []echo.MiddlewareFunc
	// Degraded reports a dependency that is down without making the
	// replica unready (an identity provider whose keys have not loaded:
	// API keys and anonymous reads still work). /readyz answers 200 with
	// status "degraded" and logs the reason.
	Degraded func() error
	// Docs serves the OpenAPI document and Swagger UI; nil serves neither.
	Docs Registrar
	// Metrics records every request by route template; nil records nothing.
	Metrics RequestMetrics
	// MetricsHandler serves Prometheus metrics at /api/v1/metrics to
	// callers holding the metrics scope, as Tiled does; nil serves nothing
	// there (metrics.prometheus: false).
	MetricsHandler http.Handler
	// Forwarded decides who the client is; its zero value believes no
	// forwarding header (server.trusted_proxies is empty).
	Forwarded forwarded.Resolver
	// MaxInFlight caps requests served at once (probes aside); beyond it
	// the answer is 503 with Retry-After. 0: no cap.
	MaxInFlight int
	// RequestTimeout is each request's deadline; 0: none.
	RequestTimeout time.Duration
	// Pages are the browser pages (sign in, account); nil serves none.
	Pages Pages
	// View renders the landing page and serves the pages' assets; nil uses
	// the embedded default.
	View *view.Renderer
	// DatabaseBudget bounds the session-database time of one request,
	// summed over its store calls (server.database_timeout); 0: none.
	DatabaseBudget time.Duration
}

// Pages are the browser pages, at the root of the server.
type Pages interface {
	Registrar
	// OwnsCSRF says whether a route's forms carry their own CSRF token,
	// which the pages check; the API's header check then stands aside.
	OwnsCSRF(route string) bool
}

// RequestMetrics records requests. BeginRequest is called when a request
// arrives; the func it returns when it has been answered, with the route
// template ("" when no route matched), never the raw path.
type RequestMetrics interface {
	BeginRequest() func(route, method string, status int, size int64)
}

// Server is the HTTP surface of one replica.
type Server struct {
	deps     Deps
	echo     *echo.Echo
	table    *routeTable
	draining atomic.Bool
	// slots holds one token per request in flight (nil: no cap).
	slots chan struct{}
}

// New builds the Echo instance with every route.
func New(d Deps) *Server {
	if d.View == nil {
		d.View = view.MustNew(d.Build.Version)
	}
	s := &Server{deps: d, echo: echo.New()}
	if d.MaxInFlight > 0 {
		s.slots = make(chan struct{}, d.MaxInFlight)
	}
	e := s.echo
	s.table = &routeTable{e: e}
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Echo's default binder is not used; handlers parse what they accept and
	// answer 422 in Tiled's shape themselves.
	e.Pre(s.recoverPanics, s.requestID, s.resolveClient)
	// c.RealIP() is the resolved client, never a header an untrusted peer
	// sent (Echo's default extractor believes X-Forwarded-For from anyone).
	e.IPExtractor = func(r *http.Request) string { return forwarded.FromContext(r.Context()).String() }
	if d.RootPath != "" && d.RootPath != "/" {
		e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				r := c.Request()
				c.SetRequest(r.WithContext(links.WithRootPath(r.Context(), d.RootPath)))
				return next(c)
			}
		})
	}
	if d.Tracing {
		e.Use(s.trace)
	}
	if d.Metrics != nil {
		e.Use(s.observe)
	}
	// Compression wraps everything, so that it sees error bodies too.
	e.Use(compress)
	e.Use(s.accessLog)
	if len(d.AllowOrigins) > 0 {
		// As Tiled's CORSMiddleware: credentials allowed, so origins are
		// listed exactly (never "*"); the request id is readable by scripts.
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:     d.AllowOrigins,
			AllowCredentials: true,
			AllowMethods:     []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			ExposeHeaders:    []string{requestIDHeader},
		}))
	}
	e.Use(s.limitInFlight, s.bound)
	e.Use(s.csrf, s.checkClientVersion, s.authenticate)
	e.Use(d.Middleware...)
	s.routes()
	return s
}

// Handler returns the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo exposes the router, for tests that add routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Drain marks the replica as going away: /readyz answers 503 so the load
// balancer stops sending new requests before the listener closes.
func (s *Server) Drain() { s.draining.Store(true) }

// routes is the table of every route the server answers. Surfaces add theirs
// under /api/v1 in their Register methods.
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/version", s.version)
	e.GET("/", s.landing)
	e.GET(view.AssetsPrefix+"/*", s.deps.View.Assets)
	if s.deps.Pages != nil {
		s.deps.Pages.Register(e.Group(""))
	}
	if s.deps.Docs != nil {
		// The OpenAPI document and Swagger UI, at the root and under the API.
		s.deps.Docs.Register(e.Group(""))
	} else {
		e.GET("/docs", s.docs)
	}

	api := e.Group(links.APIPrefix)
	// Tiled answers /api/v1 with a redirect to /api/v1/; we answer both, so
	// that visiting the start-up URL sets the cookie in one step.
	e.GET(links.APIPrefix, s.about)
	api.GET("/", s.about)
	if s.deps.Docs == nil {
		api.GET("/docs", s.docs)
	}
	if s.deps.MetricsHandler != nil {
		api.GET("/metrics", s.metrics)
	}
	for _, r := range s.deps.Surfaces {
		r.Register(api)
	}
}

func isProbe(c echo.Context) bool {
	switch c.Path() {
	case "/healthz", "/readyz", "/version":
		return true
	}
	return false
}

// now is used only for log durations, never for domain decisions.
func now() time.Time { return time.Now() }
