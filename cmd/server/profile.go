package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// profileEnv names a file to write a CPU profile of the whole run to. It is
// for the load harness (cmd/bench), which profiles a replica under load; it
// is read from the process environment only, never from configuration.
const profileEnv = "TILED_CPU_PROFILE"

// startProfile starts the CPU profile profileEnv asks for, if any, and
// returns the function that writes it out.
func startProfile(getenv env) (stop func(), err error) {
	path, ok := getenv(profileEnv)
	if !ok || path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
