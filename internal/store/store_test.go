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

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		st := open(t, "")
		if st.Backend() != store.BackendMemory {
			t.Fatalf("backend %q", st.Backend())
		}
		return st
	})
}

func TestConformanceSQLiteFile(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		st := open(t, "sqlite:///"+filepath.Join(t.TempDir(), "auth.db"))
		if st.Backend() != store.BackendSQLite {
			t.Fatalf("backend %q", st.Backend())
		}
		return st
	})
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		st := open(t, pgtest.NewDatabase(t))
		if st.Backend() != store.BackendPostgres {
			t.Fatalf("backend %q", st.Backend())
		}
		return st
	})
}

func newPrincipal(t *testing.T, st store.Store) uuid.UUID {
	t.Helper()
	p, err := st.CreatePrincipal(ctx(t), identity.Principal{ID: uuid.New(), Type: identity.TypeUser, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}
