//go:build !cgo || !linux || nopam

package pam

import (
	"runtime"

	"github.com/tiledgo/server/internal/authenticator"
)

// unavailableError says why this build has no PAM; it is an
// authenticator.ErrUnavailable for errors.Is but reads as its own sentence.
type unavailableError struct{ reason string }

func (e unavailableError) Error() string {
	return "PAM authentication is unavailable: " + e.reason
}

func (unavailableError) Unwrap() error { return authenticator.ErrUnavailable }

// noPAMReason is what a nopam build says.
const noPAMReason = "this binary was built without PAM support (-tags nopam: libpam's headers were missing); " +
	"install libpam0g-dev and rebuild, or use another authenticator"

// available explains why this build cannot call libpam.
func available() error {
	if builtWithoutPAM {
		return unavailableError{reason: noPAMReason}
	}
	if runtime.GOOS != "linux" {
		return unavailableError{reason: "this server supports PAM on Linux only and this binary was built for " + runtime.GOOS + "; use another authenticator"}
	}
	return unavailableError{reason: "this binary was built without cgo (CGO_ENABLED=0); rebuild with cgo and libpam, or use another authenticator"}
}

// transact is never reached, since New fails; it answers like New for an
// Authenticator built some other way.
func (a *Authenticator) transact(<-chan struct{}, string, string) (string, error) {
	return "", available()
}
