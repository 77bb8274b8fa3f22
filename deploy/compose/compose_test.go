// Package compose holds the files docker-compose.yml mounts. No Docker
// engine answers where the tests run, so these tests check the compose file
// the way `docker compose up` would depend on it: every service it refers to
// exists, the proxy and Prometheus name exactly the replicas, published
// ports do not collide, mounted files exist, and each replica's
// configuration loads with the server's own loader under --scalable.
package compose

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tiledgo/server/internal/config"
)

const (
	root        = "../.."
	composeFile = root + "/docker-compose.yml"
	// telemetryFlush is how long serve gives itself to flush traces after
	// the HTTP server has shut down (cmd/server/serve.go).
	telemetryFlush = 5 * time.Second
	// metricsPath is where the --metrics-addr listener serves
	// (cmd/server/metricsserver.go).
	metricsPath = "/metrics"
	// alertJob is the scrape job the alerts select (deploy/compose/alerts.yml).
	alertJob = "tiled"
)

// Compose is the part of the Compose specification this file uses, decoded
// strictly: a key these types do not know (a typo such as depend_on) fails
// the test. Add a field here when the compose file starts using one.
type Compose struct {
	Services map[string]Service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
	// Extensions are the x-* keys that hold the YAML anchors.
	Extensions map[string]any `yaml:",inline"`
}

type Service struct {
	Image           string            `yaml:"image"`
	Build           string            `yaml:"build"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	DependsOn       DependsOn         `yaml:"depends_on"`
	Healthcheck     *Healthcheck      `yaml:"healthcheck"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

type Healthcheck struct {
	Test     []string `yaml:"test"`
	Interval string   `yaml:"interval"`
	Timeout  string   `yaml:"timeout"`
	Retries  int      `yaml:"retries"`
}

// DependsOn is depends_on in either form: a list of services (each
// service_started) or a map of service to condition.
type DependsOn map[string]string

func (d *DependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = DependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = "service_started"
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for s, c := range m {
			(*d)[s] = c.Condition
		}
	default:
		return fmt.Errorf("line %d: depends_on is a list or a mapping", n.Line)
	}
	return nil
}

func load(t *testing.T) Compose {
	t.Helper()
	f, err := os.Open(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var c Compose
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	for k := range c.Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("%s: unknown top-level key %q", composeFile, k)
		}
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", composeFile)
	}
	return c
}

// flag returns the value of --name in args ("--name v" or "--name=v").
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func hasFlag(args []string, name string) bool {
	return slices.Contains(args, "--"+name) || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--"+name+"=") })
}

// replica is a service that runs `server serve`.
type replica struct {
	name                   string
	svc                    Service
	port, metricsPort      int
	drain, shutdown, grace time.Duration
}

func replicas(t *testing.T, c Compose) []replica {
	t.Helper()
	var out []replica
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range c.Services {
			if !yield(k) {
				return
			}
		}
	}) {
		s := c.Services[name]
		if len(s.Command) == 0 || s.Command[0] != "serve" {
			continue
		}
		r := replica{name: name, svc: s, shutdown: 20 * time.Second}
		var err error
		portArg, _ := flag(s.Command, "port")
		if r.port, err = strconv.Atoi(portArg); err != nil {
			t.Errorf("%s: --port %q: %v", name, portArg, err)
		}
		addr, ok := flag(s.Command, "metrics-addr")
		if !ok {
			t.Errorf("%s: no --metrics-addr: Prometheus has nothing to scrape", name)
		} else if _, p, err := net.SplitHostPort(addr); err != nil {
			t.Errorf("%s: --metrics-addr %q: %v", name, addr, err)
		} else {
			r.metricsPort, _ = strconv.Atoi(p)
		}
		for _, d := range []struct {
			flag string
			to   *time.Duration
		}{{"drain-delay", &r.drain}, {"shutdown-timeout", &r.shutdown}} {
			if v, ok := flag(s.Command, d.flag); ok {
				if *d.to, err = time.ParseDuration(v); err != nil {
					t.Errorf("%s: --%s %q: %v", name, d.flag, v, err)
				}
			}
		}
		r.grace = 10 * time.Second // Docker's default
		if s.StopGracePeriod != "" {
			if r.grace, err = time.ParseDuration(s.StopGracePeriod); err != nil {
				t.Errorf("%s: stop_grace_period %q: %v", name, s.StopGracePeriod, err)
			}
		}
		out = append(out, r)
	}
	return out
}

func names(rs []replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return out
}

func TestDependencies(t *testing.T) {
	c := load(t)
	conditions := []string{"service_started", "service_healthy", "service_completed_successfully"}
	for name, s := range c.Services {
		if s.Image == "" && s.Build == "" {
			t.Errorf("%s: neither image nor build", name)
		}
		if s.Image != "" && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
		for dep, cond := range s.DependsOn {
			d, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on %q, which is not a service", name, dep)
			case !slices.Contains(conditions, cond):
				t.Errorf("%s: depends_on %s has condition %q", name, dep, cond)
			case cond == "service_healthy" && d.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			case cond == "service_completed_successfully" && (len(d.Command) == 0 || d.Command[0] == "serve"):
				t.Errorf("%s waits for %s to complete, but %s is not a one-shot command", name, dep, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts volume %q, not declared under volumes", name, src)
			}
		}
	}
}

// TestReplicas: three or more replicas that all run after the one-shot
// migration, with the flags the design needs, sharing the database and keys.
func TestReplicas(t *testing.T) {
	c := load(t)
	rs := replicas(t, c)
	if len(rs) < 3 {
		t.Fatalf("replicas %v: want at least three", names(rs))
	}
	var migrate string
	for name, s := range c.Services {
		if slices.Equal(s.Command, []string{"migrate", "up"}) {
			migrate = name
		}
	}
	if migrate == "" {
		t.Fatal("no one-shot `migrate up` service")
	}
	first := rs[0].svc.Environment
	for _, r := range rs {
		if r.svc.DependsOn[migrate] != "service_completed_successfully" {
			t.Errorf("%s does not wait for %s to complete", r.name, migrate)
		}
		if !hasFlag(r.svc.Command, "scalable") {
			t.Errorf("%s: no --scalable", r.name)
		}
		if f, _ := flag(r.svc.Command, "log-format"); f != "json" {
			t.Errorf("%s: --log-format %q, want json", r.name, f)
		}
		if h, _ := flag(r.svc.Command, "host"); h != "0.0.0.0" {
			t.Errorf("%s: --host %q: the proxy cannot reach a replica listening on loopback", r.name, h)
		}
		if a, _ := flag(r.svc.Command, "metrics-addr"); !strings.HasPrefix(a, "0.0.0.0:") {
			t.Errorf("%s: --metrics-addr %q: Prometheus cannot reach it", r.name, a)
		}
		if r.drain <= 0 {
			t.Errorf("%s: no --drain-delay", r.name)
		}
		if r.grace <= r.drain+r.shutdown+telemetryFlush {
			t.Errorf("%s: stop_grace_period %s must exceed drain %s + shutdown %s + trace flush %s", r.name, r.grace, r.drain, r.shutdown, telemetryFlush)
		}
		if r.port == r.metricsPort {
			t.Errorf("%s: the API and metrics share port %d", r.name, r.port)
		}
		for _, k := range []string{"TILED_DATABASE_URI", "TILED_SECRET_KEYS"} {
			if r.svc.Environment[k] == "" || r.svc.Environment[k] != first[k] {
				t.Errorf("%s: %s must be set and the same on every replica", r.name, k)
			}
		}
		if r.svc.Environment["TILED_DATABASE_URI"] != c.Services[migrate].Environment["TILED_DATABASE_URI"] {
			t.Errorf("%s migrates a different database than %s serves", migrate, r.name)
		}
	}
}

// TestReplicaConfigLoads loads deploy/compose/config.yml with each
// replica's environment and flags, as serve config would.
func TestReplicaConfigLoads(t *testing.T) {
	for _, r := range replicas(t, load(t)) {
		args := r.svc.Command
		if len(args) < 3 || args[1] != "config" {
			t.Fatalf("%s: %v is not serve config FILE", r.name, args)
		}
		var file string
		for _, v := range r.svc.Volumes {
			src, rest, _ := strings.Cut(v, ":")
			if dst, _, _ := strings.Cut(rest, ":"); dst == args[2] {
				file = filepath.Join(root, src)
			}
		}
		if file == "" {
			t.Fatalf("%s: serves %s, which no volume mounts", r.name, args[2])
		}
		env := r.svc.Environment
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		host, _ := flag(args, "host")
		logFormat, _ := flag(args, "log-format")
		metricsAddr, _ := flag(args, "metrics-addr")
		f := config.Flags{Scalable: ptr(true), Host: &host, Port: &r.port, LogFormat: &logFormat,
			MetricsAddr: &metricsAddr, DrainDelay: &r.drain, ShutdownTimeout: &r.shutdown}
		c, err := config.Build([]string{file}, lookup, f)
		if err != nil {
			t.Fatalf("%s: the config does not load as serve --scalable would:\n%v", r.name, err)
		}
		if c.Database.Driver != config.DriverPostgres || len(c.Authentication.SecretKeys) == 0 || c.Authentication.SingleUser() {
			t.Fatalf("%s: replicas must be multi-user and share PostgreSQL and secret keys: %+v", r.name, c.Database)
		}
		if c.Database.InitIfNotExists {
			t.Errorf("%s migrates at start: the migrate service does that here", r.name)
		}
	}
}

// TestTracing: every replica exports to the Jaeger service over OTLP/HTTP,
// under one service name, each with its own service.instance.id.
func TestTracing(t *testing.T) {
	c := load(t)
	seen := map[string]string{}
	for _, r := range replicas(t, c) {
		env := r.svc.Environment
		u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		if err != nil || u.Scheme != "http" || u.Port() != "4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q is not OTLP/HTTP on 4318", r.name, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		} else if j, ok := c.Services[u.Hostname()]; !ok || !strings.HasPrefix(j.Image, "jaegertracing/jaeger:2.") {
			t.Errorf("%s: exports traces to %q, which is not the Jaeger v2 service", r.name, u.Hostname())
		} else if _, ok := r.svc.DependsOn[u.Hostname()]; !ok {
			t.Errorf("%s: does not start after %s", r.name, u.Hostname())
		}
		if env["OTEL_SERVICE_NAME"] != "tiled" {
			t.Errorf("%s: OTEL_SERVICE_NAME %q, want tiled on every replica", r.name, env["OTEL_SERVICE_NAME"])
		}
		var instance string
		for kv := range strings.SplitSeq(env["OTEL_RESOURCE_ATTRIBUTES"], ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "service.instance.id="); ok {
				instance = v
			}
		}
		if instance != r.name {
			t.Errorf("%s: service.instance.id %q, want the replica's name", r.name, instance)
		}
		if other, dup := seen[instance]; dup {
			t.Errorf("%s and %s share service.instance.id %q", r.name, other, instance)
		}
		seen[instance] = r.name
	}
}

// TestProxyUpstreams: nginx round-robins over exactly the replicas, on the
// port each listens on.
func TestProxyUpstreams(t *testing.T) {
	c := load(t)
	var want []string
	for _, r := range replicas(t, c) {
		want = append(want, net.JoinHostPort(r.name, strconv.Itoa(r.port)))
	}
	b, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	upstream := regexp.MustCompile(`(?s)upstream\s+(\S+)\s*\{(.*?)\}`).FindSubmatch(b)
	if upstream == nil {
		t.Fatal("nginx.conf has no upstream block")
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+(\S+?)(?:\s[^;]*)?;`).FindAllSubmatch(upstream[2], -1) {
		got = append(got, string(m[1]))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("nginx upstream %s has %v, want exactly the replicas %v", upstream[1], got, want)
	}
	if bytes.Contains(upstream[2], []byte("ip_hash")) || bytes.Contains(upstream[2], []byte("hash ")) || bytes.Contains(upstream[2], []byte("sticky")) {
		t.Error("the upstream is sticky: consecutive requests of one flow must be free to land on different replicas")
	}
	if !regexp.MustCompile(`(?m)^\s*zone\s+\S+\s+\S+;`).Match(upstream[2]) {
		t.Error("the upstream has no zone: each nginx worker would keep its own round-robin position")
	}
	if !regexp.MustCompile(`proxy_pass\s+http://` + regexp.QuoteMeta(string(upstream[1])) + `\s*;`).Match(b) {
		t.Errorf("nginx does not proxy_pass to upstream %s", upstream[1])
	}
	var proxy string
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			if strings.HasSuffix(strings.SplitN(v, ":", 2)[0], "/nginx.conf") {
				proxy = name
			}
		}
	}
	for _, r := range replicas(t, c) {
		if _, ok := c.Services[proxy].DependsOn[r.name]; !ok {
			t.Errorf("the proxy %q does not start after %s: nginx refuses an upstream host it cannot resolve", proxy, r.name)
		}
	}
}

// PrometheusConfig is the part of Prometheus's configuration used here,
// decoded strictly. (Prometheus's own config package would pull in every
// service-discovery client; its rule parser checks alerts.yml instead, in
// deploy/k8s.)
type PrometheusConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// TestPrometheusTargets: Prometheus scrapes exactly the replicas' metrics
// ports, as the job the alerts expect, and loads the alerts it is given.
func TestPrometheusTargets(t *testing.T) {
	c := load(t)
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p PrometheusConfig
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	var want, got []string
	for _, r := range replicas(t, c) {
		want = append(want, net.JoinHostPort(r.name, strconv.Itoa(r.metricsPort)))
	}
	for _, sc := range p.ScrapeConfigs {
		if sc.JobName != alertJob {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != metricsPath {
			t.Errorf("job %s scrapes %s, the listener serves %s", sc.JobName, sc.MetricsPath, metricsPath)
		}
		for _, st := range sc.StaticConfigs {
			got = append(got, st.Targets...)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Prometheus job %q scrapes %v, want exactly the replicas' metrics listeners %v", alertJob, got, want)
	}
	// Every rule file is mounted into the Prometheus container from a file
	// that exists.
	var prom Service
	for _, s := range c.Services {
		if strings.HasPrefix(s.Image, "prom/prometheus:") {
			prom = s
		}
	}
	mounts := map[string]string{}
	for _, v := range prom.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = parts[0]
		}
	}
	if _, ok := mounts["/etc/prometheus/prometheus.yml"]; !ok {
		t.Error("the Prometheus service does not mount prometheus.yml at /etc/prometheus/prometheus.yml")
	}
	if len(p.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no alerts")
	}
	for _, rf := range p.RuleFiles {
		src, ok := mounts[rf]
		if !ok {
			t.Errorf("prometheus.yml loads %s, which the Prometheus service does not mount", rf)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, src)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
}

// TestPublishedPorts: no two services publish the same host port.
func TestPublishedPorts(t *testing.T) {
	c := load(t)
	used := map[string]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			// [IP:]HOST:CONTAINER[/proto]; an address-less host port binds every interface.
			parts := strings.Split(strings.SplitN(p, "/", 2)[0], ":")
			if len(parts) < 2 {
				t.Errorf("%s: port %q publishes no fixed host port", name, p)
				continue
			}
			hostPort := parts[len(parts)-2]
			if _, err := strconv.Atoi(hostPort); err != nil {
				t.Errorf("%s: port %q: host port %q", name, p, hostPort)
			}
			if other, dup := used[hostPort]; dup {
				t.Errorf("%s and %s both publish host port %s", name, other, hostPort)
			}
			used[hostPort] = name
		}
	}
}

func ptr[T any](v T) *T { return &v }
