package access

import (
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
)

// PublicTag is the tag readable by everyone (Tiled: "public").
const PublicTag = "public"

// Grant gives scopes on a tag to a user or a group.
type Grant struct {
	Name   string
	Scopes []string
}

// TagDef is one tag: who gets which scopes on nodes carrying it, and which
// other tags it includes (auto_tags), as in Tiled's tag-definitions file.
type TagDef struct {
	Users    []Grant
	Groups   []Grant
	AutoTags []string
}

// Tags is Tiled's TagBasedAccessPolicy over a tag-definitions file read
// directly (Tiled compiles the same YAML into SQLite first). A node is
// visible when its access_blob names a tag that grants the caller scopes, or
// a public tag (to every logged-in user, and to anonymous callers when
// anonymous access is allowed), or when it is {"user": id} of the caller.
// Callers holding admin:apikeys see everything (Tiled's _is_admin).
type Tags struct {
	Provider string
	// Defs are the tag definitions with roles already resolved to scopes.
	Defs map[string]TagDef
	// Groups maps a group name to its member ids. Tiled resolves groups
	// through a pluggable parser; here they are listed in the same file.
	Groups map[string][]string
	// Scopes bounds what any tag can grant (Tiled's policy "scopes" arg).
	Scopes         identity.ScopeSet
	AllowAnonymous bool

	// resolved maps tag -> id -> scopes, after auto_tags, built by Compile.
	resolved map[string]map[string]identity.ScopeSet
	public   map[string]bool
}

// Compile resolves auto_tags (transitively) and groups, the work Tiled's
// tag compiler does ahead of time. It must be called once before use.
func (p *Tags) Compile() {
	p.resolved = map[string]map[string]identity.ScopeSet{}
	p.public = map[string]bool{PublicTag: true}
	for tag := range p.Defs {
		grants := map[string]identity.ScopeSet{}
		seen := map[string]bool{}
		var walk func(t string)
		walk = func(t string) {
			if seen[t] {
				return
			}
			seen[t] = true
			if t == PublicTag {
				p.public[tag] = true
				return
			}
			def, ok := p.Defs[t]
			if !ok {
				return
			}
			add := func(id string, scopes []string) {
				if grants[id] == nil {
					grants[id] = identity.ScopeSet{}
				}
				for _, s := range scopes {
					grants[id][s] = struct{}{}
				}
			}
			for _, u := range def.Users {
				add(u.Name, u.Scopes)
			}
			for _, g := range def.Groups {
				for _, member := range p.Groups[g.Name] {
					add(member, g.Scopes)
				}
			}
			for _, a := range def.AutoTags {
				walk(a)
			}
		}
		walk(tag)
		p.resolved[tag] = grants
	}
}

func (p *Tags) isAdmin(c *authn.Caller) bool {
	return c != nil && (c.Kind == authn.SingleUser || c.Scopes.Has(identity.ScopeAdminAPIKeys))
}

// Visible implements Policy. A node without a blob of its own is as
// visible as its parent (callers check every node on a path). A node with
// one is listed only for callers it grants read:metadata, as Tiled filters
// listings: a tag that grants only write:data does not reveal a node.
func (p *Tags) Visible(c *authn.Caller, n Node) bool {
	if len(n.AccessBlob) == 0 {
		return true
	}
	return p.AllowedScopes(c, n).Has(identity.ScopeReadMetadata)
}

// AllowedScopes implements Policy.
func (p *Tags) AllowedScopes(c *authn.Caller, n Node) identity.ScopeSet {
	all := p.Scopes
	if all == nil {
		all = identity.NewScopeSet(identity.AllScopes()...)
	}
	if p.isAdmin(c) || len(n.AccessBlob) == 0 {
		return all
	}
	id := ""
	if isPrincipal(c) {
		id = idFor(c, p.Provider)
	}
	allowed := identity.ScopeSet{}
	if owner, ok := n.AccessBlob["user"].(string); ok {
		// A user-owned node; API keys restricted to tags cannot act on it.
		if id != "" && owner == id && c.AccessTags == nil {
			return all
		}
		return allowed
	}
	for _, tag := range tagsOf(n.AccessBlob) {
		if c != nil && c.AccessTags != nil && !contains(c.AccessTags, tag) {
			continue
		}
		if p.public[tag] && (isPrincipal(c) || p.AllowAnonymous) {
			for s := range authn.PublicScopes() {
				allowed[s] = struct{}{}
			}
		}
		if id == "" {
			continue
		}
		if granted, ok := p.resolved[tag][id]; ok && len(granted.Intersect(all)) == len(granted) {
			for s := range granted {
				allowed[s] = struct{}{}
			}
		}
	}
	return allowed
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tagsOf reads access_blob["tags"], which is []any when it came from JSON or
// YAML and []string when a tree built it in Go.
func tagsOf(blob map[string]any) []string {
	switch t := blob["tags"].(type) {
	case []string:
		return t
	case []any:
		out := make([]string, 0, len(t))
		for _, v := range t {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
