// Package apikeys issues and checks principals' API keys. Only a hash of a
// key is stored; the secret is shown once, at creation.
package apikeys

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/storeerr"
	"github.com/tiledgo/server/internal/tokens"
)

// Limits, as Tiled's (tiled/server/authentication.py).
const (
	MaxKeysPerPrincipal = 100
	// MaxExpiresIn caps a key's lifetime in seconds: 100 years of 365
	// days. A longer one would overflow a time.Duration (at 9.2e9 s) and
	// land in the past; no key needs to outlive its creator's career.
	MaxExpiresIn int64 = 100 * 365 * 24 * 3600
	// touchInterval throttles latest_activity writes: at most one per key per
	// minute, however busy the key is.
	touchInterval = time.Minute
)

// Errors from Issue, mapped by the HTTP layer.
var (
	ErrScopesNotHeld   = errors.New("requested scopes exceed the principal's")
	ErrTagsWithScopes  = errors.New("access tags cannot be combined with these scopes")
	ErrTagsNotHeld     = errors.New("requested access tags exceed the creator's")
	ErrTagsUnenforced  = errors.New("access tags are not enforced by this server's access policy")
	ErrTooManyKeys     = errors.New("too many API keys")
	ErrInvalidLifetime = errors.New("expires_in must be positive")
	ErrLifetimeTooLong = errors.New("expires_in exceeds the maximum")
)

// Service issues and verifies API keys.
type Service struct {
	Identities identity.Store
	Now        func() time.Time
	Logger     *slog.Logger
	// TagsEnforced says whether the access policy honours a key's access
	// tags (Tiled's TagBasedAccessPolicy). Where it does not, a key asking
	// for them is refused rather than issued with a restriction that would
	// silently not apply.
	TagsEnforced bool
	// Cache, when set, answers VerifyAPIKey from this replica's memory
	// while it is in sync with the revocation log (*authcache.Cache).
	Cache KeyCache
	// Activity, when set, records key use off the request path
	// (*ActivityBatcher); nil writes it in the request, once a minute.
	Activity ActivityRecorder
	// Observe counts checks (metrics); nil counts nothing.
	Observe CheckObserver
}

// KeyCache holds verified keys by the SHA-256 of their secret.
type KeyCache interface {
	// Key returns a cached key, only while the cache is in sync.
	Key(hash [32]byte) (*authcache.Key, bool)
	// KeyEpoch is read before the database is, and given to PutKey after,
	// so that a read that raced a change is not cached.
	KeyEpoch() uint64
	PutKey(epoch uint64, hash [32]byte, k *authcache.Key)
}

// CheckObserver counts API-key checks by outcome ("valid", "invalid",
// "error") and source ("cache", "database"), for metrics.
type CheckObserver interface {
	APIKeyCheck(outcome, source string)
}

// ActivityRecorder takes note that a key was used at now.
type ActivityRecorder interface {
	Touch(id uuid.UUID, now time.Time)
}

// Grant is what a creator may hand out.
type Grant struct {
	// Scopes: the owner's role scopes, narrowed to the creator's own scopes
	// when the creator is itself a limited key.
	Scopes identity.ScopeSet
	// AccessTags is the creator's own restriction (nil: none). A restricted
	// creator may only make keys restricted to some of its tags, as its
	// scopes bound the new key's scopes.
	AccessTags []string
}

// Request is what a caller asks for (Tiled's APIKeyRequestParams).
type Request struct {
	// Scopes nil means ["inherit"]: whatever the owner holds at use time.
	Scopes     []string
	ExpiresIn  *int64
	Note       string
	AccessTags []string
}

// Issued is a new key with its secret, which is never stored.
type Issued struct {
	Key    identity.APIKey
	Secret string
}

// Issue makes a key for owner within what the creator may grant, so that a
// key cannot mint a broader key, in scopes or in reach.
func (s *Service) Issue(ctx context.Context, owner identity.Principal, grant Grant, req Request) (Issued, error) {
	grantable := grant.Scopes
	if req.AccessTags != nil && !s.TagsEnforced {
		return Issued{}, ErrTagsUnenforced
	}
	if grant.AccessTags != nil {
		if req.AccessTags == nil {
			return Issued{}, fmt.Errorf("%w: an unrestricted key", ErrTagsNotHeld)
		}
		for _, t := range req.AccessTags {
			if !slices.Contains(grant.AccessTags, t) {
				return Issued{}, fmt.Errorf("%w: %q", ErrTagsNotHeld, t)
			}
		}
	}
	scopes := req.Scopes
	if scopes == nil {
		scopes = []string{identity.ScopeInherit}
	}
	ownerScopes := identity.ScopesOfRoles(owner.Roles)
	for _, sc := range scopes {
		ok := grantable.Has(sc)
		if sc == identity.ScopeInherit {
			// inherit grants all the owner has: only a creator holding all of it may.
			ok = len(grantable.Intersect(ownerScopes)) == len(ownerScopes)
		}
		if !ok {
			return Issued{}, fmt.Errorf("%w: %v", ErrScopesNotHeld, sc)
		}
	}
	if req.AccessTags != nil && (slices.Contains(scopes, identity.ScopeAdminAPIKeys) || slices.Contains(scopes, identity.ScopeInherit)) {
		return Issued{}, ErrTagsWithScopes
	}
	now := s.Now().UTC()
	var exp *time.Time
	if req.ExpiresIn != nil {
		if *req.ExpiresIn <= 0 {
			return Issued{}, ErrInvalidLifetime
		}
		if *req.ExpiresIn > MaxExpiresIn {
			return Issued{}, ErrLifetimeTooLong
		}
		e := now.Add(time.Duration(*req.ExpiresIn) * time.Second)
		exp = &e
	}
	// The lookup prefix is unique per principal; on the rare clash, draw again.
	for attempt := 0; ; attempt++ {
		secret, first, hash := tokens.NewAPIKey()
		k := identity.APIKey{
			ID: uuid.New(), PrincipalID: owner.ID, FirstEight: first, SecretHash: hash,
			Scopes: scopes, AccessTags: req.AccessTags, Note: req.Note, ExpiresAt: exp, CreatedAt: now,
		}
		// The store counts and inserts atomically: concurrent creations
		// cannot take the owner past the limit together.
		err := s.Identities.CreateAPIKey(ctx, k, MaxKeysPerPrincipal)
		if err == nil {
			return Issued{Key: k, Secret: secret}, nil
		}
		if errors.Is(err, storeerr.ErrLimit) {
			return Issued{}, fmt.Errorf("%w: %w", ErrTooManyKeys, err)
		}
		if !errors.Is(err, storeerr.ErrConflict) || attempt >= 3 {
			return Issued{}, fmt.Errorf("store API key: %w", err)
		}
	}
}

// Lookup finds the stored key matching a presented secret, comparing hashes
// in constant time. authn.ErrInvalidAPIKey if none matches or it expired.
func (s *Service) Lookup(ctx context.Context, secret string) (identity.APIKey, error) {
	first, hash, err := tokens.ParseAPIKey(secret)
	if err != nil {
		return identity.APIKey{}, authn.ErrInvalidAPIKey
	}
	cands, err := s.Identities.APIKeysByFirstEight(ctx, first, s.Now().UTC())
	if err != nil {
		return identity.APIKey{}, fmt.Errorf("look up API key: %w", err)
	}
	for _, k := range cands {
		if subtle.ConstantTimeCompare(k.SecretHash, hash) == 1 {
			return k, nil
		}
	}
	return identity.APIKey{}, authn.ErrInvalidAPIKey
}

// VerifyAPIKey implements authn.APIKeyVerifier. The key's scopes are
// intersected with the owner's current role scopes, so a key whose owner
// lost a scope loses it too; "inherit" resolves to the owner's scopes now.
// With a Cache in sync, a key verified before is answered from memory: the
// cache drops it when the key is deleted or its owner changes or goes.
func (s *Service) VerifyAPIKey(ctx context.Context, secret string) (*authn.Caller, error) {
	c, source, err := s.verify(ctx, secret)
	if s.Observe != nil {
		outcome := "valid"
		switch {
		case errors.Is(err, authn.ErrInvalidAPIKey):
			outcome = "invalid"
		case err != nil:
			outcome = "error"
		}
		s.Observe.APIKeyCheck(outcome, source)
	}
	return c, err
}

// verify is VerifyAPIKey, also saying where the answer came from.
func (s *Service) verify(ctx context.Context, secret string) (*authn.Caller, string, error) {
	_, hash, err := tokens.ParseAPIKey(secret)
	if err != nil || len(hash) != 32 {
		return nil, "none", authn.ErrInvalidAPIKey
	}
	h := [32]byte(hash)
	now := s.Now().UTC()
	var epoch uint64
	if s.Cache != nil {
		if k, ok := s.Cache.Key(h); ok {
			if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
				return nil, "cache", authn.ErrInvalidAPIKey
			}
			s.touch(ctx, k.ID, now)
			return caller(k), "cache", nil
		}
		epoch = s.Cache.KeyEpoch()
	}
	k, err := s.Lookup(ctx, secret)
	if err != nil {
		return nil, "database", err
	}
	p, err := s.Identities.GetPrincipal(ctx, k.PrincipalID)
	if errors.Is(err, storeerr.ErrNotFound) {
		return nil, "database", authn.ErrInvalidAPIKey
	} else if err != nil {
		return nil, "database", fmt.Errorf("read key owner: %w", err)
	}
	owner := identity.ScopesOfRoles(p.Roles)
	scopes := identity.NewScopeSet(k.Scopes...).Intersect(owner)
	if slices.Contains(k.Scopes, identity.ScopeInherit) {
		scopes = owner
	}
	ck := &authcache.Key{
		ID: k.ID, PrincipalID: p.ID, FirstEight: k.FirstEight, PrincipalType: p.Type, Identities: p.Identities,
		Scopes: scopes, AccessTags: k.AccessTags, ExpiresAt: k.ExpiresAt,
	}
	if s.Cache != nil {
		s.Cache.PutKey(epoch, h, ck)
	}
	s.touch(ctx, k.ID, now)
	return caller(ck), "database", nil
}

// caller is the request's caller for a verified key; each request gets its
// own, so a handler cannot change what the next one sees.
func caller(k *authcache.Key) *authn.Caller {
	return &authn.Caller{
		Kind: authn.APIKey, PrincipalID: k.PrincipalID, PrincipalType: k.PrincipalType,
		Identities: slices.Clone(k.Identities), Scopes: maps.Clone(k.Scopes), APIKeyFirstEight: k.FirstEight,
		AccessTags: slices.Clone(k.AccessTags), Admin: k.Scopes.Has(identity.ScopeWritePrincipals),
	}
}

// touch records activity: batched when an ActivityRecorder is set,
// otherwise written now (at most once per touchInterval per key).
func (s *Service) touch(ctx context.Context, id uuid.UUID, now time.Time) {
	if s.Activity != nil {
		s.Activity.Touch(id, now)
		return
	}
	if err := s.Identities.TouchAPIKey(ctx, id, now, touchInterval); err != nil {
		// Activity is bookkeeping; a failed write must not fail the request.
		s.Logger.WarnContext(ctx, "record API key activity", "error", err)
	}
}
