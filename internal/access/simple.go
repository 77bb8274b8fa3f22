package access

import (
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
)

// Simple is Tiled's SimpleAccessPolicy: usernames map to the top-level
// entries they may see (or to all of them); public entries are visible to
// every logged-in user, and to anonymous callers when the server allows
// anonymous access (seed 000); admins see everything with every scope.
// Everyone else gets Scopes on what they see.
type Simple struct {
	// Provider whose identity ids the access lists name.
	Provider string
	// AccessLists maps an id to the top-level keys it may see.
	AccessLists map[string][]string
	// AllAccess lists ids that may see every entry.
	AllAccess map[string]bool
	// Public lists top-level keys everyone may see.
	Public map[string]bool
	// Admins see and may do everything.
	Admins map[string]bool
	// Scopes are what non-admins may do on entries they see (default: all).
	Scopes identity.ScopeSet
	// AllowAnonymous lets callers without credentials see public entries.
	AllowAnonymous bool
}

// Visible implements Policy. The decision is made on the first path
// segment; what lies under a visible entry is visible.
func (p *Simple) Visible(c *authn.Caller, n Node) bool {
	if tagRestricted(c) {
		return false // see AllowAll
	}
	if len(n.Path) == 0 || (c != nil && c.Kind == authn.SingleUser) {
		return true
	}
	key := n.Path[0]
	if !isPrincipal(c) {
		return p.AllowAnonymous && p.Public[key]
	}
	id := idFor(c, p.Provider)
	if p.Admins[id] || p.AllAccess[id] || p.Public[key] {
		return true
	}
	for _, k := range p.AccessLists[id] {
		if k == key {
			return true
		}
	}
	return false
}

// AllowedScopes implements Policy.
func (p *Simple) AllowedScopes(c *authn.Caller, _ Node) identity.ScopeSet {
	switch {
	case tagRestricted(c):
		return identity.ScopeSet{}
	case c != nil && c.Kind == authn.SingleUser:
		return identity.NewScopeSet(identity.AllScopes()...)
	case !isPrincipal(c):
		return authn.PublicScopes()
	case p.Admins[idFor(c, p.Provider)]:
		return identity.NewScopeSet(identity.AllScopes()...)
	case p.Scopes == nil:
		return identity.NewScopeSet(identity.AllScopes()...)
	default:
		return p.Scopes
	}
}
