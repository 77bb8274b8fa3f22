package bearerauth

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/bearerjwt"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

var _ = authcache.Subscriber((*Cache)(nil))

// countingStore is the real store, counting the calls that reach it.
type countingStore struct {
	identity.Store
	calls atomic.Int64
}

func (c *countingStore) LoginIdentity(ctx context.Context, provider, id string, roles []string, now time.Time) (identity.Principal, bool, error) {
	c.calls.Add(1)
	return c.Store.LoginIdentity(ctx, provider, id, roles, now)
}

func (c *countingStore) LoginIdentityAs(ctx context.Context, provider, id string, pid uuid.UUID, roles []string, now time.Time) (identity.Principal, bool, error) {
	c.calls.Add(1)
	return c.Store.LoginIdentityAs(ctx, provider, id, pid, roles, now)
}

type fixture struct {
	idp   *oidcprovider.Provider
	v     *Verifier
	store *countingStore
	st    store.Store
	now   time.Time
}

func newFixture(t testing.TB, mode Mode, mod func(*Issuer)) *fixture {
	t.Helper()
	idp := oidcprovider.Start(t, oidcprovider.Options{ClientID: "c", ClientSecret: "s", Algorithms: []string{"RS256", "ES256"}})
	now := time.Now()
	val, err := bearerjwt.New(bearerjwt.Config{Issuer: idp.Issuer(), Audience: "api", Leeway: time.Minute}, bearerjwt.Deps{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := val.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cs := &countingStore{Store: st}
	iss := Issuer{Validator: val, Mode: mode, Provider: idp.Issuer(), UserIDClaim: "sub", ReadScopes: []string{"datasets:read"}}
	if mod != nil {
		mod(&iss)
	}
	v := &Verifier{Issuers: []Issuer{iss}, Identities: cs, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler), Cache: &Cache{TTL: time.Minute, Max: 100, Now: func() time.Time { return now }}}
	return &fixture{idp: idp, v: v, store: cs, st: st, now: now}
}

func (f *fixture) token(sub string, extra map[string]any) string {
	c := map[string]any{"iss": f.idp.Issuer(), "aud": "api", "sub": sub, "iat": f.now.Unix(), "exp": f.now.Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return f.idp.Mint("RS256", c)
}

// TestCachedVerifyNoDatabase: the second request of a user reaches no
// store method; a new user does, once, however many requests race.
func TestCachedVerifyNoDatabase(t *testing.T) {
	f := newFixture(t, Resource, nil)
	ctx := context.Background()
	tok := f.token("alice", map[string]any{"scope": "datasets:read"})
	c1, err := f.v.VerifyAccessToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.store.calls.Load(); got != 1 {
		t.Fatalf("first request: %d store calls", got)
	}
	for range 20 {
		c, err := f.v.VerifyAccessToken(ctx, tok)
		if err != nil || c.PrincipalID != c1.PrincipalID {
			t.Fatalf("%v %v", c, err)
		}
	}
	if got := f.store.calls.Load(); got != 1 {
		t.Fatalf("cached requests reached the store: %d calls", got)
	}
	if c1.Kind != authn.Bearer || !c1.IsPrincipal() || c1.Issuer != f.idp.Issuer() {
		t.Fatalf("caller %+v", c1)
	}
}

// TestScopes: seed 001's mode grants read:* for read_scopes and Tiled
// scopes named in the token; admins add the admin role; Proxied maps the
// token's scopes with scopes_map (all mapped scopes without scp), and only
// admins add more.
func TestScopes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Resource, nil)
	f.v.Admins = []Admin{{Provider: f.idp.Issuer(), ID: "root"}}
	tests := []struct {
		sub, scope string
		want       []string
	}{
		{"u1", "", nil},
		{"u2", "datasets:read", []string{"read:data", "read:metadata"}},
		{"u3", "datasets:read write:data made:up", []string{"read:data", "read:metadata", "write:data"}},
		{"root", "", identity.ScopesOfRoles([]identity.Role{mustRole(identity.RoleAdmin)}).Sorted()},
	}
	for _, tt := range tests {
		c, err := f.v.VerifyAccessToken(ctx, f.token(tt.sub, map[string]any{"scope": tt.scope}))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Scopes.Sorted(); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("%s %q: %v, want %v", tt.sub, tt.scope, got, tt.want)
		}
		if (tt.sub == "root") != c.Admin {
			t.Errorf("%s: admin %v", tt.sub, c.Admin)
		}
	}

	p := newFixture(t, Proxied, func(i *Issuer) {
		i.Provider, i.ScopesMap = "proxied", map[string][]string{"access": {"read:metadata"}, "more": {"write:data"}}
	})
	p.v.Admins = []Admin{{Provider: "proxied", ID: "root"}}
	adminScopes := identity.ScopesOfRoles([]identity.Role{mustRole(identity.RoleAdmin)})
	for _, tt := range []struct {
		sub  string
		scp  any
		want []string
	}{
		// A user holds what its token says, not the whole user role.
		{"bob", "access", []string{"read:metadata"}},
		{"bob", []any{"access", "unknown"}, []string{"read:metadata"}},
		{"bob", nil, []string{"read:metadata", "write:data"}},
		{"root", "access", append(adminScopes.Sorted(), "read:metadata")},
	} {
		extra := map[string]any{}
		if tt.scp != nil {
			extra["scp"] = tt.scp
		}
		c, err := p.v.VerifyAccessToken(ctx, p.token(tt.sub, extra))
		if err != nil {
			t.Fatal(err)
		}
		want := identity.NewScopeSet(tt.want...)
		if !reflect.DeepEqual(c.Scopes.Sorted(), want.Sorted()) {
			t.Errorf("scp %v: %v, want %v", tt.scp, c.Scopes.Sorted(), want.Sorted())
		}
	}
}

func mustRole(name string) identity.Role {
	r, _ := identity.RoleByName(name)
	return r
}

func TestEntraIdentity(t *testing.T) {
	iss := "https://login.microsoftonline.com/t/v2.0"
	stable := uuid.NewSHA1(uuid.NameSpaceURL, []byte(iss+"|abc"))
	for _, tt := range []struct {
		claims map[string]any
		id     string
	}{
		{map[string]any{"nameID": "DOMAIN\\dallan", "preferred_username": "x@y"}, "dallan"},
		{map[string]any{"preferred_username": " dallan@contoso.com "}, "dallan"},
		{map[string]any{"upn": "u@contoso.com"}, "u"},
		{map[string]any{"email": "e@contoso.com"}, "e"},
		{map[string]any{"preferred_username": ""}, "abc"},
		{map[string]any{}, "abc"},
	} {
		tt.claims["iss"], tt.claims["sub"] = iss, "abc"
		id, p := EntraIdentity(tt.claims)
		if id != tt.id || p != stable {
			t.Errorf("%v: %q %s", tt.claims, id, p)
		}
	}
	// Python's uuid.uuid5(uuid.NAMESPACE_URL, f"{iss}|{sub}").hex, as
	// Tiled computes it (value from CPython 3).
	if got := strings.ReplaceAll(stable.String(), "-", ""); got != "107fae1b1c325752a36d22a8a3638610" {
		t.Errorf("uuid5(iss|sub) = %s, not Tiled's", got)
	}
	if id, _ := EntraIdentity(map[string]any{"iss": iss}); id != "" {
		t.Errorf("no sub gave %q", id)
	}
}

// TestRefusals: every refusal is a 401 with RFC 6750's challenge, and a
// token without the user id claim is refused, not mapped to "".
func TestRefusals(t *testing.T) {
	f := newFixture(t, Resource, func(i *Issuer) { i.UserIDClaim = "email" })
	ctx := context.Background()
	for name, tok := range map[string]string{
		"no email claim": f.token("alice", nil),
		"forged":         oidcprovider.SignNone(map[string]any{"iss": f.idp.Issuer(), "sub": "x"}),
		"garbage":        "a.b.c",
	} {
		_, err := f.v.VerifyAccessToken(ctx, tok)
		var he *httperr.Error
		if !errors.As(err, &he) || he.Status != 401 {
			t.Fatalf("%s: %v", name, err)
		}
		h := he.Header.Get("WWW-Authenticate")
		if !strings.HasPrefix(h, `Bearer realm="tiled", error="invalid_token", error_description="`) {
			t.Fatalf("%s: %q", name, h)
		}
	}
	c, err := f.v.VerifyAccessToken(ctx, f.token("alice", map[string]any{"email": "a@example.test"}))
	if err != nil || c.Identities[0].ID != "a@example.test" {
		t.Fatalf("%v %v", c, err)
	}
}

func TestQuotable(t *testing.T) {
	if got := quotable("a\"b\\c\x01é"); got != "a?b?c??" {
		t.Fatalf("%q", got)
	}
}

func FuzzUnverifiedIssuer(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "x.eyJpc3MiOiJodHRwczovL2kifQ.y", "...", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = unverifiedIssuer(s)
		_ = quotable(s)
	})
}

// BenchmarkVerifyCached is a bearer request's whole authentication with the
// issuer's key and the principal cached: JWT checks and scope derivation,
// no network, no database.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b, Resource, nil)
	ctx := context.Background()
	for _, alg := range []string{"RS256", "ES256"} {
		c := map[string]any{"iss": f.idp.Issuer(), "aud": "api", "sub": "alice", "iat": f.now.Unix(),
			"exp": f.now.Add(time.Hour).Unix(), "scope": "datasets:read"}
		tok := f.idp.Mint(alg, c)
		if _, err := f.v.VerifyAccessToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.v.VerifyAccessToken(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if f.store.calls.Load() != 1 {
		b.Fatalf("store calls: %d", f.store.calls.Load())
	}
}

func TestCacheExpiryAndBound(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &Cache{TTL: time.Minute, Max: 3, Now: func() time.Time { return now }}
	loads := 0
	load := func(context.Context) (identity.Principal, error) {
		loads++
		return identity.Principal{ID: uuid.New()}, nil
	}
	ctx := context.Background()
	a, _ := c.Get(ctx, "a", load)
	now = now.Add(time.Minute - time.Second)
	if b, _ := c.Get(ctx, "a", load); b.ID != a.ID || loads != 1 {
		t.Fatalf("reloaded within the TTL (%d loads)", loads)
	}
	now = now.Add(time.Second)
	if b, _ := c.Get(ctx, "a", load); b.ID == a.ID || loads != 2 {
		t.Fatalf("not reloaded at the TTL (%d loads)", loads)
	}
	for _, k := range []string{"b", "c", "d", "e"} {
		_, _ = c.Get(ctx, k, load)
	}
	if c.Len() > 3 {
		t.Fatalf("%d entries over the bound", c.Len())
	}
	failing := func(context.Context) (identity.Principal, error) { return identity.Principal{}, errors.New("db down") }
	if _, err := c.Get(ctx, "z", failing); err == nil {
		t.Fatal("a store error became a principal")
	}
}

// TestCacheForgetAndClear: a changed principal's entries go at once (the
// revocation-log follower calls Forget), everything goes on a rebuild
// (Clear), and a principal loaded while either happened is not kept, since
// it may predate the change.
func TestCacheForgetAndClear(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &Cache{TTL: time.Hour, Now: func() time.Time { return now }}
	ctx := context.Background()
	alice, bob := uuid.New(), uuid.New()
	loads := map[string]int{}
	loader := func(key string, id uuid.UUID) func(context.Context) (identity.Principal, error) {
		return func(context.Context) (identity.Principal, error) {
			loads[key]++
			return identity.Principal{ID: id}, nil
		}
	}
	c.Get(ctx, "alice", loader("alice", alice))
	c.Get(ctx, "bob", loader("bob", bob))
	c.Forget(alice)
	c.Get(ctx, "alice", loader("alice", alice))
	c.Get(ctx, "bob", loader("bob", bob))
	if loads["alice"] != 2 || loads["bob"] != 1 {
		t.Fatalf("after Forget(alice): loads %v, want alice reloaded and bob cached", loads)
	}
	c.Clear()
	c.Get(ctx, "bob", loader("bob", bob))
	if loads["bob"] != 2 {
		t.Fatalf("after Clear: bob loaded %d times, want 2", loads["bob"])
	}
	// A load that a Forget overtakes is answered but not cached.
	racing := func(context.Context) (identity.Principal, error) {
		c.Forget(alice)
		loads["racing"]++
		return identity.Principal{ID: alice}, nil
	}
	c.Forget(alice)
	c.Get(ctx, "alice", racing)
	c.Get(ctx, "alice", racing)
	if loads["racing"] != 2 {
		t.Fatalf("a principal loaded while it changed was cached (%d loads, want 2)", loads["racing"])
	}
}

// TestRoleChangeReachesCachedPrincipal: with the replica's revocation-log
// follower subscribed (as cmd/server wires it), an admin role granted to a
// bearer user, then revoked, applies to the very next request rather than
// after the cache's TTL.
func TestRoleChangeReachesCachedPrincipal(t *testing.T) {
	f := newFixture(t, Resource, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follower, err := authcache.New(authcache.Config{AccessTokenMaxAge: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	follower.Subscribe(f.v.Cache)
	go follower.Follow(ctx, f.st)
	deadline := time.Now().Add(10 * time.Second)
	for !follower.InSync() {
		if time.Now().After(deadline) {
			t.Fatal("the follower never synced")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok := f.token("alice", map[string]any{"scope": "datasets:read"})
	c, err := f.v.VerifyAccessToken(ctx, tok)
	if err != nil || c.Admin {
		t.Fatalf("first request: %+v %v", c, err)
	}
	if err := f.st.GrantRole(ctx, c.PrincipalID, identity.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if c, err := f.v.VerifyAccessToken(ctx, tok); err != nil || !c.Admin {
		t.Fatalf("after the grant: admin %v, %v; want the role at once", c.Admin, err)
	}
	if err := f.st.RevokeRole(ctx, c.PrincipalID, identity.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if c, err := f.v.VerifyAccessToken(ctx, tok); err != nil || c.Admin {
		t.Fatalf("after the revocation: admin %v, %v; want it gone at once", c.Admin, err)
	}
}
