package main

import (
	"os"
	"time"
)

// getenvOS is os.Getenv, for the telemetry switch that reads the standard
// OTEL_* variables of the process.
func getenvOS(k string) string { return os.Getenv(k) }

// nowUTC is the wall clock for commands run once (gc).
func nowUTC() time.Time { return time.Now().UTC() }
