package identity

import (
	"slices"
	"sort"
)

// Scope is an OAuth2-style permission string, named as Tiled names them.
type Scope = string

// The scopes Tiled defines (tiled/scopes.py).
const (
	ScopeReadMetadata    Scope = "read:metadata"
	ScopeReadData        Scope = "read:data"
	ScopeWriteMetadata   Scope = "write:metadata"
	ScopeWriteData       Scope = "write:data"
	ScopeDeleteRevision  Scope = "delete:revision"
	ScopeDeleteNode      Scope = "delete:node"
	ScopeCreateNode      Scope = "create:node"
	ScopeRegister        Scope = "register"
	ScopeMetrics         Scope = "metrics"
	ScopeCreateAPIKeys   Scope = "create:apikeys"
	ScopeRevokeAPIKeys   Scope = "revoke:apikeys"
	ScopeAdminAPIKeys    Scope = "admin:apikeys"
	ScopeReadPrincipals  Scope = "read:principals"
	ScopeWritePrincipals Scope = "write:principals"
	ScopeReadWebhooks    Scope = "read:webhooks"
	ScopeWriteWebhooks   Scope = "write:webhooks"
	// ScopeInherit on an API key means "whatever the owner has when the key is used".
	ScopeInherit Scope = "inherit"
)

// AllScopes lists every scope a principal can hold (a fresh slice each call,
// so no caller can change what another sees).
func AllScopes() []Scope {
	return []Scope{
		ScopeReadMetadata, ScopeReadData, ScopeWriteMetadata, ScopeWriteData,
		ScopeDeleteRevision, ScopeDeleteNode, ScopeCreateNode, ScopeRegister, ScopeMetrics,
		ScopeCreateAPIKeys, ScopeRevokeAPIKeys, ScopeAdminAPIKeys,
		ScopeReadPrincipals, ScopeWritePrincipals, ScopeReadWebhooks, ScopeWriteWebhooks,
	}
}

// Role names as Tiled seeds them.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Roles returns the built-in roles and their scopes, in Tiled's order (the
// order whoami shows them in; see tiled-captures/multiuser-whoami.txt).
func Roles() map[string][]Scope {
	return map[string][]Scope{
		RoleUser: {
			ScopeReadMetadata, ScopeReadData, ScopeCreateNode, ScopeWriteMetadata, ScopeWriteData,
			ScopeDeleteRevision, ScopeDeleteNode, ScopeCreateAPIKeys, ScopeRevokeAPIKeys,
		},
		RoleAdmin: {
			ScopeReadMetadata, ScopeReadData, ScopeCreateNode, ScopeRegister, ScopeWriteMetadata,
			ScopeWriteData, ScopeDeleteRevision, ScopeDeleteNode, ScopeAdminAPIKeys,
			ScopeReadPrincipals, ScopeWritePrincipals, ScopeMetrics, ScopeReadWebhooks, ScopeWriteWebhooks,
		},
	}
}

// ScopeSet is an unordered set of scopes.
type ScopeSet map[Scope]struct{}

// NewScopeSet builds a set from a list.
func NewScopeSet(scopes ...Scope) ScopeSet {
	s := make(ScopeSet, len(scopes))
	for _, sc := range scopes {
		s[sc] = struct{}{}
	}
	return s
}

// Has reports whether every one of the given scopes is in s.
func (s ScopeSet) Has(scopes ...Scope) bool {
	for _, sc := range scopes {
		if _, ok := s[sc]; !ok {
			return false
		}
	}
	return true
}

// Missing lists the scopes of want that s lacks, in want's order.
func (s ScopeSet) Missing(want ...Scope) []Scope {
	var out []Scope
	for _, sc := range want {
		if _, ok := s[sc]; !ok {
			out = append(out, sc)
		}
	}
	return out
}

// Intersect returns the scopes in both s and other.
func (s ScopeSet) Intersect(other ScopeSet) ScopeSet {
	out := ScopeSet{}
	for sc := range s {
		if _, ok := other[sc]; ok {
			out[sc] = struct{}{}
		}
	}
	return out
}

// Sorted lists s in a stable order, for tokens and JSON.
func (s ScopeSet) Sorted() []Scope {
	out := make([]Scope, 0, len(s))
	for sc := range s {
		out = append(out, sc)
	}
	sort.Strings(out)
	return out
}

// ScopesOfRoles unions the scopes of the named roles.
func ScopesOfRoles(roles []Role) ScopeSet {
	s := ScopeSet{}
	for _, r := range roles {
		for _, sc := range r.Scopes {
			s[sc] = struct{}{}
		}
	}
	return s
}

// IsKnownScope reports whether sc is one of Tiled's scopes (or "inherit").
func IsKnownScope(sc Scope) bool {
	return sc == ScopeInherit || slices.Contains(AllScopes(), sc)
}
