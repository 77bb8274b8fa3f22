// Package access decides which nodes of the tree a caller may see, and what
// it may do there. A node the caller may not see is treated exactly as a
// node that does not exist: absent from listings and 404 on direct access
// (Tiled's behaviour), so its existence does not leak.
//
// Two of Tiled's policies are implemented: the older SimpleAccessPolicy
// (per-user access lists of top-level entries, public entries, admins) that
// seed 000 describes, and the current TagBasedAccessPolicy (nodes carry
// access_blob {"tags": [...]}, tags grant roles or scopes to users).
package access

import (
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
)

// Node is what a policy needs to know about a tree node.
type Node struct {
	// Path is the node's key path from the root (empty for the root).
	Path []string
	// AccessBlob is the node's own access_blob (for example
	// {"tags": ["public"]}), nil when it has none and so inherits from its
	// parent. Callers check every node on a path, so inheriting needs no work
	// here: a node without a blob is as visible as its parent.
	AccessBlob map[string]any
}

// Policy filters the tree for a caller.
type Policy interface {
	// Visible reports whether the caller may see the node at all.
	Visible(c *authn.Caller, n Node) bool
	// AllowedScopes is what the policy lets the caller do on a visible node;
	// the request's effective scopes are the caller's scopes intersected
	// with these.
	AllowedScopes(c *authn.Caller, n Node) identity.ScopeSet
}

// AllowAll lets every caller see every node; scopes still apply. It is the
// policy of single-user and public servers and of servers with no
// access_control block. It knows no tags, so a key restricted to access
// tags (made before the server's policy changed) sees nothing: a
// restriction that cannot be honoured fails closed.
type AllowAll struct{}

// Visible implements Policy.
func (AllowAll) Visible(c *authn.Caller, _ Node) bool { return !tagRestricted(c) }

// AllowedScopes implements Policy.
func (AllowAll) AllowedScopes(c *authn.Caller, _ Node) identity.ScopeSet {
	if tagRestricted(c) {
		return identity.ScopeSet{}
	}
	return identity.NewScopeSet(identity.AllScopes()...)
}

// tagRestricted reports whether the caller is a key restricted to access
// tags, which only the tag-based policy can honour.
func tagRestricted(c *authn.Caller) bool { return c != nil && c.AccessTags != nil }

// EnforcesTags reports whether p honours API keys' access tags; where it
// does not, keys with access tags are refused at creation.
func EnforcesTags(p Policy) bool {
	_, ok := p.(*Tags)
	return ok
}

// idFor returns the caller's id for the policy's provider: the identity id
// for users, the principal uuid for services (as Tiled's _get_id), "" if
// the caller has none (anonymous, or logged in through another provider).
func idFor(c *authn.Caller, provider string) string {
	if c == nil {
		return ""
	}
	if c.PrincipalType == identity.TypeService {
		return c.PrincipalID.String()
	}
	for _, i := range c.Identities {
		if i.Provider == provider {
			return i.ID
		}
	}
	return ""
}

// isPrincipal reports whether the caller is a logged-in principal.
func isPrincipal(c *authn.Caller) bool {
	return c.IsPrincipal()
}
