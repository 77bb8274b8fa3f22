//go:build !cgo || !linux || nopam

package pam

import "runtime"

// noPAMReason is what a nopam build says.
const noPAMReason = "this binary was built without PAM support (-tags nopam); " +
	"rebuild without that tag, or use another authenticator"

// available explains why this build cannot call libpam.
func available() error {
	if builtWithoutPAM {
		return unavailableError{reason: noPAMReason}
	}
	if runtime.GOOS != "linux" {
		return unavailableError{reason: "this server supports PAM on Linux only and this binary was built for " + runtime.GOOS + "; use another authenticator"}
	}
	return unavailableError{reason: "this binary was built without cgo (CGO_ENABLED=0); rebuild with cgo, or use another authenticator"}
}

// transact is never reached, since New fails; it answers like New for an
// Authenticator built some other way.
func (a *Authenticator) transact(<-chan struct{}, string, string) (string, error) {
	return "", available()
}
