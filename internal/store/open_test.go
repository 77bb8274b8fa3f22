package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/storeerr"
)

// TestOpenLogsBackend: the operator can tell from the log which store is in
// use, in-memory is a warning that says sessions end with the process, and
// no password reaches the log.
func TestOpenLogsBackend(t *testing.T) {
	t.Parallel()
	pg := pgtest.NewDatabase(t)
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "s3cret-pw") // the test server trusts, so any password works
	for _, tc := range []struct {
		name, uri, backend string
		level              slog.Level
		says               string
	}{
		{"memory", "", store.BackendMemory, slog.LevelWarn, "end with this process"},
		{"sqlite", "sqlite:///" + filepath.Join(t.TempDir(), "auth.db"), store.BackendSQLite, slog.LevelInfo, "auth.db"},
		{"postgres", u.String(), store.BackendPostgres, slog.LevelInfo, "PostgreSQL"},
	} {
		var buf bytes.Buffer
		opts := store.DefaultOptions()
		opts.URI = tc.uri
		opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
		st, err := store.Open(ctx(t), opts)
		if err != nil {
			t.Fatalf("%s: open: %v", tc.name, err)
		}
		_ = st.Close()
		log := buf.String()
		if st.Backend() != tc.backend {
			t.Errorf("%s: backend %q, want %q", tc.name, st.Backend(), tc.backend)
		}
		if !strings.Contains(log, "level="+tc.level.String()) || !strings.Contains(log, tc.says) ||
			!strings.Contains(log, "backend="+tc.backend) {
			t.Errorf("%s: log does not say %q at %s with the backend:\n%s", tc.name, tc.says, tc.level, log)
		}
		if strings.Contains(log, "s3cret-pw") {
			t.Errorf("%s: the log holds the password:\n%s", tc.name, log)
		}
	}
}

func TestOpenInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*store.Options)
		want string
	}{
		{"negative overflow", func(o *store.Options) { o.MaxOverflow = -1 }, "max_overflow"},
		{"negative pool", func(o *store.Options) { o.PoolSize = -1 }, "pool_size"},
		{"negative timeout", func(o *store.Options) { o.StatementTimeout = -time.Second }, "timeouts"},
		{"bad uri", func(o *store.Options) { o.URI = "mysql://db" }, "not supported"},
		{"pool of one", func(o *store.Options) {
			o.URI, o.PoolSize, o.MaxOverflow = "postgresql://127.0.0.1:1/x", 1, 0
		}, "at least 2"},
		{"missing directory", func(o *store.Options) {
			o.URI = "sqlite:///" + filepath.Join(t.TempDir(), "nope", "auth.db")
		}, "does not exist"},
	} {
		opts := store.DefaultOptions()
		tc.edit(&opts)
		st, err := store.Open(ctx(t), opts)
		if err == nil {
			_ = st.Close()
			t.Errorf("%s: no error", tc.name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// TestOpenUnreachable: a server that does not answer is "unavailable",
// quickly; a server that answers "no" is not.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	opts := store.DefaultOptions()
	opts.URI = "postgresql://postgres@127.0.0.1:1/nothing?sslmode=disable"
	opts.ConnectTimeout = time.Second
	_, err := store.Open(ctx(t), opts)
	if !errors.Is(err, storeerr.ErrUnavailable) {
		t.Fatalf("open an unreachable server: %v, want ErrUnavailable", err)
	}

	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database_here"
	opts.URI = u.String()
	_, err = store.Open(ctx(t), opts)
	if err == nil || errors.Is(err, storeerr.ErrUnavailable) {
		t.Fatalf("open a missing database: %v, want an error other than ErrUnavailable", err)
	}
}

func TestInMemoryStoresAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := open(t, ""), open(t, "")
	defer a.Close()
	defer b.Close()
	p := newPrincipal(t, a)
	if _, err := b.GetPrincipal(ctx(t), p); !errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("a principal of one in-memory store is visible in another: %v", err)
	}
	if _, err := a.GetPrincipal(ctx(t), p); err != nil {
		t.Fatal(err)
	}
}

func TestInMemoryIsAlwaysMigrated(t *testing.T) {
	t.Parallel()
	opts := store.DefaultOptions() // Migrate false
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrator().Check(ctx(t)); err != nil {
		t.Fatalf("in-memory store not migrated: %v", err)
	}
}
