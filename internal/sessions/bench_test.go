package sessions_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/authcache"
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
// HS256 check plus the revocation check, a session read from the store, or
// (cached) a lookup in a revocation cache that follows the store's log.
func BenchmarkVerifyAccessToken(b *testing.B) {
	for _, backend := range []string{"memory", "postgres", "postgres-cached"} {
		b.Run(backend, func(b *testing.B) {
			m, t := benchSession(b, strings.TrimSuffix(backend, "-cached"))
			ctx := context.Background()
			if strings.HasSuffix(backend, "-cached") {
				cache, err := authcache.New(authcache.Config{AccessTokenMaxAge: m.Config.AccessTokenMaxAge})
				if err != nil {
					b.Fatal(err)
				}
				fctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); cache.Follow(fctx, m.Sessions.(store.Store)) }()
				b.Cleanup(func() { cancel(); <-done })
				for !cache.InSync() {
					time.Sleep(time.Millisecond)
				}
				m.Revocations = cache
			}
			b.ReportAllocs()
			b.ResetTimer()
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
