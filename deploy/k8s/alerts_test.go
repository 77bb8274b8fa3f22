package k8s

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/http/api"
	"github.com/tiledgo/server/internal/http/authapi"
	"github.com/tiledgo/server/internal/metrics"
	"github.com/tiledgo/server/internal/sessions"
)

const (
	// alertJob is the scrape job the alerts select (compose's job_name, the
	// ServiceMonitor's jobLabel).
	alertJob = "tiled"
	// serverGroup holds the alerts on the server's own series; it is the
	// rule file the compose Prometheus loads.
	serverGroup   = "tiled"
	composeAlerts = "../compose/alerts.yml"
	readmePath    = "../../README.md"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// kubeStateMetrics are the kube-state-metrics series the Kubernetes group
// uses, with their labels (add one here when an alert needs it).
var kubeStateMetrics = map[string][]string{
	"kube_cronjob_status_last_successful_time":             {"namespace", "cronjob"},
	"kube_job_status_failed":                               {"namespace", "job_name", "reason"},
	"kube_horizontalpodautoscaler_status_current_replicas": {"namespace", "horizontalpodautoscaler"},
	"kube_horizontalpodautoscaler_spec_max_replicas":       {"namespace", "horizontalpodautoscaler"},
}

// serverSeries lists every series a replica exports, with its labels, from
// the server's real registry (not a copy of the names), so an alert on a
// renamed or missing series fails here.
func serverSeries(t *testing.T) map[string][]string {
	t.Helper()
	m := metrics.New(metrics.Build{Version: "test", Commit: "test", TiledAPI: "test"})
	m.ObservePool(func() (sessions.PoolStats, bool) { return sessions.PoolStats{}, true })
	m.ObserveReady(func() bool { return true })
	// Vectors show up only once they hold a series.
	m.ObserveAuthCache(func() authcache.Stats { return authcache.Stats{InSync: true} })
	m.BeginRequest()("/healthz", "GET", 200, 1)
	m.GCDeleted("sessions", 1)
	m.GCRun(nil, time.Now())
	m.Refresh("rotated")
	m.APIKeyCheck("valid", "cache")
	m.RevocationLag(time.Millisecond)
	for _, e := range []string{audit.Login, audit.LoginThrottled, audit.RefreshReuse, audit.SessionRevoke,
		audit.APIKeyCreate, audit.PrincipalCreate} {
		m.AuditEvent(audit.Event{Name: e, Provider: "toy", Outcome: audit.Success, Detail: map[string]any{"by": "id"}})
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{"up": nil}
	for _, f := range fams {
		var names []string
		if ms := f.GetMetric(); len(ms) > 0 {
			for _, l := range ms[0].GetLabel() {
				names = append(names, l.GetName())
			}
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[f.GetName()+"_bucket"] = append(slices.Clone(names), "le")
			out[f.GetName()+"_sum"], out[f.GetName()+"_count"] = names, names
		case dto.MetricType_SUMMARY:
			out[f.GetName()] = append(slices.Clone(names), "quantile")
			out[f.GetName()+"_sum"], out[f.GetName()+"_count"] = names, names
		default:
			out[f.GetName()] = names
		}
	}
	return out
}

// routes are the route templates the endpoint label takes: the probes and
// the /api/v1/auth surface, from the real route table.
func routes(t *testing.T) []string {
	t.Helper()
	srv := api.New(api.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	(&authapi.Handlers{}).Register(srv.Echo().Group("/api/v1"))
	var out []string
	for _, r := range srv.Echo().Routes() {
		out = append(out, r.Path)
	}
	return out
}

func parseRules(t *testing.T, name string, b []byte) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(errs) > 0 {
		t.Fatalf("%s: Prometheus refuses the rules:\n%v", name, errors.Join(errs...))
	}
	return groups
}

// prometheusRule returns monitoring/'s PrometheusRule as the rule file the
// operator generates from it, checked by Prometheus's own rule parser.
func prometheusRule(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	mon := loadFiles(t, monitoringDir, readKustomization(t, monitoringDir).Resources...)
	if len(mon.PrometheusRules) != 1 {
		t.Fatalf("want one PrometheusRule, have %d", len(mon.PrometheusRules))
	}
	b, err := yaml.Marshal(struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}{mon.PrometheusRules[0].Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	return parseRules(t, "PrometheusRule "+mon.PrometheusRules[0].Name, b)
}

// TestComposeAlertsAreTheServerGroup: one set of alerts, loaded by the
// compose Prometheus and by the operator.
func TestComposeAlertsAreTheServerGroup(t *testing.T) {
	b, err := os.ReadFile(composeAlerts)
	if err != nil {
		t.Fatal(err)
	}
	compose := parseRules(t, composeAlerts, b)
	if len(compose.Groups) != 1 || compose.Groups[0].Name != serverGroup {
		t.Fatalf("%s: want the one group %q", composeAlerts, serverGroup)
	}
	var found bool
	for _, g := range prometheusRule(t).Groups {
		if g.Name == serverGroup {
			found = true
			if !reflect.DeepEqual(g, compose.Groups[0]) {
				t.Errorf("group %q differs between %s and monitoring/prometheusrule.yaml:\n%+v\n%+v", serverGroup, composeAlerts, compose.Groups[0], g)
			}
		}
	}
	if !found {
		t.Errorf("monitoring/prometheusrule.yaml has no group %q", serverGroup)
	}
}

// TestAlertExpressions: every expression names only series the server (or,
// in the Kubernetes group, kube-state-metrics) exports, with their labels;
// groups by labels its series carry; and names this deployment's objects.
func TestAlertExpressions(t *testing.T) {
	o := base(t)
	own, routes := serverSeries(t), routes(t)
	objectNames := map[string][]string{"job": {alertJob}}
	for _, c := range o.CronJobs {
		objectNames["cronjob"] = append(objectNames["cronjob"], c.Name)
	}
	for _, j := range o.Jobs {
		objectNames["job_name"] = append(objectNames["job_name"], j.Name)
	}
	for _, h := range o.HPAs {
		objectNames["horizontalpodautoscaler"] = append(objectNames["horizontalpodautoscaler"], h.Name)
	}
	names := map[string]bool{}
	for _, g := range prometheusRule(t).Groups {
		known := own
		if g.Name != serverGroup {
			known = kubeStateMetrics
		}
		for _, r := range g.Rules {
			if r.Alert == "" || names[r.Alert] {
				t.Errorf("group %s: an alert without a name, or %q twice", g.Name, r.Alert)
			}
			names[r.Alert] = true
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			for _, err := range checkExpr(r.Expr, known, routes, objectNames) {
				t.Errorf("%s: %v", r.Alert, err)
			}
		}
	}
}

// TestAlertCheckCatchesMistakes plants the mistakes checkExpr is for.
func TestAlertCheckCatchesMistakes(t *testing.T) {
	own, routes := serverSeries(t), routes(t)
	objects := map[string][]string{"job": {alertJob}}
	for _, expr := range []string{
		`rate(tiled_request_total[5m])`,                                // misspelt series
		`sum by (route) (rate(tiled_requests_total[5m]))`,              // Tiled's label is endpoint
		`tiled_requests_total{status="500"}`,                           // and code, not status
		`tiled_requests_total{endpoint="/api/v1/auth/session/refres"}`, // no such route
		`tiled_requests_total{endpoint=~"/api/v1/auths/.*"}`,           // matches no route
		`up{job="tiled-metrics"}`,                                      // not the job the scrapers use
		`kube_job_status_failed > 0`,                                   // not a server series
		`sum(rate(tiled_requests_total[5m]`,                            // does not parse
	} {
		if errs := checkExpr(expr, own, routes, objects); len(errs) == 0 {
			t.Errorf("checkExpr accepts %s", expr)
		}
	}
	if errs := checkExpr(`sum by (endpoint) (rate(tiled_requests_total{endpoint="/readyz", code="503"}[5m]))`, own, routes, objects); len(errs) > 0 {
		t.Errorf("checkExpr refuses a good expression: %v", errs)
	}
}

// checkExpr parses expr with Prometheus's parser and checks the series,
// labels and label values it names.
func checkExpr(expr string, known map[string][]string, routes []string, objects map[string][]string) []error {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	labelsOf := func(vs *parser.VectorSelector) []string { return append(slices.Clone(known[vs.Name]), targetLabels...) }
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch v := n.(type) {
		case *parser.VectorSelector:
			if _, ok := known[v.Name]; !ok {
				errs = append(errs, fmt.Errorf("no series %q is exported", v.Name))
				return nil
			}
			for _, m := range v.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					continue
				}
				if !slices.Contains(labelsOf(v), m.Name) {
					errs = append(errs, fmt.Errorf("%s has no label %q (it has %v)", v.Name, m.Name, labelsOf(v)))
				}
				errs = append(errs, checkValue(v.Name, m, routes, objects)...)
			}
		case *parser.AggregateExpr:
			if v.Without {
				return nil
			}
			var have []string
			parser.Inspect(v.Expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					have = append(have, labelsOf(vs)...)
				}
				return nil
			})
			for _, l := range v.Grouping {
				if !slices.Contains(have, l) {
					errs = append(errs, fmt.Errorf("%s by (%s): its series have no label %q", v.Op, strings.Join(v.Grouping, ", "), l))
				}
			}
		}
		return nil
	})
	return errs
}

// checkValue: an endpoint matcher must match a real route template, and a
// label naming a Kubernetes object or the scrape job must name this
// deployment's.
func checkValue(series string, m *promlabels.Matcher, routes []string, objects map[string][]string) []error {
	if m.Type == promlabels.MatchNotEqual || m.Type == promlabels.MatchNotRegexp {
		return nil
	}
	switch {
	case m.Name == "endpoint":
		if !slices.ContainsFunc(routes, m.Matches) {
			return []error{fmt.Errorf("%s{%s}: matches no route of the server", series, m)}
		}
	case objects[m.Name] != nil:
		if !slices.ContainsFunc(objects[m.Name], m.Matches) {
			return []error{fmt.Errorf("%s{%s}: this deployment's %s is %v", series, m, m.Name, objects[m.Name])}
		}
	}
	return nil
}

// TestREADMEShowsEveryAlert keeps README "Operating at scale" and the rules
// the same: each alert appears there by name with its expression.
func TestREADMEShowsEveryAlert(t *testing.T) {
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Operating at scale\n")
	if !ok {
		t.Fatal(`README has no "## Operating at scale" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	space := regexp.MustCompile(`\s+`)
	norm := func(s string) string { return space.ReplaceAllString(strings.TrimSpace(s), " ") }
	text := norm(section)
	for _, g := range prometheusRule(t).Groups {
		for _, r := range g.Rules {
			if !strings.Contains(section, "`"+r.Alert+"`") {
				t.Errorf("README does not name alert %s", r.Alert)
			}
			if !strings.Contains(text, norm(r.Expr)) {
				t.Errorf("README does not show %s's expression as the rules have it:\n%s", r.Alert, r.Expr)
			}
		}
	}
}
