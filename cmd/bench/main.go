// Command bench is the load harness behind `make bench`: it starts
// PostgreSQL-backed replicas of the real server on loopback, drives them
// with concurrent HTTP clients, and reports every figure as a ratio to a
// baseline measured in the same run, on the same machine and database:
//
//   - authenticated GETs (access token, API key) against the public GET;
//   - refresh rotations against a raw single-row UPDATE ... RETURNING loop
//     through pgx with the same concurrency;
//   - logins with the dictionary provider;
//   - revocation propagation across three replicas (revoke on A, poll B and
//     C with the old token), with C's database connections, its listener's
//     among them, cut in the middle and restored;
//   - start to ready and idle RSS of one replica;
//   - refresh p99 with a small and a large sessions table;
//   - CPU profiles of the read and refresh paths (top functions).
//
// It prints a table, writes bench/results.json, and replaces the section
// between the markers in BENCHMARKS.md. Traffic goes to 127.0.0.1 only, and
// every loop is bounded in count and time.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tiledgo/server/internal/testing/oidcprovider"
	"github.com/tiledgo/server/internal/testing/tcpproxy"
)

type options struct {
	adminURL    string
	duration    time.Duration
	concurrency int
	rounds      int
	small, big  int
	out, md     string
	profile     bool
	tags        string
	bin         string
	skip        map[string]bool
	profiles    []string
	merge       bool
}

func main() {
	var o options
	flag.StringVar(&o.adminURL, "database", firstNonEmpty(os.Getenv("BENCH_DATABASE_URL"), os.Getenv("TEST_DATABASE_URL"),
		"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "admin URL of a PostgreSQL server (it must be allowed to CREATE DATABASE)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each load phase")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients (and raw UPDATE workers)")
	flag.IntVar(&o.rounds, "rounds", 200, "revocation propagation rounds")
	flag.IntVar(&o.small, "small", 1_000, "sessions in the table for the small growth point")
	flag.IntVar(&o.big, "big", 1_000_000, "sessions in the table for the large growth point")
	flag.StringVar(&o.out, "out", "bench/results.json", "where to write the JSON results")
	flag.StringVar(&o.md, "markdown", "BENCHMARKS.md", "file whose bench section is replaced (empty: none)")
	flag.BoolVar(&o.profile, "profile", true, "profile the read and refresh paths")
	flag.StringVar(&o.tags, "tags", os.Getenv("GOTAGS"), "build tags for the server")
	flag.StringVar(&o.bin, "bin", "", "a server binary to use instead of building one")
	flag.BoolVar(&o.merge, "merge", false, "keep the figures of the existing -out file that this run does not measure "+
		"(to run the phases in several shorter invocations)")
	profiles := flag.String("profiles", "read,refresh", "paths to profile when -profile is set: read (bearer GET), refresh, public, apikey")
	skip := flag.String("skip", "", "comma-separated phases to leave out: gets, refresh, logins, propagation, growth")
	flag.Parse()
	o.profiles = strings.Split(*profiles, ",")
	o.skip = map[string]bool{}
	for _, p := range strings.Split(*skip, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.skip[p] = true
		}
	}
	// Interrupted, it still stops its replicas and drops its database.
	sctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sctx, 10*time.Minute)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// commandLine is how this run was asked for, without -bin (a prebuilt
// server binary of the same tree changes no figure).
func commandLine(args []string) string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-bin" || a == "--bin":
			i++
		case strings.HasPrefix(a, "-bin=") || strings.HasPrefix(a, "--bin="):
		default:
			out = append(out, a)
		}
	}
	return strings.TrimSpace("go run ./cmd/bench " + strings.Join(out, " "))
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// results is bench/results.json.
type results struct {
	Command string `json:"command"`
	// Sources names, for each figure and profile, the command that measured
	// it (a -merge run keeps figures of earlier invocations).
	Sources  map[string]string  `json:"sources"`
	Date     string             `json:"date"`
	Machine  string             `json:"machine"`
	Settings map[string]any     `json:"settings"`
	Figures  map[string]float64 `json:"figures"`
	Profiles map[string]string  `json:"profiles,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

const (
	users = 100
	// rounds: measures compared with a baseline alternate in this many
	// slices, and their ratio is the median of the slices' ratios.
	rounds = 5
)

func run(ctx context.Context, o options) error {
	start := time.Now()
	res := &results{
		Command: commandLine(os.Args[1:]),
		Date:    start.UTC().Format("2006-01-02"),
		Machine: fmt.Sprintf("%d cores, %s, PostgreSQL on the same host", runtime.NumCPU(), runtime.Version()),
		Settings: map[string]any{"duration": o.duration.String(), "concurrency": o.concurrency, "rounds": o.rounds,
			"small": o.small, "big": o.big},
		Figures: map[string]float64{}, Profiles: map[string]string{},
	}
	res.Settings["load_average_before"] = loadAverage()
	work, err := os.MkdirTemp("", "tiledgo-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	bin := o.bin
	if bin == "" {
		bin = filepath.Join(work, "server")
		step("build the server")
		args := []string{"build", "-o", bin}
		if o.tags != "" {
			args = append(args, "-tags", o.tags)
		}
		if out, err := exec.CommandContext(ctx, "go", append(args, "./cmd/server")...).CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}

	dbURL, drop, err := createDatabase(ctx, o.adminURL)
	if err != nil {
		return err
	}
	defer drop()
	u, _ := url.Parse(dbURL)
	proxy, err := tcpproxy.New(u.Host)
	if err != nil {
		return err
	}
	defer proxy.Close()
	viaProxy := *u
	viaProxy.Host = proxy.Addr()

	// An OpenID Connect issuer for resource-server mode's external JWTs.
	issuer, err := oidcprovider.New(oidcprovider.Options{ClientID: "bench", ClientSecret: "bench-secret"})
	if err != nil {
		return err
	}
	defer issuer.Close()
	externalJWT := issuer.SignRS256(map[string]any{"iss": issuer.Issuer(), "sub": "bench-external-user",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})

	cfgPath := filepath.Join(work, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(issuer.Issuer())), 0o600); err != nil {
		return err
	}

	step("start replicas A, B, C (C's database traffic through a proxy the run cuts)")
	a, err := startReplica(ctx, bin, cfgPath, dbURL, work, "A", "")
	if err != nil {
		return err
	}
	defer a.stop()
	res.Figures["start_to_ready_ms"] = float64(a.ready.Microseconds()) / 1000
	b, err := startReplica(ctx, bin, cfgPath, dbURL, work, "B", "")
	if err != nil {
		return err
	}
	defer b.stop()
	c, err := startReplica(ctx, bin, cfgPath, viaProxy.String(), work, "C", "")
	if err != nil {
		return err
	}
	defer c.stop()
	time.Sleep(time.Second)
	res.Figures["idle_rss_mib"] = rssMiB(a.cmd.Process.Pid)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * o.concurrency, MaxConnsPerHost: 4 * o.concurrency},
		Timeout: 30 * time.Second}
	h := &harness{client: client, o: o}
	if _, ok := procCPU(a.cmd.Process.Pid); ok {
		h.serverCPU = func() (time.Duration, bool) { return procCPU(a.cmd.Process.Pid) }
	}

	// Credentials: one session per worker, one API key.
	step("log in the workers")
	sessionsOf := make([]tokenPair, o.concurrency)
	for i := range sessionsOf {
		if sessionsOf[i], err = h.login(a.url, fmt.Sprintf("user%d", i%users)); err != nil {
			return err
		}
	}
	apiKey, err := h.createKey(a.url, sessionsOf[0].Access)
	if err != nil {
		return err
	}

	path := "/api/v1/metadata/"
	get := func(auth func(int) string) func(int) (*http.Request, error) {
		return func(i int) (*http.Request, error) {
			r, err := http.NewRequest("GET", a.url+path, nil)
			if err == nil && auth != nil {
				r.Header.Set("Authorization", auth(i))
			}
			return r, err
		}
	}
	var public stats
	if !o.skip["gets"] {
		step("public, bearer, API-key and external-JWT GETs, alternating")
		var pubs, bearers, keyeds, externals []stats
		for range rounds {
			pubs = append(pubs, h.load(ctx, o.duration/rounds, get(nil), nil))
			bearers = append(bearers, h.load(ctx, o.duration/rounds, get(func(i int) string { return "Bearer " + sessionsOf[i].Access }), nil))
			keyeds = append(keyeds, h.load(ctx, o.duration/rounds, get(func(int) string { return "Apikey " + apiKey }), nil))
			externals = append(externals, h.load(ctx, o.duration/rounds, get(func(int) string { return "Bearer " + externalJWT }), nil))
		}
		var bearer, keyed, external stats
		public, bearer, keyed, external = merge(pubs), merge(bearers), merge(keyeds), merge(externals)
		res.Figures["external_get_rps"] = external.rps
		res.Figures["external_get_ratio"] = medianRatio(externals, pubs)
		res.Figures["public_get_rps"] = public.rps
		res.Figures["bearer_get_rps"] = bearer.rps
		res.Figures["apikey_get_rps"] = keyed.rps
		res.Figures["bearer_get_ratio"] = medianRatio(bearers, pubs)
		res.Figures["apikey_get_ratio"] = medianRatio(keyeds, pubs)
		if h.serverCPU != nil {
			res.Figures["public_get_cpu_us"] = float64(public.cpuPerRequest().Nanoseconds()) / 1000
			res.Figures["bearer_get_cpu_ratio"] = medianCPURatio(bearers, pubs)
			res.Figures["apikey_get_cpu_ratio"] = medianCPURatio(keyeds, pubs)
			res.Figures["external_get_cpu_ratio"] = medianCPURatio(externals, pubs)
		}
		if n := public.errors + bearer.errors + keyed.errors + external.errors; n > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("GETs: %d errors", n))
		}
	}

	pool, err := pgxpool.New(ctx, dbURL+"&pool_max_conns="+strconv.Itoa(o.concurrency))
	if err != nil {
		return err
	}
	defer pool.Close()
	if !o.skip["refresh"] {
		step("raw UPDATE ... RETURNING through pgx and refresh rotations, alternating")
		if err := rawTable(ctx, pool, o); err != nil {
			return err
		}
		var raws, refreshes []stats
		for range rounds {
			raws = append(raws, rawUpdates(ctx, o.duration/rounds, pool, o))
			refreshes = append(refreshes, h.refreshLoad(ctx, o.duration/rounds, a.url, sessionsOf))
		}
		raw, refresh := merge(raws), merge(refreshes)
		res.Figures["raw_update_tps"] = raw.rps
		res.Figures["raw_update_p50_ms"], res.Figures["raw_update_p99_ms"] = raw.p50, raw.p99
		res.Figures["refresh_rps"] = refresh.rps
		res.Figures["refresh_p50_ms"], res.Figures["refresh_p99_ms"] = refresh.p50, refresh.p99
		res.Figures["refresh_ratio"] = medianRatio(refreshes, raws)
		res.Figures["refresh_p50_ratio"] = raw.p50 / refresh.p50
		res.Figures["refresh_p99_ratio"] = raw.p99 / refresh.p99
		if refresh.errors > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("refresh: %d errors", refresh.errors))
		}
	}

	if !o.skip["logins"] {
		step("logins (dictionary provider)")
		var n atomic.Int64
		logins := h.load(ctx, o.duration, func(int) (*http.Request, error) {
			form := url.Values{"username": {fmt.Sprintf("user%d", n.Add(1)%users)}, "password": {"secret"}}
			r, err := http.NewRequest("POST", a.url+"/api/v1/auth/provider/dict/token", strings.NewReader(form.Encode()))
			if err == nil {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			return r, err
		}, nil)
		res.Figures["logins_per_s"] = logins.rps
		if public.rps > 0 {
			res.Figures["logins_ratio"] = logins.rps / public.rps
		}
	}

	if !o.skip["propagation"] {
		step("revocation propagation (C's connections cut halfway)")
		prop, slowest, err := h.propagation(ctx, a, b, c, proxy)
		if err != nil {
			return err
		}
		res.Notes = append(res.Notes, "slowest revocation propagations: "+strings.Join(slowest, "; "))
		// The cut must have reached C's listener: its log says so.
		logC, _ := os.ReadFile(filepath.Join(work, "replica-C.log"))
		res.Notes = append(res.Notes, fmt.Sprintf("replica C's listener: lost sync with the revocation log %d time(s) during the run (from its log)",
			strings.Count(string(logC), "authentication cache out of sync")))
		res.Figures["revocation_p50_ms"], res.Figures["revocation_p99_ms"], res.Figures["revocation_max_ms"] = prop.p50, prop.p99, prop.max
		res.Figures["revocation_p99_ratio_to_100ms"] = prop.p99 / 100
	}

	if !o.skip["growth"] {
		step(fmt.Sprintf("growth: refresh with %d, then %d sessions", o.small, o.big))
		if err := fillSessions(ctx, pool, o.small); err != nil {
			return err
		}
		small := h.refreshLoad(ctx, o.duration, a.url, sessionsOf)
		if err := fillSessions(ctx, pool, o.big); err != nil {
			return err
		}
		big := h.refreshLoad(ctx, o.duration, a.url, sessionsOf)
		res.Figures["growth_small_p99_ms"], res.Figures["growth_big_p99_ms"] = small.p99, big.p99
		res.Figures["growth_p99_ratio"] = big.p99 / small.p99
		res.Figures["growth_small_sessions"], res.Figures["growth_big_sessions"] = float64(o.small), float64(o.big)
	}

	if o.profile {
		kinds := map[string]string{"read": "bearer", "refresh": "refresh", "public": "public", "apikey": "apikey"}
		for _, name := range o.profiles {
			p := struct{ name, kind string }{name, kinds[name]}
			if p.kind == "" {
				return fmt.Errorf("-profiles: unknown path %q (read, refresh, public, apikey)", name)
			}
			step("profile the " + p.name + " path")
			top, err := h.profile(ctx, bin, cfgPath, dbURL, work, p.kind)
			if err != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("profile %s: %v", p.name, err))
				continue
			}
			res.Profiles[p.name] = top
		}
	}
	res.Settings["elapsed"] = time.Since(start).Round(time.Second).String()
	res.Settings["load_average_after"] = loadAverage()
	return report(res, o)
}

var began = time.Now()

func step(s string) {
	fmt.Fprintf(os.Stderr, "bench: %5.1fs %s\n", time.Since(began).Seconds(), s)
}

// configYAML is a multi-user server with public reads (so the public GET
// and the authenticated ones hit the same handler), a dictionary provider
// and shared token keys, as replicas behind a load balancer have.
func configYAML(issuer string) string {
	var b strings.Builder
	b.WriteString(`authentication:
  allow_anonymous_access: true
  secret_keys: ["bench-secret-key-shared-by-every-replica"]
  providers:
    - provider: dict
      authenticator: tiled.authenticators:DictionaryAuthenticator
      args:
        users_to_passwords:
`)
	for i := range users {
		fmt.Fprintf(&b, "          user%d: secret\n", i)
	}
	b.WriteString(`database:
  uri: ${BENCH_REPLICA_DATABASE_URI}
  init_if_not_exists: true
  pool_size: 10
  max_overflow: 10
trees:
  - path: /
    tree: tiled.examples.generated_minimal:tree
auth:
  enabled: true
  issuer: ` + issuer + `
  algorithms: [RS256]
`)
	return b.String()
}

func createDatabase(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("tiledgo_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	if u.RawQuery == "" {
		u.RawQuery = "sslmode=disable"
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(dctx, admin); err == nil {
			_, _ = c.Exec(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(dctx)
		}
	}
	return u.String(), drop, nil
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "the database"
}

type replica struct {
	name, url string
	cmd       *exec.Cmd
	ready     time.Duration
	done      chan struct{}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startReplica starts the server and waits until /readyz answers 200.
func startReplica(ctx context.Context, bin, cfg, db, dir, name, profile string) (*replica, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "replica-"+name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "config", cfg, "--port", strconv.Itoa(port), "--log-level", "warn",
		"--drain-delay", "0s")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "OTEL_SDK_DISABLED=true", "BENCH_REPLICA_DATABASE_URI="+db)
	if profile != "" {
		cmd.Env = append(cmd.Env, "TILED_CPU_PROFILE="+profile)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &replica{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(r.done) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(dir, "replica-"+name+".log"))
			return nil, fmt.Errorf("replica %s exited:\n%s", name, log)
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("replica %s not ready after 30s", name)
		}
	}
	r.ready = time.Since(t0)
	return r, nil
}

// stop sends SIGTERM and waits for the process to finish.
func (r *replica) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// loadAverage is the machine's 1-minute load average: the figures are
// ratios because other work on the machine moves absolute ones.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// procCPU is the CPU time (user + system, every thread) process pid has
// used, from /proc/PID/stat, in clock ticks of 10 ms (USER_HZ is 100 on
// Linux whatever the kernel's HZ). ok is false where /proc is not there.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

type harness struct {
	client *http.Client
	o      options
	// serverCPU reads the CPU time the replica under load has used so far
	// (user + system, all threads); nil where it cannot be read.
	serverCPU func() (time.Duration, bool)
}

type tokenPair struct{ Access, Refresh string }

func (h *harness) post(u string, body io.Reader, contentType, bearer string, out any) error {
	r, err := http.NewRequest("POST", u, body)
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", contentType)
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := h.client.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (h *harness) login(base, user string) (tokenPair, error) {
	var t struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	form := url.Values{"username": {user}, "password": {"secret"}}
	err := h.post(base+"/api/v1/auth/provider/dict/token", strings.NewReader(form.Encode()),
		"application/x-www-form-urlencoded", "", &t)
	return tokenPair{t.Access, t.Refresh}, err
}

func (h *harness) createKey(base, access string) (string, error) {
	var k struct {
		Secret string `json:"secret"`
	}
	err := h.post(base+"/api/v1/auth/apikey", strings.NewReader(`{"scopes": ["inherit"]}`), "application/json", access, &k)
	return k.Secret, err
}

// stats summarizes one phase.
type stats struct {
	rps, p50, p99, max float64 // p50/p99/max in milliseconds
	ok, errors         int
	lat                []time.Duration
	elapsed            time.Duration
	// cpu is the server's CPU time over the measured window (0: unknown).
	cpu time.Duration
}

// cpuPerRequest is the server's CPU time per request answered.
func (s stats) cpuPerRequest() time.Duration {
	if s.ok == 0 {
		return 0
	}
	return s.cpu / time.Duration(s.ok)
}

// merge summarizes several slices of one measure together.
func merge(ss []stats) stats {
	var lat []time.Duration
	var elapsed, cpu time.Duration
	errs := 0
	for _, s := range ss {
		lat = append(lat, s.lat...)
		elapsed += s.elapsed
		errs += s.errors
		cpu += s.cpu
	}
	out := summarize(lat, elapsed, errs)
	out.cpu = cpu
	return out
}

// medianCPURatio is the median over slices of den's server CPU per request
// divided by num's: 1 means num costs the server what the baseline does,
// 0.5 twice as much. Unlike the throughput ratio it leaves out the load
// generator, which shares this machine's two cores with the server and
// pays for larger requests (a bearer token's 800 bytes) too.
func medianCPURatio(num, den []stats) float64 {
	var rs []float64
	for i := range num {
		if n, d := num[i].cpuPerRequest(), den[i].cpuPerRequest(); n > 0 && d > 0 {
			rs = append(rs, float64(d)/float64(n))
		}
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	return rs[len(rs)/2]
}

// medianRatio is the median over slices of num[i].rps / den[i].rps: the
// slices of the two measures alternate, so load from elsewhere on the
// machine weighs on both alike.
func medianRatio(num, den []stats) float64 {
	var rs []float64
	for i := range num {
		if den[i].rps > 0 {
			rs = append(rs, num[i].rps/den[i].rps)
		}
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	return rs[len(rs)/2]
}

// warmUp is the start of each slice that is not measured.
func warmUp(d time.Duration) time.Duration { return min(d/10, 200*time.Millisecond) }

func summarize(lat []time.Duration, elapsed time.Duration, errs int) stats {
	slices.Sort(lat)
	s := stats{ok: len(lat), errors: errs, lat: lat, elapsed: elapsed}
	if elapsed > 0 {
		s.rps = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) > 0 {
		pct := func(p float64) float64 {
			i := int(p * float64(len(lat)-1))
			return float64(lat[i].Microseconds()) / 1000
		}
		s.p50, s.p99, s.max = pct(0.50), pct(0.99), float64(lat[len(lat)-1].Microseconds())/1000
	}
	return s
}

// load runs o.concurrency clients for o.duration, each sending the request
// mk builds (worker index given) and expecting 200; check may inspect it.
func (h *harness) load(ctx context.Context, d time.Duration, mk func(worker int) (*http.Request, error), check func(*http.Response) error) stats {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	// A short warm-up fills connection pools and caches.
	warm := time.Now().Add(warmUp(d))
	end := warm.Add(d)
	var cpu time.Duration
	if h.serverCPU != nil {
		wg.Go(func() {
			time.Sleep(time.Until(warm))
			before, ok1 := h.serverCPU()
			time.Sleep(time.Until(end))
			if after, ok2 := h.serverCPU(); ok1 && ok2 {
				mu.Lock()
				cpu = after - before
				mu.Unlock()
			}
		})
	}
	for w := range h.o.concurrency {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for now := time.Now(); now.Before(end) && ctx.Err() == nil; now = time.Now() {
				r, err := mk(w)
				if err != nil {
					bad++
					continue
				}
				t := time.Now()
				resp, err := h.client.Do(r)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					} else if check != nil {
						err = check(resp)
					}
				}
				d := time.Since(t)
				if t.Before(warm) {
					continue
				}
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	out := summarize(lat, d, errs)
	out.cpu = cpu
	return out
}

// refreshLoad has each worker rotate its own session's refresh token.
func (h *harness) refreshLoad(ctx context.Context, d time.Duration, base string, ss []tokenPair) stats {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	warm := time.Now().Add(warmUp(d))
	end := warm.Add(d)
	for w := range ss {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for now := time.Now(); now.Before(end) && ctx.Err() == nil; now = time.Now() {
				body, _ := json.Marshal(map[string]string{"refresh_token": ss[w].Refresh})
				var t struct {
					Access  string `json:"access_token"`
					Refresh string `json:"refresh_token"`
				}
				t0 := time.Now()
				err := h.post(base+"/api/v1/auth/session/refresh", bytes.NewReader(body), "application/json", "", &t)
				d := time.Since(t0)
				if err != nil {
					bad++
					if nt, lerr := h.login(base, fmt.Sprintf("user%d", w%users)); lerr == nil {
						ss[w] = nt
					}
					continue
				}
				ss[w] = tokenPair{t.Access, t.Refresh}
				if t0.After(warm) {
					mine = append(mine, d)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	return summarize(lat, d, errs)
}

// rawUpdates is the baseline of the refresh rotation: each worker updates
// its own row by primary key, returning it, through pgx, as the server's
// rotation does (a new hash, a generation, a time).
func rawTable(ctx context.Context, pool *pgxpool.Pool, o options) error {
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_raw (id int PRIMARY KEY, hash bytea NOT NULL,
		generation bigint NOT NULL, rotated_at timestamptz)`); err != nil {
		return err
	}
	_, err := pool.Exec(ctx, `INSERT INTO bench_raw SELECT g, '\x00', 0, now() FROM generate_series(0, $1) g`, o.concurrency)
	return err
}

func rawUpdates(ctx context.Context, d time.Duration, pool *pgxpool.Pool, o options) stats {
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	warm := time.Now().Add(warmUp(d))
	end := warm.Add(d)
	var failed atomic.Int64
	for w := range o.concurrency {
		wg.Go(func() {
			var mine []time.Duration
			hash := make([]byte, 32)
			for now := time.Now(); now.Before(end) && ctx.Err() == nil; now = time.Now() {
				hash[0]++
				var gen int64
				t0 := time.Now()
				err := pool.QueryRow(ctx, `UPDATE bench_raw SET hash = $2, generation = generation + 1, rotated_at = $3
					WHERE id = $1 RETURNING generation`, w, hash, t0).Scan(&gen)
				d := time.Since(t0)
				if err != nil {
					failed.Add(1)
					continue
				}
				if t0.After(warm) {
					mine = append(mine, d)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return summarize(lat, d, int(failed.Load()))
}

// propagation measures, over o.rounds sessions, how long after a revocation
// on A returns B and C refuse the session's access token. Halfway, every
// connection between C and the database (its listener's too) is reset;
// they reconnect by themselves.
func (h *harness) propagation(ctx context.Context, a, b, c *replica, proxy *tcpproxy.Proxy) (stats, []string, error) {
	var lat []time.Duration
	type sample struct {
		d       time.Duration
		round   int
		replica string
	}
	var samples []sample
	status := func(base, access string) (int, error) {
		r, _ := http.NewRequest("GET", base+"/api/v1/metadata/", nil)
		r.Header.Set("Authorization", "Bearer "+access)
		resp, err := h.client.Do(r)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for i := range h.o.rounds {
		if i == h.o.rounds/2 {
			proxy.Reset()
		}
		t, err := h.login(a.url, fmt.Sprintf("user%d", i%users))
		if err != nil {
			return stats{}, nil, err
		}
		for _, r := range []*replica{b, c} {
			// C may be reconnecting: it answers from the database meanwhile.
			for tries := 0; ; tries++ {
				code, err := status(r.url, t.Access)
				if err == nil && code == 200 {
					break
				}
				if tries > 200 {
					return stats{}, nil, fmt.Errorf("replica %s does not accept a fresh token: %d %v", r.name, code, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		body, _ := json.Marshal(map[string]string{"refresh_token": t.Refresh})
		if err := h.post(a.url+"/api/v1/auth/session/revoke", bytes.NewReader(body), "application/json", "", nil); err != nil {
			return stats{}, nil, err
		}
		revoked := time.Now()
		for _, r := range []*replica{b, c} {
			for {
				code, err := status(r.url, t.Access)
				if err == nil && code == 401 {
					d := time.Since(revoked)
					lat = append(lat, d)
					samples = append(samples, sample{d, i, r.name})
					break
				}
				if time.Since(revoked) > 30*time.Second || ctx.Err() != nil {
					return stats{}, nil, fmt.Errorf("replica %s still accepts a token revoked 30s ago", r.name)
				}
			}
		}
	}
	slices.SortFunc(samples, func(x, y sample) int { return int(y.d - x.d) })
	var slowest []string
	for _, s := range samples[:min(5, len(samples))] {
		slowest = append(slowest, fmt.Sprintf("%s in round %d (cut before round %d): %.1f ms",
			s.replica, s.round, h.o.rounds/2, float64(s.d.Microseconds())/1000))
	}
	return summarize(lat, 0, 0), slowest, nil
}

// fillSessions tops the sessions table up to n rows (sessions of a
// principal nobody uses, so the workers' sessions stay where they are).
func fillSessions(ctx context.Context, pool *pgxpool.Pool, n int) error {
	var have int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&have); err != nil {
		return err
	}
	if have >= n {
		return nil
	}
	var pid string
	err := pool.QueryRow(ctx, `INSERT INTO principals (id, type, created_at) VALUES (gen_random_uuid(), 'user', now()) RETURNING id`).Scan(&pid)
	if err != nil {
		return err
	}
	for have < n {
		batch := min(n-have, 200_000)
		if _, err := pool.Exec(ctx, `INSERT INTO sessions (id, principal_id, created_at, refresh_expires_at, refresh_hash, last_used_at)
			SELECT gen_random_uuid(), $1, now(), now() + interval '7 days', sha256(g::text::bytea), now()
			FROM generate_series(1, $2) g`, pid, batch); err != nil {
			return err
		}
		have += batch
	}
	_, err = pool.Exec(ctx, `ANALYZE sessions`)
	return err
}

// profile starts a replica that writes a CPU profile, loads one path for
// o.duration, stops it, and returns pprof's top functions.
func (h *harness) profile(ctx context.Context, bin, cfg, db, dir, kind string) (string, error) {
	prof := filepath.Join(dir, kind+".pprof")
	r, err := startReplica(ctx, bin, cfg, db, dir, "profile-"+kind, prof)
	if err != nil {
		return "", err
	}
	ss := make([]tokenPair, h.o.concurrency)
	for i := range ss {
		if ss[i], err = h.login(r.url, fmt.Sprintf("user%d", i%users)); err != nil {
			r.stop()
			return "", err
		}
	}
	switch kind {
	case "public":
		h.load(ctx, h.o.duration, func(int) (*http.Request, error) {
			return http.NewRequest("GET", r.url+"/api/v1/metadata/", nil)
		}, nil)
	case "apikey":
		key, err := h.createKey(r.url, ss[0].Access)
		if err != nil {
			r.stop()
			return "", err
		}
		h.load(ctx, h.o.duration, func(int) (*http.Request, error) {
			req, err := http.NewRequest("GET", r.url+"/api/v1/metadata/", nil)
			if err == nil {
				req.Header.Set("Authorization", "Apikey "+key)
			}
			return req, err
		}, nil)
	case "bearer":
		h.load(ctx, h.o.duration, func(i int) (*http.Request, error) {
			req, err := http.NewRequest("GET", r.url+"/api/v1/metadata/", nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+ss[i].Access)
			}
			return req, err
		}, nil)
	case "refresh":
		h.refreshLoad(ctx, h.o.duration, r.url, ss)
	}
	r.stop()
	if keep := os.Getenv("BENCH_KEEP_PROFILES"); keep != "" {
		_ = os.MkdirAll(keep, 0o755)
		if data, err := os.ReadFile(prof); err == nil {
			_ = os.WriteFile(filepath.Join(keep, kind+".pprof"), data, 0o644)
		}
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=200", bin, prof).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	// The summary, the header, and the heaviest frames (cumulative) of the
	// server's own code and of what it calls for this path (JWT, JSON,
	// hashing, pgx, the HTTP server's reads and writes); the runtime and
	// the middleware chain's pass-through frames say nothing about the path.
	interesting := []string{"tiledgo/server", "golang-jwt", "encoding/json", "crypto/", "pgx", "pgconn",
		"net/http.(*conn).readRequest", "net/http.(*response).finishRequest", "runtime.mallocgc", "runtime.gcBgMarkWorker"}
	var keep []string
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Duration:") || strings.Contains(line, "flat%"):
			keep = append(keep, line)
		case n < 20 && slices.ContainsFunc(interesting, func(s string) bool { return strings.Contains(line, s) }) &&
			!strings.Contains(line, "internal/http/api.(*Server)") && !strings.Contains(line, ".func1"):
			keep = append(keep, line)
			n++
		}
	}
	return strings.Join(keep, "\n"), nil
}

type row struct{ key, name, value, ratio, target string }

func table(res *results) []row {
	f := res.Figures
	ms := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + " ms" }
	n := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	x := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "x" }
	us := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " µs" }
	rows := []row{
		{"public_get_rps", "public `GET /api/v1/metadata/` (baseline)", n(f["public_get_rps"]) + " req/s", "1", ""},
		{"bearer_get_rps", "bearer GET (access token)", n(f["bearer_get_rps"]) + " req/s", x(f["bearer_get_ratio"]) + " public", ">= 0.9"},
		{"apikey_get_rps", "API-key GET", n(f["apikey_get_rps"]) + " req/s", x(f["apikey_get_ratio"]) + " public", ">= 0.85"},
		{"external_get_rps", "external bearer JWT GET (RS256, resource-server mode)", n(f["external_get_rps"]) + " req/s", x(f["external_get_ratio"]) + " public", ""},
		{"bearer_get_cpu_ratio", "bearer GET, server CPU per request (public: " + us(f["public_get_cpu_us"]) + ")", "", x(f["bearer_get_cpu_ratio"]) + " public", ">= 0.9"},
		{"apikey_get_cpu_ratio", "API-key GET, server CPU per request", "", x(f["apikey_get_cpu_ratio"]) + " public", ">= 0.85"},
		{"external_get_cpu_ratio", "external bearer JWT GET, server CPU per request", "", x(f["external_get_cpu_ratio"]) + " public", ""},
		{"raw_update_tps", "raw `UPDATE ... RETURNING` by primary key, pgx (baseline)", n(f["raw_update_tps"]) + " tx/s, p50 " +
			ms(f["raw_update_p50_ms"]) + ", p99 " + ms(f["raw_update_p99_ms"]), "1", ""},
		{"refresh_rps", "refresh rotations", n(f["refresh_rps"]) + " /s, p50 " + ms(f["refresh_p50_ms"]) + ", p99 " + ms(f["refresh_p99_ms"]),
			x(f["refresh_ratio"]) + " raw (p50 " + x(f["refresh_p50_ratio"]) + ", p99 " + x(f["refresh_p99_ratio"]) + ")", ">= 0.35, aim 0.5"},
		{"logins_per_s", "logins (dictionary provider)", n(f["logins_per_s"]) + " /s", x(f["logins_ratio"]) + " public", ""},
		{"revocation_p50_ms", "revocation propagation to B and C, C's connections cut halfway", "p50 " + ms(f["revocation_p50_ms"]) + ", p99 " +
			ms(f["revocation_p99_ms"]) + ", max " + ms(f["revocation_max_ms"]), x(f["revocation_p99_ratio_to_100ms"]) + " of 100 ms (p99)", "p99 <= 100 ms"},
		{"start_to_ready_ms", "start to ready, one replica", ms(f["start_to_ready_ms"]), "", ""},
		{"idle_rss_mib", "idle RSS, one replica", strconv.FormatFloat(f["idle_rss_mib"], 'f', 1, 64) + " MiB", "", ""},
		{"growth_small_p99_ms", "refresh p99 with " + n(f["growth_small_sessions"]) + " / " + n(f["growth_big_sessions"]) + " sessions in the table", ms(f["growth_small_p99_ms"]) + " / " + ms(f["growth_big_p99_ms"]),
			x(f["growth_p99_ratio"]), "<= 1.2"},
	}
	var out []row
	for _, r := range rows {
		if _, ok := f[r.key]; ok {
			out = append(out, r)
		}
	}
	return out
}

const (
	markStart = "<!-- bench:start -->"
	markEnd   = "<!-- bench:end -->"
)

func report(res *results, o options) error {
	res.Sources = map[string]string{}
	for k := range res.Figures {
		res.Sources[k] = res.Command
	}
	for k := range res.Profiles {
		res.Sources["profile_"+k] = res.Command
	}
	if o.merge && o.out != "" {
		if data, err := os.ReadFile(o.out); err == nil {
			var old results
			if err := json.Unmarshal(data, &old); err != nil {
				return fmt.Errorf("%s: %w", o.out, err)
			}
			for k, v := range old.Figures {
				if _, ok := res.Figures[k]; !ok {
					res.Figures[k], res.Sources[k] = v, old.Sources[k]
				}
			}
			for k, v := range old.Profiles {
				if _, ok := res.Profiles[k]; !ok {
					res.Profiles[k], res.Sources["profile_"+k] = v, old.Sources["profile_"+k]
				}
			}
			// A note is kept unless this run wrote one on the same subject
			// (the words before its colon).
			subject := func(n string) string { sub, _, _ := strings.Cut(n, ":"); return sub }
			for _, n := range old.Notes {
				if !slices.ContainsFunc(res.Notes, func(m string) bool { return subject(m) == subject(n) }) {
					res.Notes = append(res.Notes, n)
				}
			}
		}
	}
	var md strings.Builder
	var cmdList []string
	for _, c := range res.Sources {
		if c != "" && !slices.Contains(cmdList, c) {
			cmdList = append(cmdList, c)
		}
	}
	slices.Sort(cmdList)
	cmds := strings.Join(cmdList, "\n")
	fmt.Fprintf(&md, "%s\n## Load harness (%s)\n\nMachine: %s. Made by:\n\n```sh\n%s\n```\n\n", markStart, res.Date, res.Machine, cmds)
	fmt.Fprintf(&md, "%d clients; compared measures alternate in %d slices and a ratio is the median of the slices' "+
		"ratios; %d propagation rounds. The last invocation took %s, 1-minute load average %s before and %s after "+
		"(the machine is shared with other work).\n\n",
		o.concurrency, rounds, o.rounds, res.Settings["elapsed"], res.Settings["load_average_before"], res.Settings["load_average_after"])
	md.WriteString("| measure | figure | ratio to its baseline | target |\n| --- | ---: | ---: | ---: |\n")
	for _, r := range table(res) {
		fmt.Fprintf(&md, "| %s | %s | %s | %s |\n", r.name, r.value, r.ratio, r.target)
	}
	for _, note := range res.Notes {
		fmt.Fprintf(&md, "\nNote: %s\n", note)
	}
	for _, name := range slices.Sorted(maps.Keys(res.Profiles)) {
		if p, ok := res.Profiles[name]; ok {
			fmt.Fprintf(&md, "\nCPU profile of the %s path (one replica under the same load; `go tool pprof -top -cum`, the heaviest frames of the path):\n\n```\n%s\n```\n", name, p)
		}
	}
	md.WriteString(markEnd + "\n")
	fmt.Println(strings.TrimSpace(strings.TrimPrefix(strings.TrimSuffix(md.String(), markEnd+"\n"), markStart)))

	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.md == "" {
		return nil
	}
	old, err := os.ReadFile(o.md)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, markStart), strings.Index(s, markEnd)
	if i < 0 || j < i {
		return errors.New(o.md + ": no " + markStart + " ... " + markEnd + " section to replace")
	}
	s = s[:i] + md.String() + s[j+len(markEnd)+1:]
	return os.WriteFile(o.md, []byte(s), 0o644)
}
