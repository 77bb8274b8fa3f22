package access

import (
	"testing"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
)

func user(id string, scopes ...string) *authn.Caller {
	if scopes == nil {
		scopes = identity.Roles()[identity.RoleUser]
	}
	return &authn.Caller{
		Kind: authn.Session, PrincipalID: uuid.New(), PrincipalType: identity.TypeUser,
		Identities: []identity.Identity{{Provider: "toy", ID: id}}, Scopes: identity.NewScopeSet(scopes...),
	}
}

var anon = &authn.Caller{Kind: authn.Anonymous, Scopes: identity.ScopeSet{}}

// TestSimpleMatrix is the access-control matrix of seed 000's older policy:
// user x entry x anonymous flag.
func TestSimpleMatrix(t *testing.T) {
	newPolicy := func(anonymous bool) *Simple {
		return &Simple{
			Provider:       "toy",
			AccessLists:    map[string][]string{"alice": {"A", "B"}, "bob": {"A", "C"}},
			AllAccess:      map[string]bool{"cara": true},
			Public:         map[string]bool{"D": true},
			Admins:         map[string]bool{"admin": true},
			Scopes:         identity.NewScopeSet(identity.ScopeReadMetadata, identity.ScopeReadData),
			AllowAnonymous: anonymous,
		}
	}
	otherProvider := user("alice")
	otherProvider.Identities[0].Provider = "elsewhere"
	callers := map[string]*authn.Caller{
		"alice": user("alice"), "bob": user("bob"), "cara": user("cara"), "admin": user("admin"),
		"dave": user("dave"), "anon": anon, "alice@elsewhere": otherProvider,
		"singleuser": {Kind: authn.SingleUser, Scopes: authn.SingleUserScopes()},
	}
	// want[caller] lists the visible top-level entries among A..E.
	for _, anonymous := range []bool{false, true} {
		want := map[string]string{
			"alice": "ABD", "bob": "ACD", "cara": "ABCDE", "admin": "ABCDE", "dave": "D",
			"alice@elsewhere": "D", "singleuser": "ABCDE", "anon": "",
		}
		if anonymous {
			want["anon"] = "D"
		}
		p := newPolicy(anonymous)
		for name, c := range callers {
			got := ""
			for _, k := range []string{"A", "B", "C", "D", "E"} {
				if p.Visible(c, Node{Path: []string{k}}) {
					got += k
				}
				// Everything under a visible entry is visible; nothing under a hidden one.
				if p.Visible(c, Node{Path: []string{k, "child"}}) != p.Visible(c, Node{Path: []string{k}}) {
					t.Errorf("anonymous=%v %s: child of %s differs from its parent", anonymous, name, k)
				}
			}
			if got != want[name] {
				t.Errorf("anonymous=%v %s sees %q, want %q", anonymous, name, got, want[name])
			}
			if !p.Visible(c, Node{}) {
				t.Errorf("%s cannot see the root", name)
			}
		}
	}
	p := newPolicy(true)
	if got := p.AllowedScopes(user("alice"), Node{Path: []string{"A"}}); got.Has(identity.ScopeWriteData) || !got.Has(identity.ScopeReadData) {
		t.Errorf("alice scopes = %v", got.Sorted())
	}
	if got := p.AllowedScopes(user("admin"), Node{Path: []string{"A"}}); !got.Has(identity.ScopeWriteData) {
		t.Errorf("admin scopes = %v", got.Sorted())
	}
	if got := p.AllowedScopes(anon, Node{Path: []string{"D"}}); got.Has(identity.ScopeWriteMetadata) || !got.Has(identity.ScopeReadMetadata) {
		t.Errorf("anonymous scopes = %v", got.Sorted())
	}
}

func TestTagsMatrix(t *testing.T) {
	read := []string{identity.ScopeReadMetadata, identity.ScopeReadData}
	newPolicy := func(anonymous bool) *Tags {
		p := &Tags{
			Provider: "toy",
			Defs: map[string]TagDef{
				"data_A":     {Groups: []Grant{{Name: "group_A", Scopes: read}}, AutoTags: []string{"data_admin"}},
				"data_B":     {Users: []Grant{{Name: "alice", Scopes: read}}, AutoTags: []string{"data_admin"}},
				"data_D":     {AutoTags: []string{"data_admin", "public"}},
				"data_admin": {Users: []Grant{{Name: "cara", Scopes: append(read, identity.ScopeWriteData)}}},
			},
			Groups:         map[string][]string{"group_A": {"bob"}},
			AllowAnonymous: anonymous,
		}
		p.Compile()
		return p
	}
	blob := func(tags ...any) map[string]any { return map[string]any{"tags": tags} }
	nodes := map[string]map[string]any{
		"A": blob("data_A"), "B": blob("data_B"), "D": blob("data_D"), "P": blob("public"),
		"U": {"user": "alice"}, "none": nil, "unknown": blob("no_such_tag"),
	}
	admin := user("root", identity.ScopeAdminAPIKeys, identity.ScopeReadMetadata)
	limitedKey := user("cara")
	limitedKey.Kind, limitedKey.AccessTags = authn.APIKey, []string{"data_B"}
	callers := map[string]*authn.Caller{
		"alice": user("alice"), "bob": user("bob"), "cara": user("cara"), "dave": user("dave"),
		"anon": anon, "admin": admin, "cara-key-limited-to-B": limitedKey,
	}
	for _, anonymous := range []bool{false, true} {
		want := map[string]string{
			"alice": "B D P U none", "bob": "A D P none", "cara": "A B D P none", "dave": "D P none",
			"anon": "none", "admin": "A B D P U none unknown", "cara-key-limited-to-B": "B none",
		}
		if anonymous {
			want["anon"] = "D P none"
		}
		p := newPolicy(anonymous)
		for name, c := range callers {
			got := ""
			for _, k := range []string{"A", "B", "D", "P", "U", "none", "unknown"} {
				if p.Visible(c, Node{Path: []string{k}, AccessBlob: nodes[k]}) {
					if got != "" {
						got += " "
					}
					got += k
				}
			}
			if got != want[name] {
				t.Errorf("anonymous=%v %s sees %q, want %q", anonymous, name, got, want[name])
			}
		}
	}
	p := newPolicy(false)
	if got := p.AllowedScopes(user("cara"), Node{AccessBlob: blob("data_A")}); !got.Has(identity.ScopeWriteData) {
		t.Errorf("cara on data_A (via auto tag data_admin) = %v", got.Sorted())
	}
	if got := p.AllowedScopes(user("bob"), Node{AccessBlob: blob("data_D")}); got.Has(identity.ScopeWriteData) || !got.Has(identity.ScopeReadData) {
		t.Errorf("bob on public data_D = %v", got.Sorted())
	}
}

// TestTagsListingNeedsReadMetadata: a node whose tags grant the caller only
// write:data is not listed (nor found), as in Tiled; the scopes it grants
// stay what they are for a caller who can see it.
func TestTagsListingNeedsReadMetadata(t *testing.T) {
	p := &Tags{Provider: "toy", Defs: map[string]TagDef{
		"writers": {Users: []Grant{{Name: "wanda", Scopes: []string{identity.ScopeWriteData}}}},
		"readers": {Users: []Grant{{Name: "wanda", Scopes: []string{identity.ScopeReadMetadata}}}},
	}}
	p.Compile()
	wanda := user("wanda")
	for _, tc := range []struct {
		tags    []any
		visible bool
	}{
		{[]any{"writers"}, false},
		{[]any{"readers"}, true},
		{[]any{"writers", "readers"}, true},
	} {
		n := Node{Path: []string{"x"}, AccessBlob: map[string]any{"tags": tc.tags}}
		if got := p.Visible(wanda, n); got != tc.visible {
			t.Errorf("tags %v: visible = %v, want %v", tc.tags, got, tc.visible)
		}
	}
	if got := p.AllowedScopes(wanda, Node{Path: []string{"x"}, AccessBlob: map[string]any{"tags": []any{"writers"}}}); !got.Has(identity.ScopeWriteData) {
		t.Errorf("scopes on a write-only node: %v", got.Sorted())
	}
	if !p.Visible(wanda, Node{Path: []string{"x", "y"}}) {
		t.Error("a node without a blob of its own is as visible as its parent")
	}
}

// TestTagRestrictedKeysFailClosed: policies that know no tags cannot honour
// a key's access tags, so such a key sees nothing there.
func TestTagRestrictedKeysFailClosed(t *testing.T) {
	key := user("alice")
	key.Kind, key.AccessTags = authn.APIKey, []string{"nothing"}
	unrestricted := user("alice")
	simple := &Simple{Provider: "toy", AllAccess: map[string]bool{"alice": true}}
	for name, p := range map[string]Policy{"allow all": AllowAll{}, "simple": simple} {
		n := Node{Path: []string{"A"}}
		if p.Visible(key, n) || len(p.AllowedScopes(key, n)) != 0 {
			t.Errorf("%s: a tag-restricted key sees %v with scopes %v", name, p.Visible(key, n), p.AllowedScopes(key, n).Sorted())
		}
		if !p.Visible(unrestricted, n) || len(p.AllowedScopes(unrestricted, n)) == 0 {
			t.Errorf("%s: the unrestricted caller lost access", name)
		}
		if EnforcesTags(p) {
			t.Errorf("%s claims to enforce tags", name)
		}
	}
	if !EnforcesTags(&Tags{}) {
		t.Error("the tag policy does not claim to enforce tags")
	}
}
