//go:build nopam

package pam

// builtWithoutPAM is true in builds tagged nopam: the Makefile sets the tag
// where libpam's headers are missing, so the rest still builds with cgo
// (the race detector needs it) and PAM says plainly why it is absent.
const builtWithoutPAM = true
