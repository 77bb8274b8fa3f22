package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/storeerr"
)

func testPrincipals(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := identity.Principal{
		ID: uuid.New(), Type: identity.TypeService, CreatedAt: t0,
		Roles: []identity.Role{{Name: identity.RoleUser}, {Name: identity.RoleAdmin}, {Name: identity.RoleUser}},
	}
	created, err := st.CreatePrincipal(ctx, p)
	ok(t, err, "create principal")
	got, err := st.GetPrincipal(ctx, p.ID)
	ok(t, err, "get principal")
	for _, q := range []identity.Principal{created, got} {
		equal(t, q.ID, p.ID, "id")
		equal(t, q.Type, identity.TypeService, "type")
		sameTime(t, q.CreatedAt, at(0), "created_at")
		equal(t, q.LatestActivity, (*time.Time)(nil), "latest activity")
		equal(t, len(q.Identities), 0, "identities")
		admin, _ := identity.RoleByName(identity.RoleAdmin)
		user, _ := identity.RoleByName(identity.RoleUser)
		equal(t, q.Roles, []identity.Role{admin, user}, "roles, by name, with their scopes")
	}

	_, err = st.CreatePrincipal(ctx, p)
	isErr(t, err, storeerr.ErrConflict, "create principal with a taken id")
	_, err = st.GetPrincipal(ctx, uuid.New())
	isErr(t, err, storeerr.ErrNotFound, "get missing principal")

	ok(t, st.DeletePrincipal(ctx, p.ID), "delete principal")
	_, err = st.GetPrincipal(ctx, p.ID)
	isErr(t, err, storeerr.ErrNotFound, "get deleted principal")
	isErr(t, st.DeletePrincipal(ctx, p.ID), storeerr.ErrNotFound, "delete deleted principal")
}

func testListPrincipals(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	var ids []uuid.UUID
	// Created out of order: the listing is by creation time.
	for _, minute := range []int{3, 0, 6, 1, 4, 2, 5} {
		p := newPrincipal(t, st, t0.Add(time.Duration(minute)*time.Minute), identity.RoleUser)
		ok(t, st.AddIdentity(ctx, p.ID, "toy", fmt.Sprintf("user%d", minute)), "add identity")
		for len(ids) <= minute {
			ids = append(ids, uuid.Nil)
		}
		ids[minute] = p.ID
	}
	for _, tc := range []struct {
		offset, limit int
		want          []uuid.UUID
	}{
		{0, 3, ids[0:3]},
		{3, 3, ids[3:6]},
		{6, 3, ids[6:7]},
		{7, 3, nil},
		{100, 1, nil},
		{0, 100, ids},
	} {
		page, total, err := st.ListPrincipals(ctx, identity.Page{Offset: tc.offset, Limit: tc.limit})
		ok(t, err, "list principals")
		equal(t, total, 7, "total")
		var got []uuid.UUID
		for i, p := range page {
			got = append(got, p.ID)
			minute := tc.offset + i
			want := []identity.Identity{{Provider: "toy", ID: fmt.Sprintf("user%d", minute), PrincipalID: p.ID}}
			equal(t, p.Identities, want, "identities in a listing")
			equal(t, len(p.Roles), 1, "roles in a listing")
			sameTime(t, p.CreatedAt, at(time.Duration(minute)*time.Minute), "created_at in a listing")
		}
		equal(t, got, tc.want, fmt.Sprintf("page offset %d limit %d", tc.offset, tc.limit))
	}
	for _, bad := range []identity.Page{{Offset: -1, Limit: 1}, {Offset: 0, Limit: 0}} {
		if _, _, err := st.ListPrincipals(ctx, bad); err == nil {
			t.Fatalf("list principals with %+v: no error", bad)
		}
	}
}

func testIdentities(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	alice := newPrincipal(t, st, t0)
	bob := newPrincipal(t, st, t0)
	ok(t, st.AddIdentity(ctx, alice.ID, "orcid", "0000-0001"), "add identity")
	ok(t, st.AddIdentity(ctx, alice.ID, "github", "alice"), "add second identity")
	ok(t, st.AddIdentity(ctx, bob.ID, "github", "Alice"), "identities are case-sensitive")

	got, err := st.GetPrincipal(ctx, alice.ID)
	ok(t, err, "get principal")
	equal(t, got.Identities, []identity.Identity{
		{Provider: "github", ID: "alice", PrincipalID: alice.ID},
		{Provider: "orcid", ID: "0000-0001", PrincipalID: alice.ID},
	}, "identities, by provider")

	for _, tc := range []struct {
		name      string
		principal uuid.UUID
		want      error
	}{
		{"taken by another principal", bob.ID, storeerr.ErrConflict},
		{"taken by the same principal", alice.ID, storeerr.ErrConflict},
	} {
		isErr(t, st.AddIdentity(ctx, tc.principal, "github", "alice"), tc.want, "add identity: "+tc.name)
	}
	isErr(t, st.AddIdentity(ctx, uuid.New(), "github", "carol"), storeerr.ErrNotFound, "add identity to a missing principal")
}

func testLoginIdentity(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p, created, err := st.LoginIdentity(ctx, "toy", "alice", []string{identity.RoleUser}, t0)
	ok(t, err, "first login")
	equal(t, created, true, "first login creates")
	equal(t, p.Type, identity.TypeUser, "type")
	sameTime(t, p.CreatedAt, at(0), "created_at")
	equal(t, len(p.Identities), 1, "identities")
	sameTimePtr(t, p.Identities[0].LatestLogin, ptr(at(0)), "latest login")
	user, _ := identity.RoleByName(identity.RoleUser)
	equal(t, p.Roles, []identity.Role{user}, "roles")

	again, created, err := st.LoginIdentity(ctx, "toy", "alice", []string{identity.RoleAdmin}, t0.Add(time.Hour))
	ok(t, err, "second login")
	equal(t, created, false, "second login finds")
	equal(t, again.ID, p.ID, "same principal")
	equal(t, again.Roles, []identity.Role{user}, "newRoles apply only to new principals")
	sameTimePtr(t, again.Identities[0].LatestLogin, ptr(at(time.Hour)), "latest login moves")

	other, created, err := st.LoginIdentity(ctx, "other", "alice", nil, t0)
	ok(t, err, "login with another provider")
	equal(t, created, true, "another provider is another identity")
	if other.ID == p.ID {
		t.Fatal("another provider's alice got the same principal")
	}
	equal(t, len(other.Roles), 0, "no roles")

	ok(t, st.AddIdentity(ctx, p.ID, "orcid", "0000-0002"), "link identity")
	linked, created, err := st.LoginIdentity(ctx, "orcid", "0000-0002", nil, t0)
	ok(t, err, "login with linked identity")
	equal(t, created, false, "linked identity finds")
	equal(t, linked.ID, p.ID, "linked identity's principal")
}

func testLoginIdentityRace(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	const n = 20
	ids := make([]uuid.UUID, n)
	created := make([]bool, n)
	errs := race(n, func(i int) error {
		p, c, err := st.LoginIdentity(ctx, "toy", "newcomer", []string{identity.RoleUser}, t0)
		ids[i], created[i] = p.ID, c
		return err
	})
	creators := 0
	for i, err := range errs {
		ok(t, err, fmt.Sprintf("login %d", i))
		equal(t, ids[i], ids[0], "every login finds the same principal")
		if created[i] {
			creators++
		}
	}
	equal(t, creators, 1, "logins that created the principal")
	_, total, err := st.ListPrincipals(ctx, identity.Page{Limit: 10})
	ok(t, err, "list principals")
	equal(t, total, 1, "principals after the race")
	p, err := st.GetPrincipal(ctx, ids[0])
	ok(t, err, "get principal")
	equal(t, len(p.Roles), 1, "roles granted once")
}

func testRoles(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	roleNames := func() []string {
		got, err := st.GetPrincipal(ctx, p.ID)
		ok(t, err, "get principal")
		var names []string
		for _, r := range got.Roles {
			names = append(names, r.Name)
		}
		return names
	}
	ok(t, st.GrantRole(ctx, p.ID, identity.RoleUser), "grant")
	ok(t, st.GrantRole(ctx, p.ID, identity.RoleUser), "grant again")
	ok(t, st.GrantRole(ctx, p.ID, "custodian"), "grant a role the server does not define")
	equal(t, roleNames(), []string{"custodian", identity.RoleUser}, "roles")

	got, err := st.GetPrincipal(ctx, p.ID)
	ok(t, err, "get principal")
	equal(t, got.Roles[0].Scopes, []identity.Scope(nil), "an unknown role has no scopes")

	ok(t, st.RevokeRole(ctx, p.ID, "custodian"), "revoke")
	equal(t, roleNames(), []string{identity.RoleUser}, "roles after revoke")
	isErr(t, st.RevokeRole(ctx, p.ID, "custodian"), storeerr.ErrNotFound, "revoke a role not held")
	isErr(t, st.GrantRole(ctx, uuid.New(), identity.RoleUser), storeerr.ErrNotFound, "grant to a missing principal")
}

func testTouchPrincipal(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0)
	const interval = time.Minute
	for _, tc := range []struct {
		name  string
		now   time.Duration
		wantT time.Duration
	}{
		{"first touch writes", 0, 0},
		{"inside the interval: no write", 30 * time.Second, 0},
		{"just inside: no write", interval - time.Microsecond, 0},
		{"exactly one interval later writes", interval, interval},
		{"a clock behind the last write: no write", 10 * time.Second, interval},
		{"long after writes", time.Hour, time.Hour},
	} {
		ok(t, st.TouchPrincipal(ctx, p.ID, t0.Truncate(time.Microsecond).Add(tc.now), interval), tc.name)
		got, err := st.GetPrincipal(ctx, p.ID)
		ok(t, err, "get principal")
		sameTimePtr(t, got.LatestActivity, ptr(at(tc.wantT)), tc.name)
	}
	ok(t, st.TouchPrincipal(ctx, uuid.New(), t0, interval), "touching a missing principal is not an error")
}

// testLoginIdentityAs: a provider's stable principal id (Entra's
// uuid5(iss|sub)) is the principal's id; a renamed identity joins it; a
// known identity keeps its principal; racing first logins make one.
func testLoginIdentityAs(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	stable := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://login.example/t/v2.0|opaque-sub"))
	const n = 10
	created := make([]bool, n)
	errs := race(n, func(i int) error {
		p, c, err := st.LoginIdentityAs(ctx, "entra", "dallan", stable, []string{identity.RoleUser}, t0)
		created[i] = c
		if err == nil && p.ID != stable {
			return fmt.Errorf("principal %s, want %s", p.ID, stable)
		}
		return err
	})
	creators := 0
	for i, err := range errs {
		ok(t, err, fmt.Sprintf("login %d", i))
		if created[i] {
			creators++
		}
	}
	equal(t, creators, 1, "logins that created the principal")

	// The person's name at the provider changed: same principal, two identities.
	p, created1, err := st.LoginIdentityAs(ctx, "entra", "dallan.allan", stable, []string{identity.RoleUser}, t0)
	ok(t, err, "renamed")
	equal(t, created1, false, "renamed identity creates nothing")
	equal(t, p.ID, stable, "renamed identity's principal")
	equal(t, len(p.Identities), 2, "identities")
	equal(t, len(p.Roles), 1, "roles granted once")

	// An identity made earlier (tiled_admins at start) keeps its principal.
	admin, _, err := st.LoginIdentity(ctx, "entra", "root", []string{identity.RoleAdmin}, t0)
	ok(t, err, "bootstrap")
	again, _, err := st.LoginIdentityAs(ctx, "entra", "root", uuid.New(), nil, t0)
	ok(t, err, "login of a known identity")
	equal(t, again.ID, admin.ID, "known identity's principal")
	_, _, err = st.LoginIdentityAs(ctx, "entra", "x", uuid.Nil, nil, t0)
	if err == nil {
		t.Fatal("nil principal id accepted")
	}
}
