// Package pam checks usernames and passwords of local system accounts through
// libpam: the "pam" provider of Tiled's authentication.providers (Tiled's
// PAMAuthenticator, configured by its "service" key).
//
// # Which PAM service to configure
//
// The default service is "login", because that is Tiled's default and a
// Tiled configuration should keep working unchanged. A deployment should
// rather name a service of its own, for example /etc/pam.d/tiled on Debian:
//
//	auth     required pam_faildelay.so delay=1000000
//	@include common-auth
//	@include common-account
//
// The "login" stack is written for console logins: pam_nologin refuses every
// account but root while /etc/nologin exists (so a maintenance flag on the
// host would lock out the web logins too), pam_faildelay holds each failed
// attempt for 3 s (and one of this package's slots with it, see
// Config.MaxConcurrent), some distributions add pam_securetty, which needs a
// terminal this server does not have, and its session modules are never used
// because this package opens no PAM session. A dedicated service names just
// the auth and account checks the web login should make.
//
// pam_unix reads /etc/shadow. In a process that cannot, pam_unix answers
// "cannot retrieve authentication info" for every account (its unix_chkpwd
// helper checks only the calling user's own password), which this package
// reports as authenticator.ErrUnavailable, so logins answer 503. The server
// therefore has to run as root or with read access to /etc/shadow (group
// shadow on Debian), or the service has to use a module that needs neither
// (sssd, LDAP, ...).
//
// # What a login does
//
// Each Authenticate is one PAM transaction: pam_start with the service and
// username, pam_authenticate, then pam_acct_mgmt, so that a locked or expired
// account, or one whose password must be changed first, is refused (Tiled
// treats every PAM failure as a failed login; so does this package, as
// authenticator.ErrBadCredentials, and it never says which check failed). No
// credentials are set and no session is opened: pam_setcred would act on the
// server process itself (pam_group, for one, changes its groups). The
// returned id is PAM's user item after the checks, which is the username
// given unless a module maps names.
//
// Errors that are not about the credentials (a module that cannot be loaded,
// a directory service that does not answer) are authenticator.ErrUnavailable,
// so the login answers 503 rather than "wrong password".
//
// # Blocking calls
//
// libpam has no cancellation: once a call is made it runs until its modules
// return. Each transaction therefore runs on a goroutine of its own, and
// Authenticate stops waiting when its context ends or Config.Timeout passes,
// returning authenticator.ErrUnavailable. The abandoned goroutine carries on
// until libpam returns; the conversation function then refuses to answer any
// further prompt so the modules give up as soon as they ask, and the
// transaction is ended with pam_end as usual. At most Config.MaxConcurrent
// transactions, abandoned ones included, exist at a time, so a hung PAM
// module costs a bounded number of goroutines and OS threads rather than one
// more per login attempt.
//
// # Building and loading libpam
//
// libpam is opened at run time (dlopen of libpam.so.0) when the first PAM
// provider is built, not linked at build time, so building needs a C compiler
// but no libpam headers, and `go build ./cmd/server` works on any machine.
// Where the library cannot be loaded, where the binary was built without cgo
// (CGO_ENABLED=0) or with the opt-out tag nopam, or on systems other than
// Linux, New fails with a message saying why, so a configuration naming a PAM
// provider is rejected at start rather than at the first login.
package pam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/tiledgo/server/internal/authenticator"
)

// Defaults for Config fields left at their zero value.
const (
	// DefaultService is Tiled's default PAM service (PAMAuthenticator's
	// service="login").
	DefaultService = "login"
	// DefaultTimeout bounds one login. It leaves room for the 2 to 3 s
	// failure delays of the usual stacks and for a directory service that
	// answers slowly, while keeping a hung module from holding a login
	// request open for long.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxConcurrent is how many PAM transactions may run at once.
	DefaultMaxConcurrent = 8
)

// maxFieldBytes is PAM_MAX_RESP_SIZE (512) of Linux-PAM: a longer answer
// than that is not a password any PAM module accepts.
const maxFieldBytes = 512

// Config configures one PAM provider.
type Config struct {
	// Service is the PAM service, the name of the file in /etc/pam.d
	// (Tiled's "service" key). Empty means DefaultService.
	Service string
	// Timeout bounds one Authenticate call, including the wait for a free
	// slot. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxConcurrent bounds the PAM transactions in flight, abandoned ones
	// included. Zero means DefaultMaxConcurrent.
	MaxConcurrent int
	// Logger receives PAM's own messages (at debug) and the reasons logins
	// are refused (at info). Nil discards them.
	Logger *slog.Logger
}

// Authenticator checks passwords of local accounts through PAM. It is safe
// for concurrent use: every call has its own PAM transaction.
type Authenticator struct {
	service string
	timeout time.Duration
	log     *slog.Logger
	// slots holds one token per PAM transaction still running.
	slots chan struct{}
	// calls tracks the goroutines running transactions, so tests can show
	// that an abandoned one finishes.
	calls sync.WaitGroup
}

// Authenticator implements authenticator.Password.
var _ authenticator.Password = (*Authenticator)(nil)

// Available reports whether this binary can use PAM on this host: nil, or
// an authenticator.ErrUnavailable saying why not.
func Available() error { return available() }

// New checks cfg and builds an Authenticator. In a build without PAM support
// it returns an error saying so, whatever cfg holds.
func New(cfg Config) (*Authenticator, error) {
	if err := available(); err != nil {
		return nil, err
	}
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if err := checkService(cfg.Service); err != nil {
		errs = append(errs, err)
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("pam: timeout must be positive, got %s", cfg.Timeout))
	}
	if cfg.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("pam: max concurrent logins must be positive, got %d", cfg.MaxConcurrent))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !serviceConfigured(cfg.Service) {
		// Not an error: libpam then uses the "other" service, which on
		// Debian includes the common stacks and so works; elsewhere it
		// usually denies everyone, and this line explains why.
		cfg.Logger.Warn("PAM service has no file in the PAM configuration directories; libpam will use the \"other\" service",
			"service", cfg.Service, "looked_in", serviceDirs())
	}
	return &Authenticator{
		service: cfg.Service,
		timeout: cfg.Timeout,
		log:     cfg.Logger,
		slots:   make(chan struct{}, cfg.MaxConcurrent),
	}, nil
}

// checkService rejects names libpam would not treat as a plain file name in
// /etc/pam.d (it keeps only what follows the last slash, and a C string ends
// at the first NUL).
func checkService(service string) error {
	if strings.ContainsRune(service, '/') || strings.ContainsFunc(service, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) || service == "." || service == ".." {
		return fmt.Errorf("pam: service %q is not a PAM service name (a file name in /etc/pam.d, without slashes or spaces)", service)
	}
	return nil
}

// serviceDirs are where Linux-PAM looks for service files: the
// administrator's directory first, then the vendor directories some
// distributions use.
func serviceDirs() []string {
	return []string{"/etc/pam.d", "/usr/lib/pam.d", "/usr/etc/pam.d", "/lib/pam.d"}
}

func serviceConfigured(service string) bool {
	for _, dir := range serviceDirs() {
		if _, err := os.Stat(filepath.Join(dir, service)); err == nil {
			return true
		}
	}
	return false
}

// checkInput refuses, before PAM sees them, credentials no account can have.
// Empty passwords are refused even where the stack says nullok: an account
// without a password must not be reachable over the network. A NUL would cut
// the C string short, so "alice\x00x" would be checked as "alice" and its id
// would not be the account's name.
func checkInput(username, password string) error {
	switch {
	case username == "":
		return errors.New("empty username")
	case password == "":
		return errors.New("empty password")
	case len(username) > maxFieldBytes || len(password) > maxFieldBytes:
		return fmt.Errorf("username or password longer than %d bytes", maxFieldBytes)
	case strings.ContainsRune(username, 0) || strings.ContainsRune(password, 0):
		return errors.New("NUL byte in username or password")
	}
	return nil
}

// unavailableError says why this build has no PAM; it is an
// authenticator.ErrUnavailable for errors.Is but reads as its own sentence.
type unavailableError struct{ reason string }

func (e unavailableError) Error() string {
	return "PAM authentication is unavailable: " + e.reason
}

func (unavailableError) Unwrap() error { return authenticator.ErrUnavailable }

type result struct {
	id  string
	err error
}

// Authenticate implements authenticator.Password.
func (a *Authenticator) Authenticate(ctx context.Context, username, password string) (string, error) {
	if err := checkInput(username, password); err != nil {
		a.log.InfoContext(ctx, "PAM login refused before calling PAM", "reason", err.Error())
		return "", authenticator.ErrBadCredentials
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: PAM login not started: %w", authenticator.ErrUnavailable, err)
	}
	timer := time.NewTimer(a.timeout)
	defer timer.Stop()

	// A free slot is taken at once, even if the timer has fired already.
	select {
	case a.slots <- struct{}{}:
	default:
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			return "", fmt.Errorf("%w: waiting for one of %d PAM slots: %w", authenticator.ErrUnavailable, cap(a.slots), ctx.Err())
		case <-timer.C:
			return "", fmt.Errorf("%w: all %d PAM slots stayed busy for %s", authenticator.ErrUnavailable, cap(a.slots), a.timeout)
		}
	}

	// abandon is closed when nobody waits for the answer any more; the
	// conversation function then refuses to answer.
	abandon := make(chan struct{})
	// Buffered, so the goroutine never blocks on a caller that has gone.
	done := make(chan result, 1)
	start := time.Now()
	a.calls.Go(func() {
		defer func() { <-a.slots }()
		id, err := a.transact(abandon, username, password)
		done <- result{id: id, err: err}
		select {
		case <-abandon:
			a.log.Warn("abandoned PAM login finished", "service", a.service, "took", time.Since(start).String())
		default:
		}
	})

	select {
	case r := <-done:
		return r.id, r.err
	case <-ctx.Done():
		close(abandon)
		return "", fmt.Errorf("%w: PAM login abandoned (it finishes in the background): %w", authenticator.ErrUnavailable, ctx.Err())
	case <-timer.C:
		close(abandon)
		a.log.Warn("PAM login timed out; it finishes in the background", "service", a.service, "timeout", a.timeout.String())
		return "", fmt.Errorf("%w: PAM service %q did not answer within %s", authenticator.ErrUnavailable, a.service, a.timeout)
	}
}
