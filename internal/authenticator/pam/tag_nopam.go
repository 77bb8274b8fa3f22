//go:build nopam

package pam

// builtWithoutPAM is true in builds tagged nopam, an opt-out for builds that
// must not load libpam at run time (a fully static binary, say); a pam
// provider is then refused at start with a message saying why.
const builtWithoutPAM = true
