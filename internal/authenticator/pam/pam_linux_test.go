//go:build cgo && linux && !nopam

package pam

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/authenticator"
)

// requireAccounts skips (loudly) unless the test may create local accounts
// and PAM service files, which needs root and the shadow tools. Under CI=true
// a skip would hide the only test of real PAM, so it fails instead.
func requireAccounts(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (to create accounts and /etc/pam.d files)")
	}
	for _, tool := range []string{"useradd", "chpasswd", "userdel", "usermod", "chage"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "real PAM tests need " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip("SKIPPING: " + msg)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(t *testing.T, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// newAccount creates a local account with a random password and removes it
// when the test ends.
func newAccount(t *testing.T) (name, password string) {
	t.Helper()
	name = "tiledtest_" + randomHex(t, 4)
	password = rand.Text()
	run(t, "", "useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "--force", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	run(t, name+":"+password+"\n", "chpasswd")
	return name, password
}

// newService writes a PAM service file and removes it when the test ends.
func newService(t *testing.T, stack string) string {
	t.Helper()
	name := "tiled-test-" + randomHex(t, 4)
	path := filepath.Join("/etc/pam.d", name)
	if err := os.WriteFile(path, []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	})
	return name
}

// unixStack is pam_unix alone, without the failure delay of the system
// stacks (pam_faildelay in "login" and pam_unix's own 2 s), so that wrong
// passwords fail at once. pam_echo sends a TextInfo through the
// conversation.
const unixStack = `auth     optional pam_echo.so tiled-test-info
auth     required pam_unix.so nodelay
account  required pam_unix.so
`

func newUnix(t *testing.T, logs *bytes.Buffer) *Authenticator {
	t.Helper()
	requireAccounts(t)
	cfg := Config{Service: newService(t, unixStack)}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthenticate(t *testing.T) {
	a := newUnix(t, nil)
	tests := []struct {
		name string
		// prepare changes the account; the returned strings are the
		// username and password to log in with.
		prepare func(t *testing.T, user, password string) (string, string)
		wantErr error
	}{
		{name: "right password", prepare: func(_ *testing.T, u, p string) (string, string) { return u, p }},
		{name: "wrong password", wantErr: authenticator.ErrBadCredentials,
			prepare: func(_ *testing.T, u, p string) (string, string) { return u, p + "x" }},
		{name: "unknown user", wantErr: authenticator.ErrBadCredentials,
			prepare: func(t *testing.T, _, p string) (string, string) { return "tiledtest_none_" + randomHex(t, 4), p }},
		{name: "empty password", wantErr: authenticator.ErrBadCredentials,
			prepare: func(_ *testing.T, u, _ string) (string, string) { return u, "" }},
		{name: "empty username", wantErr: authenticator.ErrBadCredentials,
			prepare: func(_ *testing.T, _, p string) (string, string) { return "", p }},
		{name: "password with NUL after the right one", wantErr: authenticator.ErrBadCredentials,
			prepare: func(_ *testing.T, u, p string) (string, string) { return u, p + "\x00x" }},
		{name: "username with NUL after the right one", wantErr: authenticator.ErrBadCredentials,
			prepare: func(_ *testing.T, u, p string) (string, string) { return u + "\x00x", p }},
		{name: "locked account", wantErr: authenticator.ErrBadCredentials,
			prepare: func(t *testing.T, u, p string) (string, string) {
				run(t, "", "usermod", "--lock", u)
				return u, p
			}},
		{name: "expired account", wantErr: authenticator.ErrBadCredentials,
			prepare: func(t *testing.T, u, p string) (string, string) {
				run(t, "", "chage", "--expiredate", "0", u)
				return u, p
			}},
		{name: "password must be changed", wantErr: authenticator.ErrBadCredentials,
			prepare: func(t *testing.T, u, p string) (string, string) {
				run(t, "", "chage", "--lastday", "0", u)
				return u, p
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			account, password := newAccount(t)
			user, pass := tt.prepare(t, account, password)
			id, err := a.Authenticate(t.Context(), user, pass)
			if tt.wantErr != nil {
				if err != tt.wantErr || id != "" {
					// Exactly the sentinel: a wrapped reason could say
					// which part was wrong.
					t.Fatalf("Authenticate = %q, %v; want exactly %v", id, err, tt.wantErr)
				}
				return
			}
			if err != nil || id != account {
				t.Fatalf("Authenticate = %q, %v; want %q", id, err, account)
			}
		})
	}
}

func TestConversationMessagesLogged(t *testing.T) {
	var logs bytes.Buffer
	a := newUnix(t, &logs)
	user, password := newAccount(t)
	if _, err := a.Authenticate(t.Context(), user, password); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "tiled-test-info") {
		t.Fatalf("pam_echo's message was not logged; logs:\n%s", logs.String())
	}
}

func TestConcurrentLogins(t *testing.T) {
	a := newUnix(t, nil)
	type account struct{ name, password string }
	var accounts [2]account
	for i := range accounts {
		accounts[i].name, accounts[i].password = newAccount(t)
	}
	const goroutines, rounds = 8, 4
	errs := make(chan error, goroutines*rounds)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				acc := accounts[(g+r)%len(accounts)]
				if (g+r)%3 == 0 {
					if _, err := a.Authenticate(t.Context(), acc.name, acc.password+"-wrong"); err != authenticator.ErrBadCredentials {
						errs <- fmt.Errorf("goroutine %d round %d, wrong password: got %v", g, r, err)
					}
					continue
				}
				id, err := a.Authenticate(t.Context(), acc.name, acc.password)
				if err != nil || id != acc.name {
					errs <- fmt.Errorf("goroutine %d round %d: got %q, %v; want %q", g, r, id, err, acc.name)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDefaultService logs in through the system's "login" stack, the
// default a Tiled configuration without "service" gets.
func TestDefaultService(t *testing.T) {
	requireAccounts(t)
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if a.service != "login" {
		t.Fatalf("default service = %q, want Tiled's \"login\"", a.service)
	}
	user, password := newAccount(t)
	if id, err := a.Authenticate(t.Context(), user, password); err != nil || id != user {
		t.Fatalf("Authenticate = %q, %v; want %q", id, err, user)
	}
}

// TestBrokenStack: a stack PAM cannot run is an outage (503), not a wrong
// password.
func TestBrokenStack(t *testing.T) {
	requireAccounts(t)
	a, err := New(Config{Service: newService(t, "auth required pam_tiled_no_such_module.so\naccount required pam_permit.so\n")})
	if err != nil {
		t.Fatal(err)
	}
	user, password := newAccount(t)
	_, err = a.Authenticate(t.Context(), user, password)
	if !errors.Is(err, authenticator.ErrUnavailable) {
		t.Fatalf("Authenticate error = %v, want authenticator.ErrUnavailable", err)
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "path as service", cfg: Config{Service: "../shadow"}, wantErr: []string{`service "../shadow"`}},
		{name: "everything wrong at once", cfg: Config{Service: "a b", Timeout: -time.Second, MaxConcurrent: -1},
			wantErr: []string{`service "a b"`, "timeout must be positive", "max concurrent logins must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if len(tt.wantErr) == 0 {
				if err != nil || a == nil {
					t.Fatalf("New = %v, %v", a, err)
				}
				if a.timeout != DefaultTimeout || cap(a.slots) != DefaultMaxConcurrent {
					t.Fatalf("defaults: timeout %s, slots %d", a.timeout, cap(a.slots))
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("New error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestMissingServiceWarns(t *testing.T) {
	var logs bytes.Buffer
	service := "tiled-test-missing-" + randomHex(t, 4)
	if _, err := New(Config{Service: service, Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), service) || !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("no warning about the missing service file; logs:\n%s", logs.String())
	}
}

// blockingService is a PAM stack whose auth step runs a script that says it
// has started and then waits until the test releases it: a PAM module that
// hangs for as long as the test wants.
type blockingService struct {
	name             string
	started, release string
}

func newBlockingService(t *testing.T) *blockingService {
	t.Helper()
	requireAccounts(t)
	dir := t.TempDir()
	b := &blockingService{started: filepath.Join(dir, "started"), release: filepath.Join(dir, "release")}
	for _, fifo := range []string{b.started, b.release} {
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(dir, "block.sh")
	body := fmt.Sprintf("#!/bin/sh\necho started > %q\nread line < %q\nexit 0\n", b.started, b.release)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	b.name = newService(t, "auth required pam_exec.so "+script+"\naccount required pam_permit.so\n")
	t.Cleanup(func() {
		// If the test stopped before releasing the script, let it go
		// (no reader means it already has, and open fails).
		if f, err := os.OpenFile(b.release, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_, _ = f.WriteString("go\n")
			_ = f.Close()
		}
	})
	return b
}

// waitStarted returns once the script runs, or fails the test if ended is
// closed first (the script could not run, so the transaction ended).
func (b *blockingService) waitStarted(t *testing.T, ended <-chan struct{}) {
	t.Helper()
	started := make(chan error, 1)
	go func() {
		_, err := os.ReadFile(b.started)
		started <- err
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-ended:
		// Unblock the reader above so it does not outlive the test.
		if f, err := os.OpenFile(b.started, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = f.Close()
		}
		t.Fatal("the login ended before the PAM module ran")
	}
}

func (b *blockingService) unblock(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(b.release, []byte("go\n"), 0); err != nil {
		t.Fatal(err)
	}
}

// transactionsDone is closed once no PAM transaction of a runs. Call it only
// after the transactions of interest have started.
func transactionsDone(a *Authenticator) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		a.calls.Wait()
		close(done)
	}()
	return done
}

func TestAbandonedLoginFinishes(t *testing.T) {
	tests := []struct {
		name string
		// cancel ends the login by its context; otherwise Timeout does.
		cancel  bool
		timeout time.Duration
		wantErr error
	}{
		{name: "context cancelled", cancel: true, timeout: time.Hour, wantErr: context.Canceled},
		{name: "timeout", timeout: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBlockingService(t)
			a, err := New(Config{Service: b.name, Timeout: tt.timeout, MaxConcurrent: 1})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var loginErr error
			loginEnded := make(chan struct{})
			go func() {
				defer close(loginEnded)
				_, loginErr = a.Authenticate(ctx, "anyone", "secret")
			}()
			if tt.cancel {
				// The login cannot end before the module runs: its
				// timeout is an hour and its context is live.
				b.waitStarted(t, loginEnded)
				cancel()
			}
			<-loginEnded
			if !errors.Is(loginErr, authenticator.ErrUnavailable) || (tt.wantErr != nil && !errors.Is(loginErr, tt.wantErr)) {
				t.Fatalf("abandoned login: %v; want authenticator.ErrUnavailable (and %v)", loginErr, tt.wantErr)
			}
			if !tt.cancel {
				// The slot was free, so the transaction started
				// before the timer could stop the wait.
				b.waitStarted(t, transactionsDone(a))
			}

			// The hung transaction still holds the only slot, so
			// another login cannot start one.
			if n := len(a.slots); n != 1 {
				t.Fatalf("%d slots held while the module hangs, want 1", n)
			}
			if !tt.cancel {
				_, err := a.Authenticate(t.Context(), "anyone", "secret")
				if !errors.Is(err, authenticator.ErrUnavailable) || !strings.Contains(err.Error(), "slots stayed busy") {
					t.Fatalf("login while the only slot is held: %v; want authenticator.ErrUnavailable for busy slots", err)
				}
			}

			b.unblock(t)
			a.calls.Wait()
			if n := len(a.slots); n != 0 {
				t.Fatalf("%d slots still held after the transaction finished", n)
			}
		})
	}
}

// TestLoadFailure: where libpam cannot be loaded, or a library is not
// libpam, PAM is unavailable with the reason, and an earlier successful load
// keeps working.
func TestLoadFailure(t *testing.T) {
	if err := Available(); err != nil {
		t.Fatalf("Available() = %v on a host with %s", err, libraryName)
	}
	for _, tc := range []struct{ lib, want string }{
		{"libtiled-no-such-library.so.0", "libtiled-no-such-library.so.0 could not be loaded"},
		{"libm.so.6", "symbol pam_start not found"},
	} {
		err := load(tc.lib)
		if !errors.Is(err, authenticator.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) ||
			!strings.HasPrefix(err.Error(), "PAM authentication is unavailable: ") {
			t.Errorf("load(%q) = %v; want ErrUnavailable mentioning %q", tc.lib, err, tc.want)
		}
	}
	if err := load(libraryName); err != nil {
		t.Fatalf("load(%q) after failures = %v", libraryName, err)
	}
}
