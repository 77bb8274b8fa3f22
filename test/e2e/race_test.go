//go:build race

package e2e

// raceEnabled: the server binary is built with -race too.
const raceEnabled = true
