package main

import (
	"fmt"
	"io"

	"github.com/tiledgo/server/internal/version"
)

func versionCmd(stdout io.Writer) error {
	v := version.Get()
	fmt.Fprintf(stdout, "server %s (commit %s, Tiled API %s)\n", v.Version, v.Commit, version.TiledAPIVersion)
	return nil
}
