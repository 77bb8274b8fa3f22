package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/config"
	"github.com/tiledgo/server/internal/logging"
	"github.com/tiledgo/server/internal/store"
)

// dbFlags name the session database for migrate and gc: --database, else
// the database block of --config files, else TILED_DATABASE_URI and friends.
type dbFlags struct {
	database *string
	configs  []string
}

func parseDBFlags(name string, args []string, stderr io.Writer) (dbFlags, []string, error) {
	fs := newFlagSet(name, stderr)
	var f dbFlags
	fs.Func("database", "session database URI", func(v string) error { f.database = &v; return nil })
	fs.Func("config", "a service-config file whose database block to use (repeatable)", func(v string) error {
		f.configs = append(f.configs, v)
		return nil
	})
	rest, err := parseInterleaved(fs, args)
	return f, rest, err
}

// openForAdmin opens the database without migrating it.
func openForAdmin(ctx context.Context, f dbFlags, getenv env, stderr io.Writer) (store.Store, *config.Config, error) {
	e := config.Env(getenv)
	var cfg *config.Config
	if len(f.configs) > 0 {
		c, err := config.Load(f.configs, e)
		if err != nil {
			return nil, nil, reportConfig(stderr, err)
		}
		cfg = c
	} else {
		cfg = config.Default()
	}
	if err := cfg.ApplyEnv(e); err != nil {
		return nil, nil, reportConfig(stderr, err)
	}
	cfg.ApplyFlags(config.Flags{Database: f.database})
	if err := cfg.Finalize(); err != nil {
		return nil, nil, reportConfig(stderr, err)
	}
	if cfg.Database.Driver == config.DriverNone || cfg.Database.InMemory {
		return nil, nil, errors.New("no session database: give --database URI, --config FILE with a database block, or TILED_DATABASE_URI")
	}
	logger, err := logging.New(stderr, cfg.Server.LogFormat, cfg.Server.LogLevel)
	if err != nil {
		return nil, nil, err
	}
	opts := store.DefaultOptions()
	opts.URI, opts.Logger = cfg.Database.URI.Reveal(), logger
	opts.PoolSize, opts.MaxOverflow = 1, 1
	st, err := store.Open(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("session database: %w", err)
	}
	return st, cfg, nil
}

// migrateCmd is "migrate up | status | down-to VERSION".
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) error {
	f, rest, err := parseDBFlags("migrate", args, stderr)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(rest) == 0 {
		return usageError{"migrate needs up, status or down-to VERSION"}
	}
	var target int64
	switch {
	case rest[0] == "up" && len(rest) == 1, rest[0] == "status" && len(rest) == 1:
	case rest[0] == "down-to" && len(rest) == 2:
		target, err = strconv.ParseInt(rest[1], 10, 64)
		if err != nil || target < 0 {
			return usageError{fmt.Sprintf("down-to: %q is not a migration version", rest[1])}
		}
	default:
		return usageError{fmt.Sprintf("migrate: unexpected %q", rest)}
	}
	st, _, err := openForAdmin(ctx, f, getenv, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	m := st.Migrator()
	switch rest[0] {
	case "up":
		res, err := m.Up(ctx)
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		if len(res) == 0 {
			fmt.Fprintln(stdout, "schema is current; nothing to apply")
		}
		for _, r := range res {
			fmt.Fprintf(stdout, "applied %05d %s (%s)\n", r.Version, r.Name, r.Duration)
		}
	case "down-to":
		res, err := m.DownTo(ctx, target)
		if err != nil {
			return fmt.Errorf("migrate down-to %d: %w", target, err)
		}
		for _, r := range res {
			fmt.Fprintf(stdout, "rolled back %05d %s (%s)\n", r.Version, r.Name, r.Duration)
		}
	case "status":
		states, err := m.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tNAME")
		for _, s := range states {
			state, at := "pending", "-"
			if s.Applied {
				state, at = "applied", s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", s.Version, state, at, s.Name)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if err := m.Check(ctx); errors.Is(err, store.ErrSchemaStale) {
			fmt.Fprintln(stdout, "migrations are pending: run `server migrate up`")
		}
	}
	return nil
}

// gcCmd deletes expired rows once (for a CronJob).
func gcCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) error {
	f, rest, err := parseDBFlags("gc", args, stderr)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(rest) != 0 {
		return usageError{fmt.Sprintf("gc: unexpected %q", rest)}
	}
	st, cfg, err := openForAdmin(ctx, f, getenv, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrator().Check(ctx); err != nil {
		return err
	}
	// As the replicas' GC: revocation-log entries outlive the access tokens
	// they deny.
	retain := max(gcRetain, cfg.Authentication.AccessTokenMaxAge+authcache.DefaultClockSkew)
	total := 0
	for {
		res, err := st.GC(ctx, nowUTC(), gcPolicy(retain, cfg.Server.AuditRetention))
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		n := res.Total()
		total += int(n)
		if n == 0 {
			break
		}
	}
	fmt.Fprintf(stdout, "deleted %d expired rows\n", total)
	return nil
}
