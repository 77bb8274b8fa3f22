package apikeys_test

import (
	"context"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/identity"
)

// BenchmarkVerifyAPIKey: prefix lookup, constant-time hash compare, owner
// read and the (throttled) activity touch, on the embedded store; and
// (cached) the same key answered from a key cache that follows the store's
// revocation log, with activity batched.
func BenchmarkVerifyAPIKey(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "store"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b)
			ctx := context.Background()
			p := f.principal(b, "alice", identity.RoleUser)
			k, err := f.svc.Issue(ctx, p, apikeys.Grant{Scopes: identity.ScopesOfRoles(p.Roles)}, apikeys.Request{})
			if err != nil {
				b.Fatal(err)
			}
			if cached {
				cache, err := authcache.New(authcache.Config{AccessTokenMaxAge: 15 * time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				fctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); cache.Follow(fctx, f.st) }()
				b.Cleanup(func() { cancel(); <-done })
				for !cache.InSync() {
					time.Sleep(time.Millisecond)
				}
				f.svc.Cache, f.svc.Activity = cache, &apikeys.ActivityBatcher{Store: f.st}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.svc.VerifyAPIKey(ctx, k.Secret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
