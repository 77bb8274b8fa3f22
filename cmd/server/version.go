package main

import (
	"fmt"
	"io"

	"github.com/tiledgo/server/internal/authenticator/pam"
	"github.com/tiledgo/server/internal/version"
)

// versionCmd prints the build and what this binary can do on this host
// (PAM is loaded at run time, so its availability belongs here too).
func versionCmd(stdout io.Writer) error {
	v := version.Get()
	fmt.Fprintf(stdout, "server %s (commit %s, Tiled API %s)\n", v.Version, v.Commit, version.TiledAPIVersion)
	if err := pam.Available(); err != nil {
		fmt.Fprintf(stdout, "pam: %v\n", err)
	} else {
		fmt.Fprintln(stdout, "pam: available")
	}
	return nil
}
