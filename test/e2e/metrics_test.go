package e2e

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads a Prometheus text exposition with Prometheus's own parser.
func scrape(t *testing.T, r reply) map[string]*dto.MetricFamily {
	t.Helper()
	if !expectStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parse the exposition: %v\n%s", err, truncate(r.Body, 2000))
	}
	return fams
}

// sample returns the value of the series of family name with labels (a
// counter, gauge, or a histogram's count), and whether it exists.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestMetrics (issue 17): Prometheus metrics at Tiled's /api/v1/metrics for
// callers with the metrics scope, and unauthenticated on --metrics-addr;
// the request series move with the requests made, by route template.
func TestMetrics(t *testing.T) {
	t.Parallel()
	key := randomHex(t, 32)
	mport := freePort(t)
	s := startServer(t, []string{"demo", "--public", "--api-key", key, "--metrics-addr", "127.0.0.1:" + strconv.Itoa(mport)})
	c := s.client(t)
	direct := func() map[string]*dto.MetricFamily {
		r, err := rawDo(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(mport)+"/metrics", nil, nil, readyTimeout)
		if err != nil {
			t.Fatal(err)
		}
		return scrape(t, r)
	}
	route := map[string]string{"method": "GET", "code": "200", "endpoint": "/api/v1/metadata/*"}
	before, _ := sample(direct(), "tiled_requests_total", route)
	for range 3 {
		expectStatus(t, c.get("/api/v1/metadata/A", nil), http.StatusOK)
	}
	expectStatus(t, c.get("/api/v1/metadata/no/such/node", nil), http.StatusNotFound)
	expectStatus(t, c.get("/no/such/route", nil), http.StatusNotFound)

	fams := scrape(t, c.get("/api/v1/metrics", apikey(key)))
	if got, _ := sample(fams, "tiled_requests_total", route); got != before+3 {
		t.Errorf("tiled_requests_total%v = %v, want %v", route, got, before+3)
	}
	if got, _ := sample(fams, "tiled_request_duration_seconds", route); got < 3 {
		t.Errorf("tiled_request_duration_seconds%v count %v, want at least 3", route, got)
	}
	if got, _ := sample(fams, "tiled_requests_total", map[string]string{"code": "404", "endpoint": "/api/v1/metadata/*"}); got != 1 {
		t.Errorf("404s on the metadata route: %v, want 1", got)
	}
	// A path no route takes is one series, whatever the path: probing
	// random paths cannot grow the registry.
	if got, _ := sample(fams, "tiled_requests_total", map[string]string{"code": "404", "endpoint": "unmatched"}); got != 1 {
		t.Errorf("unmatched 404s: %v, want 1", got)
	}
	for _, f := range fams["tiled_requests_total"].GetMetric() {
		for _, l := range f.GetLabel() {
			if l.GetName() == "endpoint" && l.GetValue() == "/no/such/route" {
				t.Errorf("a raw path became a label value: %v", f)
			}
		}
	}
	for _, name := range []string{"tiled_build_info", "tiled_requests_in_flight", "tiled_ready", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s series", name)
		}
	}
	if v, _ := sample(fams, "tiled_build_info", map[string]string{"version": buildVersion, "commit": buildCommit}); v != 1 {
		t.Errorf("tiled_build_info for %s %s: %v", buildVersion, buildCommit, v)
	}
	if v, _ := sample(fams, "tiled_ready", nil); v != 1 {
		t.Errorf("tiled_ready = %v, want 1", v)
	}
	// The separate listener sees the same registry, without credentials.
	if got, _ := sample(direct(), "tiled_requests_total", route); got != before+3 {
		t.Errorf("--metrics-addr: tiled_requests_total = %v, want %v", got, before+3)
	}
	// Tiled's scope: anonymous callers of a public server do not hold it.
	r := c.get("/api/v1/metrics", nil)
	expectStatus(t, r, http.StatusUnauthorized)
}

// TestMetricsMultiUser: the session database's pool, schema version and
// readiness, and the session layer's series (logins, limits, refreshes by
// outcome, reuse, revocations, API-key checks by source, the replica's
// cache) move with what is done; metrics.prometheus: false takes Tiled's
// route away.
func TestMetricsMultiUser(t *testing.T) {
	t.Parallel()
	db := newBackend(t, "postgres")
	mport := freePort(t)
	cfg := muConfig(db)
	cfg["server"] = map[string]any{
		"metrics_addr": "127.0.0.1:" + strconv.Itoa(mport), "refresh_grace_period": "1s",
		"login_failures_per_user_address": 2, "login_failure_max_delay": "0s",
	}
	cfg["metrics"] = map[string]any{"prometheus": false}
	s := startMU(t, cfg)
	c := s.client(t)
	scrapeNow := func() map[string]*dto.MetricFamily {
		r, err := rawDo(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(mport)+"/metrics", nil, nil, readyTimeout)
		if err != nil {
			t.Fatal(err)
		}
		return scrape(t, r)
	}
	expect := func(fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
		t.Helper()
		if got, _ := sample(fams, name, labels); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}

	tp := mustLogin(t, c, "alice")
	expectStatus(t, c.login(provToy, "bob", "wrong"), http.StatusUnauthorized)
	expectStatus(t, c.login(provToy, "bob", "wrong"), http.StatusUnauthorized)
	expectStatus(t, c.login(provToy, "bob", "wrong"), http.StatusTooManyRequests)
	next := mustRefresh(t, c, tp.Refresh)
	mustRefresh(t, c, tp.Refresh) // inside the 1 s grace window: the winner's token
	time.Sleep(1500 * time.Millisecond)
	expectStatus(t, c.refresh(tp.Refresh), http.StatusUnauthorized) // reuse: the session is revoked
	other := mustLogin(t, c, "alice")
	expectStatus(t, c.postJSON("/api/v1/auth/session/revoke", nil, map[string]string{"refresh_token": other.Refresh}), http.StatusNoContent)
	key := secretOf(t, mustCreateKey(t, c, bearer(mustLogin(t, c, "alice").Access), map[string]any{"scopes": []string{"read:metadata"}}))
	for range 2 {
		expectStatus(t, c.get("/api/v1/metadata/", apikey(key)), http.StatusOK)
	}
	expectStatus(t, c.get("/api/v1/metadata/", apikey(otherKey(key))), http.StatusUnauthorized)
	_ = next

	fams := scrapeNow()
	expect(fams, "tiled_logins_total", map[string]string{"provider": provToy, "outcome": "success"}, 3)
	expect(fams, "tiled_logins_total", map[string]string{"provider": provToy, "outcome": "failure"}, 2)
	expect(fams, "tiled_login_limit_refusals_total", map[string]string{"provider": provToy}, 1)
	expect(fams, "tiled_refreshes_total", map[string]string{"outcome": "rotated"}, 1)
	// The racing refresh came within the grace window, and possibly before
	// the rotation was confirmed (confirmations are batched): either way it
	// was handed the winner's token.
	grace, _ := sample(fams, "tiled_refreshes_total", map[string]string{"outcome": "grace"})
	pending, _ := sample(fams, "tiled_refreshes_total", map[string]string{"outcome": "pending"})
	if grace+pending != 1 {
		t.Errorf("racing refreshes handed the winner's token: grace %v + pending %v, want 1", grace, pending)
	}
	expect(fams, "tiled_refreshes_total", map[string]string{"outcome": "reuse"}, 1)
	expect(fams, "tiled_refresh_reuse_detections_total", nil, 1)
	expect(fams, "tiled_revocations_total", map[string]string{"by": "refresh_token"}, 1)
	expect(fams, "tiled_apikeys_total", map[string]string{"action": "create"}, 1)
	expect(fams, "tiled_apikey_checks_total", map[string]string{"outcome": "valid", "source": "database"}, 1)
	expect(fams, "tiled_apikey_checks_total", map[string]string{"outcome": "valid", "source": "cache"}, 1)
	expect(fams, "tiled_authcache_in_sync", nil, 1)
	if v, _ := sample(fams, "tiled_apikey_checks_total", map[string]string{"outcome": "invalid"}); v != 1 {
		t.Errorf("invalid API-key checks: %v, want 1", v)
	}
	if v, ok := sample(fams, "tiled_db_pool_max_connections", nil); !ok || v != 10 {
		t.Errorf("tiled_db_pool_max_connections = %v (%v), want pool_size + max_overflow = 10", v, ok)
	}
	if v, _ := sample(fams, "tiled_db_pool_acquires_total", nil); v < 1 {
		t.Errorf("tiled_db_pool_acquires_total = %v after logins", v)
	}
	expect(fams, "tiled_schema_version", nil, float64(len(migrationNames(t, "postgres"))))
	expect(fams, "tiled_ready", nil, 1)
	expectStatus(t, c.get("/api/v1/metrics", bearer(mustLogin(t, c, "alice").Access)), http.StatusNotFound)
}
