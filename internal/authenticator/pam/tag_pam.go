//go:build !nopam

package pam

// builtWithoutPAM: see tag_nopam.go.
const builtWithoutPAM = false
