package bearerjwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// key is one verification key of the issuer.
type key struct {
	kid string
	// alg is the JWK's "alg" when it names one: the key then verifies only
	// that algorithm (RFC 7517 section 4.4).
	alg string
	pub any // *rsa.PublicKey or *ecdsa.PublicKey
}

// keySet is an immutable snapshot of the issuer's JWKS.
type keySet struct {
	keys []key
}

// parseJWKS reads a JWK Set (RFC 7517 section 5). Keys that cannot verify
// signatures here (encryption keys, symmetric keys, unknown key types, RSA
// keys under 2048 bits) are skipped with a note, not fatal: providers
// publish such keys next to the signing ones. A set with no usable key is
// an error.
func parseJWKS(body []byte) (*keySet, []string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode JWKS: %w", err)
	}
	ks := &keySet{}
	var skipped []string
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		ks.keys = append(ks.keys, k)
	}
	if len(ks.keys) == 0 {
		return nil, skipped, fmt.Errorf("JWKS has no usable signing key (%d keys, %s)", len(doc.Keys), strings.Join(skipped, "; "))
	}
	return ks, skipped, nil
}

func parseJWK(raw json.RawMessage) (key, error) {
	var meta struct {
		Use string `json:"use"`
	}
	_ = json.Unmarshal(raw, &meta)
	if meta.Use != "" && meta.Use != "sig" {
		return key{}, fmt.Errorf("use %q is not sig", meta.Use)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return key{}, err
	}
	if !jwk.Valid() || !jwk.IsPublic() {
		return key{}, errors.New("not a valid public key")
	}
	k := key{kid: jwk.KeyID, alg: jwk.Algorithm}
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return key{}, fmt.Errorf("RSA key of %d bits is too weak", pub.N.BitLen())
		}
		k.pub = pub
	case *ecdsa.PublicKey:
		k.pub = pub
	default:
		return key{}, fmt.Errorf("key type %T cannot verify RS/PS/ES signatures", jwk.Key)
	}
	if k.alg != "" && !fits(k, k.alg) {
		return key{}, fmt.Errorf("alg %q does not fit its key type", k.alg)
	}
	return k, nil
}

// fits reports whether k may verify a signature made with alg: the key
// type (and curve) the algorithm needs, and the JWK's own alg if it names one.
func fits(k key, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	}
	return false
}

// candidates returns the keys that may verify a token with this kid and
// alg: the key with that kid, or, when the token names no kid, every key
// that fits the algorithm (RFC 7515 makes kid optional).
func (ks *keySet) candidates(kid, alg string) (out []any, kidKnown bool) {
	if ks == nil {
		return nil, false
	}
	for _, k := range ks.keys {
		if kid != "" && k.kid != kid {
			continue
		}
		if kid != "" {
			kidKnown = true
		}
		if fits(k, alg) {
			out = append(out, k.pub)
		}
	}
	return out, kidKnown || kid == ""
}

// kids lists the key ids, for logs.
func (ks *keySet) kids() []string {
	if ks == nil {
		return nil
	}
	out := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		out[i] = k.kid
	}
	return out
}
