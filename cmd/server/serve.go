package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/tiledgo/server/internal/config"
	"github.com/tiledgo/server/internal/logging"
	"github.com/tiledgo/server/internal/telemetry"
	"github.com/tiledgo/server/internal/version"
)

// serveFlags are the flags of "serve", as pointers so that only the flags
// given override the configuration (flags > env > file > defaults).
type serveFlags struct {
	fs *flag.FlagSet
	config.Flags
}

func newServeFlags(out io.Writer) *serveFlags {
	s := &serveFlags{fs: newFlagSet("serve", out)}
	fs := s.fs
	fs.Func("host", "address to listen on (default 127.0.0.1)", func(v string) error { s.Host = &v; return nil })
	fs.Func("port", "port to listen on (default 8000)", func(v string) error {
		p, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a port number")
		}
		s.Port = &p
		return nil
	})
	fs.BoolFunc("public", "allow anonymous reads (Tiled's public mode)", func(v string) error {
		b, err := strconv.ParseBool(v)
		s.Public = &b
		return err
	})
	fs.Func("api-key", "the single-user API key (default: generated and printed)", func(v string) error { s.APIKey = &v; return nil })
	fs.BoolFunc("scalable", "refuse settings that cannot work across replicas", func(v string) error {
		b, err := strconv.ParseBool(v)
		s.Scalable = &b
		return err
	})
	fs.Func("log-format", "text or json", func(v string) error { s.LogFormat = &v; return nil })
	fs.Func("log-level", "debug, info, warn or error", func(v string) error { s.LogLevel = &v; return nil })
	fs.Func("database", "session database URI (postgresql://... or sqlite:///path)", func(v string) error { s.Database = &v; return nil })
	fs.BoolFunc("init-if-not-exists", "apply pending migrations at start", func(v string) error {
		b, err := strconv.ParseBool(v)
		s.InitIfNotExists = &b
		return err
	})
	fs.Func("drain-delay", "on SIGTERM, report not ready this long before closing (e.g. 5s)", func(v string) error {
		d, err := time.ParseDuration(v)
		s.DrainDelay = &d
		return err
	})
	fs.Func("metrics-addr", "serve Prometheus metrics at /metrics on this host:port, unauthenticated (keep it off the public network)", func(v string) error { s.MetricsAddr = &v; return nil })
	fs.Func("shutdown-timeout", "bound on finishing in-flight requests at shutdown (e.g. 20s)", func(v string) error {
		d, err := time.ParseDuration(v)
		s.ShutdownTimeout = &d
		return err
	})
	return s
}

// serveCmd is "serve demo | directory DIR | pyobject NAME | config FILE...".
func serveCmd(ctx context.Context, args []string, stderr io.Writer, getenv env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		sf := newServeFlags(stderr)
		fmt.Fprint(stderr, "usage: server serve demo|directory DIR|pyobject NAME|config FILE... [flags]\n\nflags:\n")
		sf.fs.PrintDefaults()
		if len(args) == 0 {
			return usageError{"serve needs a source: demo, directory DIR, pyobject NAME or config FILE..."}
		}
		return nil
	}
	sf := newServeFlags(stderr)
	positional, err := parseInterleaved(sf.fs, args[1:])
	if err != nil {
		return usageError{err.Error()}
	}
	var cfg *config.Config
	switch args[0] {
	case "demo", "pyobject", "directory":
		// The demo is Tiled's generated_minimal tree plus nested containers
		// and int/bool arrays, so every structure the API serves is on show.
		tree := config.Tree{Path: "/", Tree: "extended_demo"}
		switch {
		case args[0] == "demo" && len(positional) == 0:
		case args[0] == "pyobject" && len(positional) == 1:
			tree.Tree = positional[0]
		case args[0] == "directory" && len(positional) == 1:
			tree.Tree, tree.Args = "directory", map[string]any{"directory": positional[0]}
		default:
			return usageError{fmt.Sprintf("serve %s: unexpected arguments %q", args[0], positional)}
		}
		cfg = config.Default()
		if err := cfg.ApplyEnv(config.Env(getenv)); err != nil {
			return reportConfig(stderr, err)
		}
		cfg.ApplyFlags(sf.Flags)
		if err := cfg.Finalize(); err != nil {
			return reportConfig(stderr, err)
		}
		cfg.Trees = []config.Tree{tree}
	case "config":
		cfg, err = config.Build(config.DefaultPaths(positional, config.Env(getenv)), config.Env(getenv), sf.Flags)
		if err != nil {
			return reportConfig(stderr, err)
		}
	default:
		return usageError{fmt.Sprintf("serve: unknown source %q (want demo, directory, pyobject or config)", args[0])}
	}
	return runServer(ctx, cfg, stderr)
}

// reportConfig prints every configuration problem, one per line.
func reportConfig(stderr io.Writer, err error) error {
	fmt.Fprintf(stderr, "server: invalid configuration:\n%v\n", err)
	return errReported
}

// runServer builds every part from cfg and serves until ctx ends.
func runServer(ctx context.Context, cfg *config.Config, stderr io.Writer) error {
	logger, err := logging.New(stderr, cfg.Server.LogFormat, cfg.Server.LogLevel)
	if err != nil {
		return err
	}
	build := version.Get()
	logger.Info("starting", "version", build.Version, "commit", build.Commit, "tiled_api", version.TiledAPIVersion,
		"config", cfg)
	for _, w := range cfg.Warnings {
		logger.Warn("configuration", "warning", w)
	}
	for _, k := range cfg.Ignored {
		logger.Warn("configuration key accepted but not used by this server", "key", k)
	}
	shutdownTelemetry, err := telemetry.Setup(ctx, "tiled-server", build.Version, logger)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTelemetry(sctx); err != nil {
			logger.Warn("flush traces", "error", err)
		}
	}()

	app, err := assemble(ctx, cfg, logger, build)
	if err != nil {
		return err
	}
	defer app.close()
	if cfg.Server.MetricsAddr != "" {
		stop, err := serveMetrics(logger, cfg.Server.MetricsAddr, app.metrics.Handler())
		if err != nil {
			return err
		}
		defer stop()
	}

	addr := net.JoinHostPort(cfg.Uvicorn.Host, strconv.Itoa(cfg.Uvicorn.Port))
	lc := lifecycle{drainDelay: cfg.Server.ShutdownDrainDelay, shutdownTimeout: cfg.Server.ShutdownTimeout,
		readTimeout: cfg.Server.RequestTimeout}
	return listenAndServe(ctx, logger, addr, app.server, lc, func(a net.Addr) {
		printBanner(stderr, cfg, app.singleUserKey, app.generatedKey, a)
	})
}

// printBanner writes what Tiled prints at start, on stderr, outside the
// structured log: the URL with a generated key (so no log pipeline ever
// stores it), and the public-mode notice, both in seed 000's words.
func printBanner(w io.Writer, cfg *config.Config, key string, generated bool, addr net.Addr) {
	if cfg.Authentication.AllowAnonymousAccess {
		fmt.Fprint(w, `
    Tiled server is running in "public" mode, permitting open, anonymous access.
    Any data that is not specifically controlled with an access policy
    will be visible to anyone who can connect to this server.

`)
	}
	if generated {
		host := cfg.Uvicorn.Host
		_, port, _ := net.SplitHostPort(addr.String())
		fmt.Fprintf(w, `
    Use the following URL to connect to Tiled:

    http://%s/api/v1?api_key=%s

`, net.JoinHostPort(host, port), key)
	}
}

// generateKey draws a single-user key as Tiled does: secrets.token_hex(32).
func generateKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("no randomness available"))
	}
	return hex.EncodeToString(b)
}
