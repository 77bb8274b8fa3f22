//go:build cgo && linux && !nopam

package pam

import (
	"errors"
	"fmt"
	"runtime"

	libpam "github.com/msteinert/pam/v2"

	"github.com/tiledgo/server/internal/authenticator"
)

// available reports that this build can call libpam.
func available() error { return nil }

// errAbandoned is the conversation's answer once the caller has stopped
// waiting; libpam turns it into PAM_CONV_ERR and the modules give up.
var errAbandoned = errors.New("login abandoned by its caller")

// transact runs one PAM transaction to its end. It blocks for as long as the
// modules take.
func (a *Authenticator) transact(abandon <-chan struct{}, username, password string) (string, error) {
	// A PAM handle is not meant to move between threads (modules may keep
	// thread-local state), and Go would otherwise move this goroutine
	// between the calls below.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	conv := libpam.ConversationFunc(func(style libpam.Style, msg string) (string, error) {
		select {
		case <-abandon:
			return "", errAbandoned
		default:
		}
		switch style {
		case libpam.PromptEchoOff:
			return password, nil
		case libpam.PromptEchoOn:
			// pam_start was given the username, so this is a module
			// asking for it again under its own prompt.
			return username, nil
		case libpam.ErrorMsg, libpam.TextInfo:
			a.log.Debug("PAM message", "service", a.service, "user", username,
				"error", style == libpam.ErrorMsg, "message", msg)
			return "", nil
		default:
			return "", fmt.Errorf("PAM message style %d is not supported", style)
		}
	})

	tx, err := libpam.Start(a.service, username, conv)
	if err != nil {
		return "", fmt.Errorf("%w: pam_start for service %q: %w", authenticator.ErrUnavailable, a.service, err)
	}
	defer func() {
		if err := tx.End(); err != nil {
			a.log.Debug("pam_end", "service", a.service, "error", err.Error())
		}
	}()

	// DisallowNullAuthtok: an account without a password never passes,
	// whatever nullok the stack carries (checkInput already refuses empty
	// passwords; this covers modules that never prompt).
	if err := tx.Authenticate(libpam.DisallowNullAuthtok); err != nil {
		return "", a.refusal("pam_authenticate", username, err)
	}
	if err := tx.AcctMgmt(libpam.DisallowNullAuthtok); err != nil {
		return "", a.refusal("pam_acct_mgmt", username, err)
	}
	id, err := tx.GetItem(libpam.User)
	if err != nil {
		return "", fmt.Errorf("%w: pam_get_item(PAM_USER) for service %q: %w", authenticator.ErrUnavailable, a.service, err)
	}
	if id == "" {
		id = username
	}
	return id, nil
}

// refusal sorts a failed PAM step into "these credentials may not log in"
// (ErrBadCredentials, the reason only logged) and "PAM could not decide"
// (ErrUnavailable).
func (a *Authenticator) refusal(step, username string, err error) error {
	var code libpam.Error
	if errors.As(err, &code) {
		switch code {
		case libpam.ErrAuth, libpam.ErrUserUnknown, libpam.ErrCredInsufficient,
			libpam.ErrMaxtries, libpam.ErrPermDenied, libpam.ErrAcctExpired,
			libpam.ErrNewAuthtokReqd, libpam.ErrAuthtokExpired, libpam.ErrCredExpired:
			a.log.Info("PAM login refused", "service", a.service, "user", username,
				"step", step, "reason", code.Error())
			return authenticator.ErrBadCredentials
		}
	}
	return fmt.Errorf("%w: %s for service %q: %w", authenticator.ErrUnavailable, step, a.service, err)
}
