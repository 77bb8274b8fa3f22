package identity

import (
	"reflect"
	"slices"
	"testing"
)

// The role scopes, in order, as Tiled's whoami shows them
// (tiled-captures/multiuser-whoami.txt).
func TestRolesMatchTiled(t *testing.T) {
	want := map[string][]Scope{
		RoleUser: {"read:metadata", "read:data", "create:node", "write:metadata", "write:data",
			"delete:revision", "delete:node", "create:apikeys", "revoke:apikeys"},
		RoleAdmin: {"read:metadata", "read:data", "create:node", "register", "write:metadata", "write:data",
			"delete:revision", "delete:node", "admin:apikeys", "read:principals", "write:principals", "metrics",
			"read:webhooks", "write:webhooks"},
	}
	if got := Roles(); !reflect.DeepEqual(got, want) {
		t.Fatalf("roles differ from Tiled's:\n got %v\nwant %v", got, want)
	}
	for name, scopes := range want {
		for _, s := range scopes {
			if !IsKnownScope(s) {
				t.Errorf("role %s has unknown scope %s", name, s)
			}
		}
	}
	if r, ok := RoleByName("admin"); !ok || len(r.Scopes) != len(want[RoleAdmin]) {
		t.Fatalf("RoleByName(admin) = %v, %v", r, ok)
	}
	if _, ok := RoleByName("root"); ok {
		t.Fatal("unknown role found")
	}
}

func TestScopeSet(t *testing.T) {
	s := NewScopeSet("read:data", "read:metadata")
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"has all", s.Has("read:data", "read:metadata"), true},
		{"has none asked", s.Has(), true},
		{"lacks one", s.Has("read:data", "write:data"), false},
		{"missing in order", s.Missing("write:data", "read:data", "metrics"), []Scope{"write:data", "metrics"}},
		{"intersect", NewScopeSet("read:data", "metrics").Intersect(s).Sorted(), []Scope{"read:data"}},
		{"sorted", s.Sorted(), []Scope{"read:data", "read:metadata"}},
		{"of roles", ScopesOfRoles([]Role{{Scopes: []Scope{"a"}}, {Scopes: []Scope{"b", "a"}}}).Sorted(), []Scope{"a", "b"}},
		{"inherit is known", IsKnownScope(ScopeInherit), true},
		{"made-up scope", IsKnownScope("read:everything"), false},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	all := AllScopes()
	all[0] = "tampered"
	if slices.Contains(AllScopes(), "tampered") {
		t.Fatal("AllScopes shares its slice")
	}
}
