// Package e2e is the black-box end-to-end suite: it builds the real server
// binary once, starts it on free loopback ports in its different modes and
// drives it over HTTP, comparing what it answers with the specification and
// with exchanges recorded from real Tiled (testdata/captures).
//
//	go test -race -count=1 ./test/e2e/
//
// E2E_SERVER_BIN=path runs the suite against a binary built elsewhere
// instead of building ./cmd/server (the version checks then fail unless it
// was linked with the values in buildVersion and buildCommit), and
// E2E_BUILD_TAGS=tags builds it with those tags (.ci/run runs the suite once
// more with E2E_BUILD_TAGS=nopam, so that a binary without PAM is tested).
// The suite asks the binary (`server version`) whether it can use PAM on
// this host and tests PAM logins, or PAM's refusal at start, accordingly.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds the wait for /healthz after a start; a -race build
	// on two busy cores needs a few seconds at most.
	readyTimeout = 30 * time.Second
	// killAfter is how long a server may take to stop after SIGTERM (its
	// drain delay and graceful shutdown) before it is killed.
	killAfter = 20 * time.Second
	// outputTimeout bounds the wait for a line the server prints at start.
	outputTimeout = 10 * time.Second
	// Linked into the binary so that `server version` and /version can be
	// checked against known values (the Makefile's LDFLAGS contract).
	buildVersion = "e2e-0.0.1"
	buildCommit  = "e2ec0ffee"
)

// suite is set once by TestMain, before any test runs, and only read after.
var suite *harness

// harness is what every test shares: the binary and the reaper of servers.
type harness struct {
	root     string // module root
	bin      string // built server binary
	buildErr error  // why the binary could not be built, reported by every test
	// noPAM is why the binary cannot use PAM on this host ("" if it can),
	// as `server version` says it.
	noPAM  string
	reaper reaper
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tiled-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	h := &harness{}
	h.root, h.buildErr = moduleRoot()
	if bin := os.Getenv("E2E_SERVER_BIN"); bin != "" {
		h.bin = bin
	} else if h.buildErr == nil {
		h.bin, h.buildErr = buildServer(h.root, dir)
	}
	if h.buildErr == nil {
		h.noPAM, h.buildErr = pamSupport(h.bin)
	}
	if h.buildErr != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot build the server; every test that needs it fails:\n", h.buildErr)
	}
	suite = h
	code := m.Run()
	if problems := h.reaper.wait(); len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "e2e: servers that did not stop cleanly on SIGTERM:")
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, p)
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// moduleRoot is two levels up from this package (test/e2e).
func moduleRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root not found: %w", err)
	}
	return root, nil
}

// buildServer builds ./cmd/server, with the race detector when this test
// binary has it, so that races inside the server fail the suite too.
func buildServer(root, dir string) (string, error) {
	bin := filepath.Join(dir, "server")
	args := []string{"build", "-o", bin,
		"-ldflags", "-X github.com/tiledgo/server/internal/version.version=" + buildVersion +
			" -X github.com/tiledgo/server/internal/version.commit=" + buildCommit}
	if raceEnabled {
		args = append(args, "-race")
	}
	if tags := os.Getenv("E2E_BUILD_TAGS"); tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "./cmd/server")
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go tool not found: %w", err)
	}
	cmd := exec.Command(goTool, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return bin, nil
}

// pamSupport asks the binary whether it can use PAM here: "" if it can,
// else its reason (the line `server version` prints after "pam: ").
func pamSupport(bin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", bin, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "pam: "); ok {
			if v == "available" {
				return "", nil
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("%s version does not say whether PAM is available:\n%s", bin, out)
}

// serverBinary returns the server binary or fails the test with the build error.
func serverBinary(t *testing.T) string {
	t.Helper()
	if suite.buildErr != nil {
		t.Fatal("server binary not built (the build output is printed once, before the tests)")
	}
	return suite.bin
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one running server process.
type server struct {
	name   string // test name, for messages printed after the test ended
	port   int
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // exit error, set before exited is closed
}

// output is everything the process printed, stdout first.
func (s *server) output() string {
	return s.stdout.String() + s.stderr.String()
}

// running reports whether the process has not exited yet.
func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// serverEnv is the environment of a started process: this process's, minus
// the variables that would change the server's behaviour (TILED_*, OTEL_*),
// plus extra ("NAME=value").
func serverEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TILED_") || strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "GORACE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, withGORACE(extra)...)
}

// withGORACE turns off the race runtime's one-second sleep at exit (unless
// the caller chose GORACE options), which would otherwise be paid by every
// command and every stopped server; races are still reported.
func withGORACE(env []string) []string {
	if _, ok := os.LookupEnv("GORACE"); ok {
		return append(env, "GORACE="+os.Getenv("GORACE"))
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}

// freePort asks the kernel for a free loopback port and releases it for
// the server to take.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("free port: %v", err)
	}
	return port
}

var addrInUse = regexp.MustCompile(`(?i)address already in use`)

// startServer runs `server serve ARGS... --host 127.0.0.1 --port N` with
// extra environment variables env ("NAME=value"), waits until /healthz
// answers 200, and stops the process when the test ends. A port taken by
// someone else between choosing and binding it is retried.
func startServer(t *testing.T, args []string, env ...string) *server {
	t.Helper()
	bin := serverBinary(t)
	var s *server
	for attempt := 0; attempt < 3; attempt++ {
		s = launch(t, bin, args, env)
		err := waitReady(s)
		if err == nil {
			return s
		}
		if !s.running() && addrInUse.MatchString(s.output()) {
			continue
		}
		t.Fatalf("server %v did not become ready: %v\n%s", args, err, s.output())
	}
	t.Fatalf("server %v: no free port after 3 attempts\n%s", args, s.output())
	return nil
}

func launch(t *testing.T, bin string, args, env []string) *server {
	t.Helper()
	return launchOn(t, bin, freePort(t), args, env)
}

// launchOn starts the server on a port chosen beforehand (tests that must
// name the server's URL before it starts, such as OIDC redirect URIs).
func launchOn(t *testing.T, bin string, port int, args, env []string) *server {
	t.Helper()
	full := append([]string{"serve"}, args...)
	full = append(full, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	s := &server{
		name:   t.Name(),
		port:   port,
		base:   "http://127.0.0.1:" + strconv.Itoa(port),
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	s.cmd = exec.Command(bin, full...)
	s.cmd.Env = serverEnv(env)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.cmd.SysProcAttr = childProcAttr()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", bin, full, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		// A -race server reports a race on its stderr and carries on.
		if strings.Contains(s.output(), "WARNING: DATA RACE") {
			t.Errorf("the server reported a data race")
		}
		if t.Failed() {
			t.Logf("output of server %v (port %d):\n%s", full, port, s.output())
		}
		suite.reaper.stop(s)
	})
	return s
}

// waitReady polls /healthz until it answers 200, the process exits, or
// readyTimeout passes.
func waitReady(s *server) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("process exited: %v", s.err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 from /healthz within %s (last error %v)", readyTimeout, err)
		}
	}
}

// waitOutput polls the server's output until re matches, or fails the test
// after outputTimeout. Lines printed at start may reach the pipe after the
// server already answers /healthz.
func (s *server) waitOutput(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(outputTimeout)
	for {
		out := s.output()
		if m := re.FindStringSubmatch(out); m != nil {
			return m
		}
		if time.Now().After(deadline) || !s.running() {
			t.Fatalf("server output never matched %q:\n%s", re, out)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline above
	}
}

// stopAndWait stops the server now (SIGTERM, SIGKILL after killAfter) and
// returns once the process and its output pipes are closed, so that the
// output is complete.
func (s *server) stopAndWait(t *testing.T) {
	t.Helper()
	suite.reaper.stop(s)
	select {
	case <-s.exited:
	case <-time.After(killAfter + 5*time.Second):
		t.Fatalf("server did not exit")
	}
}

// reaper stops servers in the background, so that their drain delays
// overlap the other tests, and reports the ones that did not stop cleanly.
type reaper struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	stopped  map[*server]bool
	problems []string
}

func (r *reaper) stop(s *server) {
	r.mu.Lock()
	if r.stopped == nil {
		r.stopped = map[*server]bool{}
	}
	if r.stopped[s] {
		r.mu.Unlock()
		return
	}
	r.stopped[s] = true
	r.mu.Unlock()
	if !s.running() {
		return // exited on its own: the test that started it saw why
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		timer := time.NewTimer(killAfter)
		defer timer.Stop()
		select {
		case <-s.exited:
			if s.err != nil {
				r.problem(fmt.Sprintf("%s: %s exited with %v after SIGTERM\n%s", s.name, s.base, s.err, s.output()))
			}
		case <-timer.C:
			_ = s.cmd.Process.Kill()
			<-s.exited
			r.problem(fmt.Sprintf("%s: %s still running %s after SIGTERM; killed\n%s", s.name, s.base, killAfter, s.output()))
		}
	}()
}

func (r *reaper) problem(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, p)
}

// wait blocks until every stopped server has exited.
func (r *reaper) wait() []string {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.problems
}

// runCLI runs the binary with args (not serve) and returns its exit code,
// stdout and stderr. env replaces the environment entirely, so that
// nothing of the caller's leaks into config interpolation.
func runCLI(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, serverBinary(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	default:
		t.Fatalf("run server %v: %v", args, err)
		return -1, "", ""
	}
}
