//go:build cgo && linux && !nopam

package pam

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "libpam_linux.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"

	"github.com/tiledgo/server/internal/authenticator"
)

// libraryName is libpam's soname on every Linux distribution that ships
// Linux-PAM (glibc and musl alike).
const libraryName = "libpam.so.0"

// PAM is reached at run time through dlopen rather than linked at build
// time: building then needs no libpam headers (a plain `go build` or
// `go install` works on any machine with a C compiler), and one binary
// serves both hosts that have libpam (nearly all) and hosts that do not,
// where a pam provider is refused at start with the reason.
var (
	loadOnce sync.Once
	loadErr  error
)

// available loads libpam once and reports whether PAM can be used.
func available() error {
	loadOnce.Do(func() { loadErr = load(libraryName) })
	return loadErr
}

// load opens the library at path and resolves the PAM functions.
func load(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.tiled_pam_load(cpath); msg != nil {
		defer C.free(unsafe.Pointer(msg))
		return unavailableError{reason: fmt.Sprintf("%s could not be loaded (%s); install libpam "+
			"(Debian and Ubuntu: libpam0g) or use another authenticator", path, C.GoString(msg))}
	}
	return nil
}

// Linux-PAM return codes and message styles (security/_pam_types.h).
const (
	pamSuccess          = 0
	pamPermDenied       = 6
	pamAuthErr          = 7
	pamCredInsufficient = 8
	pamUserUnknown      = 10
	pamMaxtries         = 11
	pamNewAuthtokReqd   = 12
	pamAcctExpired      = 13
	pamCredExpired      = 16
	pamAuthtokExpired   = 27

	promptEchoOff = 1
	promptEchoOn  = 2
	errorMsg      = 3
	textInfo      = 4
)

// errAbandoned is the conversation's answer once the caller has stopped
// waiting; libpam turns it into PAM_CONV_ERR and the modules give up.
var errAbandoned = errors.New("login abandoned by its caller")

// conversation answers one transaction's prompts.
type conversation func(style int, msg string) (string, error)

//export goPAMConv
func goPAMConv(handle C.uintptr_t, style C.int, msg *C.char, answer **C.char) C.int {
	conv := cgo.Handle(handle).Value().(conversation)
	s, err := conv(int(style), C.GoString(msg))
	if err != nil {
		return 1
	}
	if s != "" {
		// Allocated with malloc: libpam frees the answers.
		*answer = C.CString(s)
	}
	return 0
}

// pamError is a failed PAM call with libpam's own message.
type pamError struct {
	step string
	code int
	msg  string
}

func (e *pamError) Error() string { return fmt.Sprintf("%s: %s (PAM code %d)", e.step, e.msg, e.code) }

// transact runs one PAM transaction to its end. It blocks for as long as the
// modules take.
func (a *Authenticator) transact(abandon <-chan struct{}, username, password string) (string, error) {
	// A PAM handle is not meant to move between threads (modules may keep
	// thread-local state), and Go would otherwise move this goroutine
	// between the calls below.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	h := cgo.NewHandle(conversation(func(style int, msg string) (string, error) {
		select {
		case <-abandon:
			return "", errAbandoned
		default:
		}
		switch style {
		case promptEchoOff:
			return password, nil
		case promptEchoOn:
			// pam_start was given the username, so this is a module
			// asking for it again under its own prompt.
			return username, nil
		case errorMsg, textInfo:
			a.log.Debug("PAM message", "service", a.service, "user", username,
				"error", style == errorMsg, "message", msg)
			return "", nil
		default:
			return "", fmt.Errorf("PAM message style %d is not supported", style)
		}
	}))
	defer h.Delete()

	cservice, cuser := C.CString(a.service), C.CString(username)
	defer C.free(unsafe.Pointer(cservice))
	defer C.free(unsafe.Pointer(cuser))

	var txn *C.tiled_pam_txn
	if rc := C.tiled_pam_start(cservice, cuser, C.uintptr_t(h), &txn); rc != pamSuccess {
		return "", fmt.Errorf("%w: %w", authenticator.ErrUnavailable, a.failure(nil, "pam_start", int(rc)))
	}
	status := C.int(pamSuccess)
	defer func() {
		if rc := C.tiled_pam_end(txn, status); rc != pamSuccess {
			a.log.Debug("pam_end", "service", a.service, "code", int(rc))
		}
	}()

	// DISALLOW_NULL_AUTHTOK: an account without a password never passes,
	// whatever nullok the stack carries (checkInput already refuses empty
	// passwords; this covers modules that never prompt).
	if status = C.tiled_pam_authenticate(txn, C.TILED_PAM_DISALLOW_NULL_AUTHTOK); status != pamSuccess {
		return "", a.refusal(a.failure(txn, "pam_authenticate", int(status)), username)
	}
	if status = C.tiled_pam_acct_mgmt(txn, C.TILED_PAM_DISALLOW_NULL_AUTHTOK); status != pamSuccess {
		return "", a.refusal(a.failure(txn, "pam_acct_mgmt", int(status)), username)
	}
	var itemStatus C.int
	cid := C.tiled_pam_user(txn, &itemStatus)
	if itemStatus != pamSuccess {
		return "", fmt.Errorf("%w: %w", authenticator.ErrUnavailable, a.failure(txn, "pam_get_item(PAM_USER)", int(itemStatus)))
	}
	id := username
	if cid != nil {
		id = C.GoString(cid)
		C.free(unsafe.Pointer(cid))
	}
	if id == "" {
		id = username
	}
	return id, nil
}

// failure describes a failed call with libpam's message for its code.
func (a *Authenticator) failure(txn *C.tiled_pam_txn, step string, code int) *pamError {
	msg := C.tiled_pam_strerror(txn, C.int(code))
	defer C.free(unsafe.Pointer(msg))
	return &pamError{step: fmt.Sprintf("%s for service %q", step, a.service), code: code, msg: C.GoString(msg)}
}

// refusal sorts a failed PAM step into "these credentials may not log in"
// (ErrBadCredentials, the reason only logged) and "PAM could not decide"
// (ErrUnavailable).
func (a *Authenticator) refusal(err *pamError, username string) error {
	switch err.code {
	case pamAuthErr, pamUserUnknown, pamCredInsufficient, pamMaxtries, pamPermDenied,
		pamAcctExpired, pamNewAuthtokReqd, pamAuthtokExpired, pamCredExpired:
		a.log.Info("PAM login refused", "service", a.service, "user", username, "reason", err.Error())
		return authenticator.ErrBadCredentials
	}
	return fmt.Errorf("%w: %w", authenticator.ErrUnavailable, err)
}
