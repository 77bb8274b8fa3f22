package sessions_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/tokens"
)

// benchEnv opens a store (memory, or PostgreSQL through pgtest) with one
// principal and a Manager on the wall clock.
func benchEnv(b *testing.B, backend string) (*sessions.Manager, identity.Principal) {
	b.Helper()
	uri := ""
	if backend == "postgres" {
		uri = pgtest.NewDatabase(b)
	}
	opts := store.DefaultOptions()
	opts.URI, opts.Migrate = uri, true
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	keys, _ := tokens.NewKeys([]string{"bench-key"})
	m := &sessions.Manager{Sessions: st, Identities: st, Keys: keys, Config: sessions.DefaultConfig(),
		Now: time.Now, Logger: slog.New(slog.DiscardHandler)}
	p, _, err := st.LoginIdentity(context.Background(), "toy", "alice", []string{identity.RoleUser}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return m, p
}

// benchSession is benchEnv with one session started.
func benchSession(b *testing.B, backend string) (*sessions.Manager, sessions.Tokens) {
	b.Helper()
	m, p := benchEnv(b, backend)
	t, err := m.Start(context.Background(), p, nil)
	if err != nil {
		b.Fatal(err)
	}
	return m, t
}

// BenchmarkVerifyAccessToken is the cost every bearer request pays: the
// HS256 check plus the session lookup that makes revocation immediate.
func BenchmarkVerifyAccessToken(b *testing.B) {
	for _, backend := range []string{"memory", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			m, t := benchSession(b, backend)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.VerifyAccessToken(ctx, t.AccessToken); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRefresh measures one rotation (conditional UPDATE, principal
// read, token minting).
func BenchmarkRefresh(b *testing.B) {
	for _, backend := range []string{"memory", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			m, t := benchSession(b, backend)
			ctx := context.Background()
			var err error
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if t, err = m.Refresh(ctx, t.RefreshToken); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
