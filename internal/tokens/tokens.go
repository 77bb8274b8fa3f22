// Package tokens mints and checks the three kinds of bearer secret the
// server hands out: access tokens (HS256 JWTs in Tiled's claim layout),
// refresh tokens (opaque, rotated, stored only as hashes) and API keys
// (Tiled's 72-hex-character secrets, stored only as hashes).
//
// Keys come from Tiled's secret_keys: the first signs, every one verifies,
// so operators rotate keys across replicas by prepending a new one.
package tokens

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Errors from verification. They say nothing about which check failed, on
// purpose: the HTTP layer answers all of them with Tiled's generic messages.
var (
	ErrMalformed = errors.New("malformed token")
	ErrExpired   = errors.New("token expired")
	ErrInvalid   = errors.New("invalid token")
)

// Keys is the ordered list of secret keys (secret_keys / TILED_SECRET_KEYS).
type Keys struct {
	keys [][]byte
	// refresh holds each key's refresh-token subkey, derived once: every
	// refresh derives secrets under them.
	refresh [][]byte
}

func keysOf(keys [][]byte) Keys {
	k := Keys{keys: keys, refresh: make([][]byte, len(keys))}
	for i, key := range keys {
		k.refresh[i] = subkey(key, refreshPurpose)
	}
	return k
}

const refreshPurpose = "tiled refresh token v1"

// NewKeys checks and wraps the configured keys; the first one signs.
func NewKeys(keys []string) (Keys, error) {
	if len(keys) == 0 {
		return Keys{}, errors.New("at least one secret key is required")
	}
	raw := make([][]byte, len(keys))
	for i, s := range keys {
		if s == "" {
			return Keys{}, fmt.Errorf("secret key %d is empty", i)
		}
		raw[i] = []byte(s)
	}
	return keysOf(raw), nil
}

// RandomKeys makes one random key, for a server started without
// secret_keys: its sessions end with the process.
func RandomKeys() Keys {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return keysOf([][]byte{[]byte(hex.EncodeToString(b))})
}

// subkey derives a key for one purpose, so a refresh-token MAC can never be
// mistaken for a JWT signature made with the same configured secret.
func subkey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Identity is an (id, provider) pair as carried in the "ids" claim.
type Identity struct {
	ID  string `json:"id"`
	IDP string `json:"idp"`
}

// AccessClaims is Tiled's access-token payload (tiled/server/authentication.py
// create_access_token), plus "sid" so that revoking a session stops its
// access tokens at once, and "iat".
type AccessClaims struct {
	Subject     string         `json:"sub"`
	SubjectType string         `json:"sub_typ"`
	Scopes      []string       `json:"scp"`
	State       map[string]any `json:"state"`
	Identities  []Identity     `json:"ids"`
	SessionID   string         `json:"sid,omitempty"`
	Type        string         `json:"type"`
	IssuedAt    int64          `json:"iat,omitempty"`
	ExpiresAt   int64          `json:"exp"`
}

// GetExpirationTime and friends implement jwt.Claims.
func (c AccessClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}
func (c AccessClaims) GetIssuedAt() (*jwt.NumericDate, error)  { return nil, nil }
func (c AccessClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c AccessClaims) GetIssuer() (string, error)              { return "", nil }
func (c AccessClaims) GetSubject() (string, error)             { return c.Subject, nil }
func (c AccessClaims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// PrincipalID parses the "sub" claim (uuid hex without dashes, as Tiled).
func (c AccessClaims) PrincipalID() (uuid.UUID, error) { return uuid.Parse(c.Subject) }

// SignAccess mints an access token valid until exp, signed with the first key.
func (k Keys) SignAccess(c AccessClaims, now, exp time.Time) (string, error) {
	c.Type = "access"
	c.IssuedAt = now.Unix()
	c.ExpiresAt = exp.Unix()
	if c.State == nil {
		c.State = map[string]any{}
	}
	// What jwt.Token.SignedString does, less marshalling the header, which
	// never changes: the bytes are the same (TestGoldenTokens).
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(hs256Header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(sha256.Size))
	buf = append(append(buf, hs256Header...), '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := jwt.SigningMethodHS256.Sign(string(buf), k.keys[0])
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return string(enc.AppendEncode(append(buf, '.'), sig)), nil
}

// hs256Header is the JOSE header of every access token, encoded (as
// golang-jwt writes it: its keys sorted).
const hs256Header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// VerifyAccess checks an access token against every key. Only HS256 is
// accepted, so "alg": "none" and RS/HS confusion are rejected before any
// key is tried. An expired token with a valid signature is ErrExpired.
func (k Keys) VerifyAccess(token string, now time.Time) (AccessClaims, error) {
	if strings.Count(token, ".") != 2 || len(token) > 16<<10 {
		return AccessClaims{}, ErrMalformed
	}
	var expired bool
	for _, key := range k.keys {
		var c AccessClaims
		_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithTimeFunc(func() time.Time { return now }),
			jwt.WithExpirationRequired())
		switch {
		case err == nil:
			if c.Type != "access" {
				return AccessClaims{}, ErrInvalid
			}
			if _, perr := c.PrincipalID(); perr != nil {
				return AccessClaims{}, ErrInvalid
			}
			return c, nil
		case errors.Is(err, jwt.ErrTokenExpired):
			// The signature checked out with this key; only time failed.
			expired = true
		}
	}
	if expired {
		return AccessClaims{}, ErrExpired
	}
	return AccessClaims{}, ErrInvalid
}

// Refresh tokens are "<session id hex>.<generation>.<secret>". The secret is
// an HMAC of the session id and generation under the signing key, so the
// server can re-derive the token of a generation it issued without storing
// it: a refresh that loses a race inside the grace window is handed the very
// token the winner got (both callers end on the same session), and a replayed
// old token is recognised as ours (reuse) rather than as a forgery. Only its
// SHA-256 is stored.

// RefreshToken is a parsed refresh token.
type RefreshToken struct {
	SessionID  uuid.UUID
	Generation int64
	Secret     string
}

// String encodes the token.
func (t RefreshToken) String() string {
	return hex.EncodeToString(t.SessionID[:]) + "." + strconv.FormatInt(t.Generation, 10) + "." + t.Secret
}

// Hash is what the store keeps for this token.
func (t RefreshToken) Hash() []byte { return HashSecret(t.Secret) }

// ParseRefresh splits a refresh token; it checks form, not validity.
func ParseRefresh(s string) (RefreshToken, error) {
	if len(s) > 256 {
		return RefreshToken{}, ErrMalformed
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 32 {
		return RefreshToken{}, ErrMalformed
	}
	// Every part must be in the one form this server writes (lower-case
	// hex, the shortest decimal, strict base64), so that a token has one
	// spelling: "one character off" is never the same token.
	raw, err := hex.DecodeString(parts[0])
	if err != nil || hex.EncodeToString(raw) != parts[0] {
		return RefreshToken{}, ErrMalformed
	}
	sid, err := uuid.FromBytes(raw)
	if err != nil {
		return RefreshToken{}, ErrMalformed
	}
	gen, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || gen < 0 || parts[1] != strconv.FormatInt(gen, 10) {
		return RefreshToken{}, ErrMalformed
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(parts[2]); err != nil || len(b) != sha256.Size {
		return RefreshToken{}, ErrMalformed
	}
	return RefreshToken{SessionID: sid, Generation: gen, Secret: parts[2]}, nil
}

// Refresh returns the refresh token of a session's generation, derived with
// the signing key.
func (k Keys) Refresh(sid uuid.UUID, gen int64) RefreshToken {
	return RefreshToken{SessionID: sid, Generation: gen, Secret: refreshSecret(k.refresh[0], sid, gen)}
}

// IssuedRefresh reports whether t was issued by this server under any key:
// a token that passes is a genuine old token, not a guess.
func (k Keys) IssuedRefresh(t RefreshToken) bool {
	for _, key := range k.refresh {
		if hmac.Equal([]byte(refreshSecret(key, t.SessionID, t.Generation)), []byte(t.Secret)) {
			return true
		}
	}
	return false
}

// RefreshForHash returns the token of generation gen whose hash is want,
// trying every key (the signing key may have changed since it was issued).
func (k Keys) RefreshForHash(sid uuid.UUID, gen int64, want []byte) (RefreshToken, bool) {
	for _, key := range k.refresh {
		t := RefreshToken{SessionID: sid, Generation: gen, Secret: refreshSecret(key, sid, gen)}
		if hmac.Equal(t.Hash(), want) {
			return t, true
		}
	}
	return RefreshToken{}, false
}

// refreshSecret is the secret of a session's generation under subkey (a
// Keys.refresh entry).
func refreshSecret(subkey []byte, sid uuid.UUID, gen int64) string {
	m := hmac.New(sha256.New, subkey)
	m.Write(sid[:])
	var buf [20]byte
	m.Write(strconv.AppendInt(buf[:0], gen, 10))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0]))
}

// HashSecret is the SHA-256 that the store keeps instead of a secret.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// APIKeySecretBytes is Tiled's API key length: 36 random bytes, 72 hex chars.
const APIKeySecretBytes = 36

// NewAPIKey draws a fresh API key secret (hex) and returns it with the parts
// the store keeps: its first eight characters and the SHA-256 of its bytes
// (Tiled hashes the decoded bytes, tiled/server/authentication.py).
func NewAPIKey() (secret, firstEight string, hash []byte) {
	b := make([]byte, APIKeySecretBytes)
	_, _ = rand.Read(b)
	secret = hex.EncodeToString(b)
	h := sha256.Sum256(b)
	return secret, secret[:8], h[:]
}

// ParseAPIKey decodes a presented API key into its lookup prefix and hash.
// Keys that are not hex, or not 72 characters, cannot be ours.
func ParseAPIKey(secret string) (firstEight string, hash []byte, err error) {
	if len(secret) != 2*APIKeySecretBytes {
		return "", nil, ErrMalformed
	}
	b, err := hex.DecodeString(secret)
	if err != nil {
		return "", nil, ErrMalformed
	}
	h := sha256.Sum256(b)
	return strings.ToLower(secret[:8]), h[:], nil
}
