// Package metrics owns this replica's Prometheus metrics: the registry,
// what the HTTP surface and the session layer record, and the handler that
// serves them.
//
// It uses github.com/prometheus/client_golang rather than the OpenTelemetry
// SDK's Prometheus exporter: the exposition format is Prometheus's own
// (histogram buckets, HELP and TYPE lines, the process and Go collectors that
// dashboards expect) without a translation layer, and Tiled's own metric
// names (tiled_request_duration_seconds, ...) come out unchanged, so Tiled
// dashboards work. Traces stay with OpenTelemetry.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one replica's registry and collectors. Its methods are safe
// for concurrent use; a nil *Metrics records nothing.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	responseSize *prometheus.HistogramVec
	inFlight     prometheus.Gauge

	gcDeleted     *prometheus.CounterVec
	schemaVersion prometheus.Gauge

	auth *authMetrics
}

// Build describes the running binary, for tiled_build_info.
type Build struct {
	Version, Commit, TiledAPI string
}

// New makes a registry with the Go runtime and process collectors, build
// information, and the HTTP and housekeeping series.
func New(b Build) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tiled_build_info",
		Help: "Build of the running server (always 1).",
	}, []string{"version", "commit", "tiled_api", "go_version"})
	info.WithLabelValues(b.Version, b.Commit, b.TiledAPI, runtime.Version()).Set(1)
	reg.MustRegister(info)

	// Tiled's names and labels (tiled/server/metrics.py), so its dashboards
	// work: endpoint is the route template, never the raw path.
	labels := []string{"method", "code", "endpoint"}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_requests_total",
			Help: "HTTP requests, by method, status code and route template.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tiled_request_duration_seconds",
			Help:    "request duration for all HTTP requests",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, labels),
		responseSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tiled_response_content_length_bytes",
			Help:    "response size in bytes for all HTTP requests",
			Buckets: []float64{1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000},
		}, labels),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tiled_requests_in_flight",
			Help: "HTTP requests being served now.",
		}),
		gcDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_gc_deleted_total",
			Help: "Rows deleted by garbage collection on this replica, by kind.",
		}, []string{"kind"}),
		schemaVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tiled_schema_version",
			Help: "Session database schema version this replica last found applied (0 before it knows).",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.responseSize, m.inFlight, m.gcDeleted, m.schemaVersion)
	m.auth = newAuthMetrics(reg)
	return m
}

// Registry is where other packages register their collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// BeginRequest counts a request in flight; the returned func records it
// when it is answered. route is the route template ("" when no route
// matched, recorded as "unmatched" so that probing random paths cannot
// grow the series without bound).
func (m *Metrics) BeginRequest() func(route, method string, status int, size int64) {
	if m == nil {
		return func(string, string, int, int64) {}
	}
	start := time.Now()
	m.inFlight.Inc()
	return func(route, method string, status int, size int64) {
		m.inFlight.Dec()
		if route == "" {
			route = "unmatched"
		}
		lv := []string{method, strconv.Itoa(status), route}
		m.requests.WithLabelValues(lv...).Inc()
		m.duration.WithLabelValues(lv...).Observe(time.Since(start).Seconds())
		if size >= 0 {
			m.responseSize.WithLabelValues(lv...).Observe(float64(size))
		}
	}
}

// GCDeleted adds n rows of kind deleted by one garbage-collection pass.
func (m *Metrics) GCDeleted(kind string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.gcDeleted.WithLabelValues(kind).Add(float64(n))
}

// SetSchemaVersion records the applied schema version.
func (m *Metrics) SetSchemaVersion(v int64) {
	if m == nil {
		return
	}
	m.schemaVersion.Set(float64(v))
}

// ObserveReady exposes tiled_ready from fn, read at each scrape: it must be
// cheap (flags, not database calls).
func (m *Metrics) ObserveReady(fn func() bool) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tiled_ready",
		Help: "1 when this replica reports ready (schema current, not draining), else 0.",
	}, func() float64 {
		if fn() {
			return 1
		}
		return 0
	}))
}
