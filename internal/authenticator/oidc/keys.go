package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Signature algorithms an ID token may use. Only asymmetric ones: "none"
// proves nothing, and an HS* token would be "signed" with the client secret,
// which the client itself knows (RFC 8725 3.1, 3.2).
var (
	rsaAlgs = []string{gooidc.RS256, gooidc.RS384, gooidc.RS512, gooidc.PS256, gooidc.PS384, gooidc.PS512}
	ecAlgs  = []string{gooidc.ES256, gooidc.ES384, gooidc.ES512}
	okpAlgs = []string{gooidc.EdDSA}
)

func allowed(alg string) bool {
	return slices.Contains(rsaAlgs, alg) || slices.Contains(ecAlgs, alg) || slices.Contains(okpAlgs, alg)
}

// asymmetric keeps the advertised algorithms we accept. A document that
// advertises none of them gets RS256, the one every provider must support
// (OpenID Connect Discovery 1.0, id_token_signing_alg_values_supported).
func asymmetric(advertised []string) []string {
	var out []string
	for _, a := range advertised {
		if allowed(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{gooidc.RS256}
	}
	return out
}

// parseKeys reads configured JWKs into a static key set and the algorithms
// they may sign with: a key's "alg" when it names one, else every
// asymmetric algorithm of its key type.
func parseKeys(jwks []map[string]any) (gooidc.KeySet, []string, error) {
	if len(jwks) == 0 {
		return nil, nil, errors.New("oidc: public_keys is required without well_known_uri")
	}
	ks := &gooidc.StaticKeySet{}
	var algs []string
	add := func(list ...string) {
		for _, a := range list {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	for i, m := range jwks {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, nil, fmt.Errorf("oidc: public_keys[%d]: %w", i, err)
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(b); err != nil {
			return nil, nil, fmt.Errorf("oidc: public_keys[%d]: %w", i, err)
		}
		if !k.IsPublic() || !k.Valid() {
			return nil, nil, fmt.Errorf("oidc: public_keys[%d] is not a valid public key", i)
		}
		if use, _ := m["use"].(string); use != "" && use != "sig" {
			return nil, nil, fmt.Errorf("oidc: public_keys[%d] has use %q, not a signing key", i, use)
		}
		var byType []string
		switch k.Key.(type) {
		case *rsa.PublicKey:
			byType = rsaAlgs
		case *ecdsa.PublicKey:
			byType = ecAlgs
		case ed25519.PublicKey:
			byType = okpAlgs
		default:
			return nil, nil, fmt.Errorf("oidc: public_keys[%d]: unsupported key type %T", i, k.Key)
		}
		switch {
		case k.Algorithm == "":
			add(byType...)
		case slices.Contains(byType, k.Algorithm):
			add(k.Algorithm)
		default:
			return nil, nil, fmt.Errorf("oidc: public_keys[%d]: algorithm %q is not accepted for ID tokens of this key type", i, k.Algorithm)
		}
		ks.PublicKeys = append(ks.PublicKeys, crypto.PublicKey(k.Key))
	}
	return ks, algs, nil
}

// trace records, for one verification, that the provider's keys could not
// be fetched: go-oidc reports that as text only, and it is the provider's
// outage (503), not a bad token (401).
type trace struct{ fetchErr error }

type traceKey struct{}

// tracingKeySet is go-oidc's remote key set (which refetches the JWKS when a
// token names an unknown kid, so provider key rotation needs no restart),
// noting fetch failures in the trace of the context.
type tracingKeySet struct{ *gooidc.RemoteKeySet }

func (k *tracingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.RemoteKeySet.VerifySignature(ctx, jwt)
	var ue *url.Error
	if err != nil && errors.As(err, &ue) {
		if t, ok := ctx.Value(traceKey{}).(*trace); ok {
			t.fetchErr = err
		}
	}
	return payload, err
}
