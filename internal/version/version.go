// Package version reports what build is running. The values are set at link
// time (-ldflags "-X ...") by the Makefile and never change at run time.
package version

import "runtime/debug"

// Set by the linker.
var (
	version = "dev"
	commit  = ""
)

// TiledAPIVersion is the Tiled release whose HTTP API this server speaks. It
// is what /api/v1/ reports as library_version, because the Tiled Python
// client compares that field against Tiled releases to pick wire formats.
const TiledAPIVersion = "0.2.16"

// Info describes the running build.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// Get returns the build's version and commit, falling back to the VCS stamp
// Go embeds when the linker flags were not given.
func Get() Info {
	i := Info{Version: version, Commit: commit}
	if i.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					i.Commit = s.Value
				}
			}
		}
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}
