package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authcache"
)

// authMetrics are the session layer's series. Labels take values from
// fixed sets (outcomes, event names) or from configuration (provider
// names), never from a request.
type authMetrics struct {
	refreshes    *prometheus.CounterVec
	apiKeyChecks *prometheus.CounterVec
	logins       *prometheus.CounterVec
	throttled    *prometheus.CounterVec
	reuse        prometheus.Counter
	revocations  *prometheus.CounterVec
	apiKeys      *prometheus.CounterVec
	principals   *prometheus.CounterVec
	gcRuns       *prometheus.CounterVec
	gcLast       prometheus.Gauge
	lag          prometheus.Histogram
}

func newAuthMetrics(reg prometheus.Registerer) *authMetrics {
	a := &authMetrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_refreshes_total",
			Help: "Refresh-token exchanges by outcome: rotated, grace (a racing refresh handed the winner's token), pending (the previous token of an unconfirmed rotation handed the current one), reuse (session revoked), ended, malformed, newer_key, error.",
		}, []string{"outcome"}),
		apiKeyChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_apikey_checks_total",
			Help: "API keys checked, by outcome (valid, invalid, error) and where the answer came from (cache, database).",
		}, []string{"outcome", "source"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_logins_total",
			Help: "Logins (password, OIDC, device code) by provider and outcome.",
		}, []string{"provider", "outcome"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_login_limit_refusals_total",
			Help: "Login attempts refused by a login limit, by provider.",
		}, []string{"provider"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tiled_refresh_reuse_detections_total",
			Help: "Rotated refresh tokens presented again after the grace window: each revoked its session.",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_revocations_total",
			Help: "Sessions revoked through the API, by how (refresh_token, id, logout).",
		}, []string{"by"}),
		apiKeys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_apikeys_total",
			Help: "API keys created and deleted.",
		}, []string{"action"}),
		principals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_principal_changes_total",
			Help: "Principals created and roles granted.",
		}, []string{"change"}),
		gcRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiled_gc_runs_total",
			Help: "Garbage-collection passes by this replica, by result (ok, error).",
		}, []string{"result"}),
		gcLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tiled_gc_last_success_timestamp_seconds",
			Help: "When this replica last finished a garbage-collection pass (Unix time; 0 before the first).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tiled_revocation_propagation_seconds",
			Help:    "From a change written to the revocation log (on any replica) to this replica applying it from the notification.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	reg.MustRegister(a.refreshes, a.apiKeyChecks, a.logins, a.throttled, a.reuse, a.revocations, a.apiKeys,
		a.principals, a.gcRuns, a.gcLast, a.lag)
	return a
}

// Refresh implements sessions.RefreshObserver.
func (m *Metrics) Refresh(outcome string) {
	if m == nil {
		return
	}
	m.auth.refreshes.WithLabelValues(outcome).Inc()
}

// APIKeyCheck implements apikeys.CheckObserver.
func (m *Metrics) APIKeyCheck(outcome, source string) {
	if m == nil {
		return
	}
	m.auth.apiKeyChecks.WithLabelValues(outcome, source).Inc()
}

// AuditEvent implements audit.Counter: every audited event moves its series.
func (m *Metrics) AuditEvent(e audit.Event) {
	if m == nil {
		return
	}
	a := m.auth
	switch e.Name {
	case audit.Login:
		a.logins.WithLabelValues(e.Provider, e.Outcome).Inc()
	case audit.LoginThrottled:
		a.throttled.WithLabelValues(e.Provider).Inc()
	case audit.RefreshReuse:
		a.reuse.Inc()
	case audit.SessionRevoke:
		by, _ := e.Detail["by"].(string)
		a.revocations.WithLabelValues(by).Inc()
	case audit.APIKeyCreate:
		a.apiKeys.WithLabelValues("create").Inc()
	case audit.APIKeyDelete:
		a.apiKeys.WithLabelValues("delete").Inc()
	case audit.PrincipalCreate:
		a.principals.WithLabelValues("create").Inc()
	case audit.PrincipalRoleGrant:
		a.principals.WithLabelValues("role_grant").Inc()
	}
}

// GCRun records one garbage-collection pass.
func (m *Metrics) GCRun(err error, at time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.auth.gcRuns.WithLabelValues("error").Inc()
		return
	}
	m.auth.gcRuns.WithLabelValues("ok").Inc()
	m.auth.gcLast.Set(float64(at.Unix()))
}

// RevocationLag observes one notification's propagation delay.
func (m *Metrics) RevocationLag(d time.Duration) {
	if m == nil {
		return
	}
	m.auth.lag.Observe(max(d, 0).Seconds())
}

// ObserveAuthCache exposes the replica's revocation and key cache.
func (m *Metrics) ObserveAuthCache(stats func() authcache.Stats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&cacheCollector{stats: stats,
		inSync: prometheus.NewDesc("tiled_authcache_in_sync", "1 while the revocation and key cache follows the log; 0 while requests read the database instead.", nil, nil),
		revocations: prometheus.NewDesc("tiled_authcache_revocation_checks_total",
			"Revocation checks of bearer tokens by source: cache (answered from memory) or database (the cache was not in sync).", []string{"source"}, nil),
		keys: prometheus.NewDesc("tiled_authcache_key_lookups_total", "API-key lookups in the cache by result (hit, miss).", []string{"result"}, nil),
		principals: prometheus.NewDesc("tiled_authcache_principal_lookups_total",
			"Lookups of a refreshed session's principal in the cache by result (hit, miss: read from the database).", []string{"result"}, nil),
		resyncs: prometheus.NewDesc("tiled_authcache_resyncs_total", "Rebuilds of the cache from the revocation log (start, reconnects, gaps).", nil, nil),
		held:    prometheus.NewDesc("tiled_authcache_entries", "Entries held, by kind.", []string{"kind"}, nil),
	})
}

type cacheCollector struct {
	stats                                                func() authcache.Stats
	inSync, revocations, keys, principals, resyncs, held *prometheus.Desc
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inSync
	ch <- c.revocations
	ch <- c.keys
	ch <- c.principals
	ch <- c.resyncs
	ch <- c.held
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	in := 0.0
	if s.InSync {
		in = 1
	}
	ch <- prometheus.MustNewConstMetric(c.inSync, prometheus.GaugeValue, in)
	ch <- prometheus.MustNewConstMetric(c.revocations, prometheus.CounterValue, float64(s.RevocationHits), "cache")
	ch <- prometheus.MustNewConstMetric(c.revocations, prometheus.CounterValue, float64(s.RevocationFallbacks), "database")
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.CounterValue, float64(s.KeyHits), "hit")
	ch <- prometheus.MustNewConstMetric(c.keys, prometheus.CounterValue, float64(s.KeyMisses), "miss")
	ch <- prometheus.MustNewConstMetric(c.principals, prometheus.CounterValue, float64(s.PrincipalHits), "hit")
	ch <- prometheus.MustNewConstMetric(c.principals, prometheus.CounterValue, float64(s.PrincipalMisses), "miss")
	ch <- prometheus.MustNewConstMetric(c.resyncs, prometheus.CounterValue, float64(s.Resyncs))
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.Sessions), "revoked_sessions")
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.Principals), "deleted_principals")
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.Keys), "api_keys")
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.Known), "principals")
}
