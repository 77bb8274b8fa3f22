package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/store/storetest"
)

func open(t *testing.T, uri string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := store.DefaultOptions()
	opts.URI = uri
	opts.Migrate = true
	// Small pools: many tests run at once against one server.
	opts.PoolSize, opts.MaxOverflow = 2, 4
	st, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open %s: %v", uri, err)
	}
	return st
}

// TestConformance runs the suite on every backend: each subtest of the
// suite gets a fresh database (a fresh PostgreSQL database, a new file, a
// new in-memory database).
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, b := range []struct {
		backend string
		uri     func(t *testing.T) string
	}{
		{store.BackendMemory, func(*testing.T) string { return "" }},
		{store.BackendSQLite, func(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "auth.db") }},
		{store.BackendPostgres, func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	} {
		t.Run(b.backend, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store {
				st := open(t, b.uri(t))
				if st.Backend() != b.backend {
					t.Fatalf("backend %q, want %q", st.Backend(), b.backend)
				}
				return st
			})
		})
	}
}

func newPrincipal(t *testing.T, st store.Store) uuid.UUID {
	t.Helper()
	p, err := st.CreatePrincipal(ctx(t), identity.Principal{ID: uuid.New(), Type: identity.TypeUser, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}
