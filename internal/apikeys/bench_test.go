package apikeys_test

import (
	"context"
	"testing"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/identity"
)

// BenchmarkVerifyAPIKey: prefix lookup, constant-time hash compare, owner
// read and the (throttled) activity touch, on the embedded store.
func BenchmarkVerifyAPIKey(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	p := f.principal(b, "alice", identity.RoleUser)
	k, err := f.svc.Issue(ctx, p, apikeys.Grant{Scopes: identity.ScopesOfRoles(p.Roles)}, apikeys.Request{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.svc.VerifyAPIKey(ctx, k.Secret); err != nil {
			b.Fatal(err)
		}
	}
}
