package apikeys_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/store"
)

type fixture struct {
	svc *apikeys.Service
	st  store.Store
	now time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, now: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	f.svc = &apikeys.Service{Identities: st, Now: func() time.Time { return f.now }, Logger: slog.New(slog.DiscardHandler), TagsEnforced: true}
	return f
}

func (f *fixture) principal(t testing.TB, name string, roles ...string) identity.Principal {
	t.Helper()
	p, _, err := f.st.LoginIdentity(context.Background(), "toy", name, roles, f.now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func TestIssueRules(t *testing.T) {
	f := newFixture(t)
	alice := f.principal(t, "alice", identity.RoleUser)
	all := identity.ScopesOfRoles(alice.Roles)
	readOnly := identity.NewScopeSet(identity.ScopeReadMetadata, identity.ScopeReadData)
	tests := []struct {
		name      string
		grantable identity.ScopeSet
		req       apikeys.Request
		wantErr   error
	}{
		{"subset of the principal's scopes", all, apikeys.Request{Scopes: []string{"read:metadata"}}, nil},
		{"nil scopes inherit", all, apikeys.Request{}, nil},
		{"scope the principal lacks", all, apikeys.Request{Scopes: []string{"read:principals"}}, apikeys.ErrScopesNotHeld},
		{"a limited creator cannot grant more than it holds", readOnly, apikeys.Request{Scopes: []string{"write:data"}}, apikeys.ErrScopesNotHeld},
		{"a limited creator cannot grant inherit", readOnly, apikeys.Request{}, apikeys.ErrScopesNotHeld},
		{"access tags with inherit", all, apikeys.Request{AccessTags: []string{"t"}}, apikeys.ErrTagsWithScopes},
		{"access tags with explicit scopes", all, apikeys.Request{Scopes: []string{"read:data"}, AccessTags: []string{"t"}}, nil},
		{"non-positive lifetime", all, apikeys.Request{Scopes: []string{"read:data"}, ExpiresIn: ptr(int64(0))}, apikeys.ErrInvalidLifetime},
		{"the longest lifetime", all, apikeys.Request{Scopes: []string{"read:data"}, ExpiresIn: ptr(apikeys.MaxExpiresIn)}, nil},
		{"one second past the longest lifetime", all, apikeys.Request{Scopes: []string{"read:data"}, ExpiresIn: ptr(apikeys.MaxExpiresIn + 1)}, apikeys.ErrLifetimeTooLong},
		{"a lifetime that would overflow", all, apikeys.Request{Scopes: []string{"read:data"}, ExpiresIn: ptr(int64(1e10))}, apikeys.ErrLifetimeTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.svc.Issue(context.Background(), alice, apikeys.Grant{Scopes: tt.grantable}, tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (len(got.Secret) != 72 || got.Key.FirstEight != got.Secret[:8]) {
				t.Fatalf("issued %+v", got)
			}
			if err == nil && got.Key.ExpiresAt != nil && !got.Key.ExpiresAt.After(time.Now()) {
				t.Fatalf("a key issued for %d s expires at %s", *tt.req.ExpiresIn, got.Key.ExpiresAt)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.principal(t, "alice", identity.RoleUser)
	grant := identity.ScopesOfRoles(alice.Roles)
	limited, err := f.svc.Issue(ctx, alice, apikeys.Grant{Scopes: grant}, apikeys.Request{Scopes: []string{"read:metadata", "write:data"}, ExpiresIn: ptr(int64(60))})
	if err != nil {
		t.Fatal(err)
	}
	inherit, err := f.svc.Issue(ctx, alice, apikeys.Grant{Scopes: grant}, apikeys.Request{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.VerifyAPIKey(ctx, limited.Secret)
	if err != nil || c.Kind != authn.APIKey || c.PrincipalID != alice.ID || !c.Scopes.Has("read:metadata", "write:data") || c.Scopes.Has("read:data") {
		t.Fatalf("limited key: %+v %v", c, err)
	}
	c, err = f.svc.VerifyAPIKey(ctx, inherit.Secret)
	if err != nil || !c.Scopes.Has(identity.ScopeCreateAPIKeys) {
		t.Fatalf("inherit key: %+v %v", c, err)
	}
	// The owner loses a scope: so do its keys, at once.
	if err := f.st.RevokeRole(ctx, alice.ID, identity.RoleUser); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.svc.VerifyAPIKey(ctx, limited.Secret); len(c.Scopes) != 0 {
		t.Fatalf("scopes survived the owner's loss: %v", c.Scopes.Sorted())
	}
	for name, secret := range map[string]string{
		"wrong secret with a real prefix": limited.Secret[:71] + flip(limited.Secret[71]),
		"not hex":                         "zz" + limited.Secret[2:],
		"short":                           "abc",
	} {
		if _, err := f.svc.VerifyAPIKey(ctx, secret); !errors.Is(err, authn.ErrInvalidAPIKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	f.now = f.now.Add(61 * time.Second)
	if _, err := f.svc.VerifyAPIKey(ctx, limited.Secret); !errors.Is(err, authn.ErrInvalidAPIKey) {
		t.Fatalf("expired key accepted: %v", err)
	}
}

func TestKeyLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bob := f.principal(t, "bob", identity.RoleUser)
	grant := identity.ScopesOfRoles(bob.Roles)
	for range apikeys.MaxKeysPerPrincipal {
		if _, err := f.svc.Issue(ctx, bob, apikeys.Grant{Scopes: grant}, apikeys.Request{Scopes: []string{"read:data"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Issue(ctx, bob, apikeys.Grant{Scopes: grant}, apikeys.Request{Scopes: []string{"read:data"}}); !errors.Is(err, apikeys.ErrTooManyKeys) {
		t.Fatalf("key %d: %v", apikeys.MaxKeysPerPrincipal+1, err)
	}
}

// flip returns a hex digit other than d, so a mutated secret always differs.
func flip(d byte) string {
	if d == '0' {
		return "1"
	}
	return "0"
}

// TestIssueAccessTags: a creator restricted to access tags may only make keys
// restricted to some of them (never an unrestricted key), as its scopes
// bound the new key's scopes; and where the policy does not enforce tags, a
// key asking for them is refused rather than issued unrestricted in effect.
func TestIssueAccessTags(t *testing.T) {
	f := newFixture(t)
	alice := f.principal(t, "alice", identity.RoleUser)
	read := []string{"read:metadata", "read:data"}
	grant := identity.ScopesOfRoles(alice.Roles)
	tests := []struct {
		name       string
		creator    []string // the creator's own tags (nil: unrestricted)
		requested  []string
		unenforced bool
		wantErr    error
	}{
		{"unrestricted creator, any tags", nil, []string{"a", "z"}, false, nil},
		{"unrestricted creator, no tags", nil, nil, false, nil},
		{"restricted creator, a subset", []string{"a", "b"}, []string{"a"}, false, nil},
		{"restricted creator, all its tags", []string{"a", "b"}, []string{"b", "a"}, false, nil},
		{"restricted creator, no tags at all", []string{"a", "b"}, []string{}, false, nil},
		{"restricted creator, an unrestricted key", []string{"a", "b"}, nil, false, apikeys.ErrTagsNotHeld},
		{"restricted creator, a wider set", []string{"a"}, []string{"a", "b"}, false, apikeys.ErrTagsNotHeld},
		{"restricted creator, another tag", []string{"a"}, []string{"c"}, false, apikeys.ErrTagsNotHeld},
		{"tags where the policy ignores them", nil, []string{"a"}, true, apikeys.ErrTagsUnenforced},
		{"no tags where the policy ignores them", nil, nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.svc.TagsEnforced = !tt.unenforced
			got, err := f.svc.Issue(context.Background(), alice, apikeys.Grant{Scopes: grant, AccessTags: tt.creator},
				apikeys.Request{Scopes: read, AccessTags: tt.requested})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !slices.Equal(got.Key.AccessTags, tt.requested) {
				t.Fatalf("issued tags %v, want %v", got.Key.AccessTags, tt.requested)
			}
		})
	}
}
