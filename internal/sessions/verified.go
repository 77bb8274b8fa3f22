package sessions

import (
	"crypto/sha256"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tiledgo/server/internal/authn"
)

// defaultVerifiedTokens bounds the access tokens a Manager remembers.
const defaultVerifiedTokens = 10_000

// verifiedTokens remembers access tokens whose signature and claims have
// been checked, by the SHA-256 of the token, until they expire. Parsing and
// checking an HS256 JWT (base64, JSON, HMAC) was a quarter of a bearer
// request's CPU; a busy client presents the same token for its whole life.
// Only the signature check is spared: expiry is checked against the clock,
// and revocation, on every request.
type verifiedTokens struct {
	mu     sync.RWMutex
	tokens map[[32]byte]verified
}

type verified struct {
	caller authn.Caller // template: each request gets a copy
	exp    time.Time
}

func (v *verifiedTokens) get(token string, now time.Time, max int) (*authn.Caller, [32]byte, bool) {
	h := sha256.Sum256([]byte(token))
	if max < 0 {
		return nil, h, false
	}
	v.mu.RLock()
	e, ok := v.tokens[h]
	v.mu.RUnlock()
	// Strictly before: at the expiry instant itself the full check decides.
	if !ok || !now.Before(e.exp) {
		return nil, h, false
	}
	// A copy of the struct; its scopes and identities are shared with the
	// cache, which is safe because a resolved Caller is read-only (nothing
	// writes into its maps or slices; narrowing makes new ones), and worth
	// it: cloning them cost more than the rest of the lookup.
	c := e.caller
	return &c, h, true
}

func (v *verifiedTokens) put(h [32]byte, c *authn.Caller, exp, now time.Time, max int) {
	if max < 0 {
		return
	}
	if max == 0 {
		max = defaultVerifiedTokens
	}
	e := verified{caller: *c, exp: exp}
	e.caller.Scopes = maps.Clone(c.Scopes)
	e.caller.Identities = slices.Clone(c.Identities)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tokens == nil {
		v.tokens = map[[32]byte]verified{}
	}
	if len(v.tokens) >= max {
		// Expired ones first; if none, an arbitrary one (map order).
		for k, old := range v.tokens {
			if !now.Before(old.exp) {
				delete(v.tokens, k)
			}
		}
		for k := range v.tokens {
			if len(v.tokens) < max {
				break
			}
			delete(v.tokens, k)
		}
	}
	v.tokens[h] = e
}
