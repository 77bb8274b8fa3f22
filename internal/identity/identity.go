// Package identity owns who a caller is: principals (users and services), the
// external identities they log in with (one principal may have several), their
// roles, and the API keys they hold. It defines the Store that every backend
// implements; the backends live under internal/store.
package identity

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// PrincipalType is "user" (logs in through a provider) or "service" (made by
// an admin, acts only through API keys).
type PrincipalType string

const (
	TypeUser    PrincipalType = "user"
	TypeService PrincipalType = "service"
)

// Principal is one account. Identities and Roles are filled in by reads.
type Principal struct {
	ID             uuid.UUID
	Type           PrincipalType
	Identities     []Identity
	Roles          []Role
	CreatedAt      time.Time
	LatestActivity *time.Time
}

// Identity is an external name for a principal: (provider, id) is unique.
type Identity struct {
	Provider    string
	ID          string
	PrincipalID uuid.UUID
	LatestLogin *time.Time
}

// Role is a named bundle of scopes. Only the name is stored per principal;
// the scopes come from Roles(), so changing a role's scopes needs no migration.
type Role struct {
	Name   string
	Scopes []Scope
}

// RoleByName returns the built-in role with that name.
func RoleByName(name string) (Role, bool) {
	scopes, ok := Roles()[name]
	return Role{Name: name, Scopes: scopes}, ok
}

// APIKey is a long-lived credential. Only a hash of the secret is kept:
// FirstEight (the secret's first eight hex characters) finds the candidates,
// SecretHash (SHA-256 of the secret's bytes) is compared in constant time.
type APIKey struct {
	ID             uuid.UUID
	PrincipalID    uuid.UUID
	FirstEight     string
	SecretHash     []byte
	Scopes         []Scope
	AccessTags     []string // nil means "no restriction"
	Note           string
	ExpiresAt      *time.Time
	CreatedAt      time.Time
	LatestActivity *time.Time
}

// Page selects a slice of a listing.
type Page struct {
	Offset int
	Limit  int
}

// Store persists principals, identities, roles and API keys. Every method
// takes ctx first; errors are storeerr.ErrNotFound, storeerr.ErrConflict or
// storeerr.ErrUnavailable (wrapped), or another error for a bug.
type Store interface {
	// CreatePrincipal stores p (ID, Type, CreatedAt and role names are used)
	// and returns it as read back.
	CreatePrincipal(ctx context.Context, p Principal) (Principal, error)
	// GetPrincipal returns a principal with its identities and roles.
	GetPrincipal(ctx context.Context, id uuid.UUID) (Principal, error)
	// ListPrincipals returns a page ordered by creation time, and the total count.
	ListPrincipals(ctx context.Context, page Page) ([]Principal, int, error)
	// DeletePrincipal removes a principal with its identities, roles, API keys
	// and sessions.
	DeletePrincipal(ctx context.Context, id uuid.UUID) error

	// LoginIdentity finds the principal of (provider, id), or creates a user
	// principal with newRoles and that identity if there is none, in one
	// transaction: two replicas logging in the same new user at once end with
	// one principal. It records now as the identity's latest login.
	LoginIdentity(ctx context.Context, provider, id string, newRoles []string, now time.Time) (p Principal, created bool, err error)
	// LoginIdentityAs is LoginIdentity for providers that name the person
	// with a stable id of their own (Entra's uuid5(iss|sub)): a known
	// identity logs in to its principal as before; a new one joins the
	// principal principalID, which is created (a user with newRoles) if it
	// does not exist yet. created reports whether the principal was made.
	LoginIdentityAs(ctx context.Context, provider, id string, principalID uuid.UUID, newRoles []string, now time.Time) (p Principal, created bool, err error)
	// AddIdentity links another identity to an existing principal.
	// ErrConflict if the identity belongs to a principal already.
	AddIdentity(ctx context.Context, principalID uuid.UUID, provider, id string) error
	// GrantRole gives a principal a role; granting a role it has is not an error.
	GrantRole(ctx context.Context, principalID uuid.UUID, role string) error
	// RevokeRole takes a role away; ErrNotFound if it did not have it.
	RevokeRole(ctx context.Context, principalID uuid.UUID, role string) error
	// TouchPrincipal records activity, at most once per minInterval (a
	// conditional update, so busy principals do not write on every request).
	// A missing principal is not an error: there is nothing to record.
	TouchPrincipal(ctx context.Context, id uuid.UUID, now time.Time, minInterval time.Duration) error

	// CreateAPIKey stores k. ErrConflict if the principal already has a key
	// with the same FirstEight (the caller draws a new secret and retries).
	// With limit > 0 it is storeerr.ErrLimit, and nothing is written, if the
	// principal already has limit keys unexpired at k.CreatedAt; concurrent
	// calls cannot pass the limit together.
	CreateAPIKey(ctx context.Context, k APIKey, limit int) error
	// APIKeysByFirstEight returns the unexpired keys whose secret begins with
	// firstEight, for the caller to compare hashes in constant time.
	APIKeysByFirstEight(ctx context.Context, firstEight string, now time.Time) ([]APIKey, error)
	// ListAPIKeys returns a principal's keys, oldest first.
	ListAPIKeys(ctx context.Context, principalID uuid.UUID) ([]APIKey, error)
	// CountAPIKeys counts a principal's unexpired keys.
	CountAPIKeys(ctx context.Context, principalID uuid.UUID, now time.Time) (int, error)
	// DeleteAPIKey revokes a principal's key. ErrNotFound if it has none by that prefix.
	DeleteAPIKey(ctx context.Context, principalID uuid.UUID, firstEight string) error
	// TouchAPIKey records use at most once per minInterval (conditional
	// update). A missing key is not an error.
	TouchAPIKey(ctx context.Context, id uuid.UUID, now time.Time, minInterval time.Duration) error
	// TouchAPIKeys is TouchAPIKey for many keys in one statement, for
	// activity batched off the request path.
	TouchAPIKeys(ctx context.Context, ids []uuid.UUID, now time.Time, minInterval time.Duration) error
}

// Changes that a replica may have cached (DeletePrincipal, GrantRole when it
// grants, RevokeRole, AddIdentity, DeleteAPIKey) are appended to the
// revocation log in the same transaction (see sessions.Revocation), so that
// every replica's cache of keys and revocations follows them.
