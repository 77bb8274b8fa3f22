// Package access decides which nodes of the tree a caller may see. A node the
// caller may not see is treated exactly as a node that does not exist: absent
// from listings and 404 on direct access (Tiled's behaviour), so its
// existence does not leak.
package access

import (
	"github.com/tiledgo/server/internal/authn"
)

// Node is what a policy needs to know about a tree node.
type Node struct {
	// Path is the node's key path from the root ("" parts are never present).
	Path []string
	// AccessBlob is the node's access_blob (for example {"tags": ["public"]}),
	// nil when the node carries none.
	AccessBlob map[string]any
}

// Policy filters the tree for a caller.
type Policy interface {
	// Visible reports whether the caller may see the node at all.
	Visible(c *authn.Caller, n Node) bool
}

// AllowAll lets every caller see every node; scopes still apply. It is the
// policy of single-user and public servers and of servers with no
// access_control block.
type AllowAll struct{}

// Visible implements Policy.
func (AllowAll) Visible(*authn.Caller, Node) bool { return true }
