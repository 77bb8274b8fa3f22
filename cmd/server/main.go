// Command server runs a data server that speaks the Tiled HTTP API.
//
//	server serve demo|directory DIR|config FILE... [flags]
//	server check-config FILE...
//	server migrate up|status|down-to VERSION
//	server version
//
// This package only wires: it reads configuration, builds the logger,
// telemetry, store, tree and HTTP surface, and runs them until a signal.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// env is how the process reads its environment; tests pass a map.
type env func(string) (string, bool)

// usageError marks a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage:
  server serve demo [flags]            serve the built-in example tree
  server serve directory DIR [flags]   serve a folder of .csv and .npy files
  server serve config FILE... [flags]  serve from Tiled service-config files
  server check-config FILE...          validate config files and report every problem
  server migrate up|status|down-to N   manage the session database schema
  server gc                            delete expired sessions, keys and login state once
  server version                       print version and commit

Run "server serve --help" for the serve flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile, err := startProfile(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stopProfile()
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serveCmd(ctx, args[1:], stderr, getenv)
	case "check-config":
		err = checkConfigCmd(args[1:], stdout, stderr, getenv)
	case "migrate":
		err = migrateCmd(ctx, args[1:], stdout, stderr, getenv)
	case "gc":
		err = gcCmd(ctx, args[1:], stdout, stderr, getenv)
	case "version", "--version":
		err = versionCmd(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "server: %s\n\n%s", ue.msg, usage)
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintf(stderr, "server: %v\n", err)
		return 1
	}
}

// errReported means the command already told the user what went wrong.
var errReported = errors.New("reported")
