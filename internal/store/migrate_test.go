package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/storeerr"
	"github.com/tiledgo/server/migrations"
)

// openBare opens without migrating.
func openBare(t *testing.T, uri string) store.Store {
	t.Helper()
	opts := store.DefaultOptions()
	opts.URI = uri
	opts.PoolSize, opts.MaxOverflow = 2, 0
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// migrationCount is how many migrations the embedded schema has (the
// dialects move in step).
func migrationCount(t *testing.T) int {
	t.Helper()
	entries, err := fs.ReadDir(migrations.Postgres(), ".")
	if err != nil || len(entries) == 0 {
		t.Fatalf("embedded migrations: %d, %v", len(entries), err)
	}
	return len(entries)
}

func pending(t *testing.T, m *store.Migrator) int {
	t.Helper()
	n, err := m.Pending(ctx(t))
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	return n
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	for name, uri := range map[string]func(t *testing.T) string{
		"postgres":    func(t *testing.T) string { return pgtest.NewDatabase(t) },
		"sqlite file": func(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "auth.db") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := openBare(t, uri(t))
			m := st.Migrator()

			all := migrationCount(t)
			// Empty: everything pending, the schema is stale, the store fails.
			if n := pending(t, m); n != all {
				t.Fatalf("pending on an empty database: %d, want %d", n, all)
			}
			if err := m.Check(ctx(t)); !errors.Is(err, store.ErrSchemaStale) {
				t.Fatalf("check on an empty database: %v, want ErrSchemaStale", err)
			}
			if _, err := st.GetSession(ctx(t), uuid.New()); err == nil {
				t.Fatal("a query on an empty database succeeded")
			}
			states, err := m.Status(ctx(t))
			if err != nil || len(states) != all || states[0].Applied || states[0].Name != "00001_init.sql" {
				t.Fatalf("status on an empty database: %+v, %v", states, err)
			}

			res, err := m.Up(ctx(t))
			if err != nil || len(res) != all || res[0].Version != 1 || res[0].Direction != "up" {
				t.Fatalf("up: %+v, %v", res, err)
			}
			if err := m.Check(ctx(t)); err != nil {
				t.Fatalf("check after up: %v", err)
			}
			states, err = m.Status(ctx(t))
			if err != nil || !states[all-1].Applied || states[all-1].AppliedAt.IsZero() {
				t.Fatalf("status after up: %+v, %v", states, err)
			}
			if _, err := st.GetSession(ctx(t), uuid.New()); !errors.Is(err, storeerr.ErrNotFound) {
				t.Fatalf("query after up: %v, want not found", err)
			}
			if res, err := m.Up(ctx(t)); err != nil || len(res) != 0 {
				t.Fatalf("second up: %+v, %v", res, err)
			}

			res, err = m.DownTo(ctx(t), 0)
			if err != nil || len(res) != all || res[0].Direction != "down" {
				t.Fatalf("down-to 0: %+v, %v", res, err)
			}
			if n := pending(t, m); n != all {
				t.Fatalf("pending after down: %d, want %d", n, all)
			}
			if _, err := st.GetSession(ctx(t), uuid.New()); err == nil || errors.Is(err, storeerr.ErrNotFound) {
				t.Fatalf("query after down: %v, want a missing-table error", err)
			}
			if _, err := m.DownTo(ctx(t), -1); err == nil {
				t.Fatal("down-to -1: no error")
			}
			if _, err := m.Up(ctx(t)); err != nil {
				t.Fatalf("up again: %v", err)
			}
			if n := pending(t, m); n != 0 {
				t.Fatalf("pending after up again: %d", n)
			}
		})
	}
}

// Ten replicas starting at once: each has its own pool, all call Up
// together, one applies the migration and the others find it applied.
func TestConcurrentMigrateUp(t *testing.T) {
	t.Parallel()
	uri := pgtest.NewDatabase(t)
	const replicas = 10
	stores := make([]store.Store, replicas)
	for i := range stores {
		stores[i] = openBare(t, uri)
	}
	applied := make([]int, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	done := make(chan struct{})
	for i, st := range stores {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			res, err := st.Migrator().Up(ctx(t))
			applied[i], errs[i] = len(res), err
		}()
	}
	close(start)
	for range stores {
		<-done
	}
	total := 0
	for i := range stores {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if all := migrationCount(t); total != all {
		t.Fatalf("migrations applied across replicas: %d, want %d", total, all)
	}
	for i, st := range stores {
		if n := pending(t, st.Migrator()); n != 0 {
			t.Fatalf("replica %d sees %d pending", i, n)
		}
	}
	conn, err := pgx.Connect(ctx(t), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx(t))
	var rows, v1 int
	if err := conn.QueryRow(ctx(t), fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE version_id = 1 AND is_applied) FROM %s`,
		store.VersionTable)).Scan(&rows, &v1); err != nil {
		t.Fatal(err)
	}
	if all := migrationCount(t); rows != all+1 || v1 != 1 {
		t.Fatalf("version table: %d rows, %d applications of version 1; want goose's version 0 row and one per migration", rows, v1)
	}
}
