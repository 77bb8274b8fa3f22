package bearerjwt

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkValidate measures a bearer request's token check with the key
// already cached: header, signature, claims, tenant. No network, no
// database: this is the whole cost of a cached-key verify.
func BenchmarkValidate(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		alg    string
		method jwt.SigningMethod
		priv   crypto.Signer
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey},
		{"ES256", jwt.SigningMethodES256, ecKey},
	} {
		b.Run(tc.alg, func(b *testing.B) {
			now := time.Unix(1_800_000_000, 0)
			v, err := New(Config{Issuer: "https://idp.example", Audience: "api", Algorithms: []string{tc.alg},
				Leeway: time.Minute, TenantClaim: "/tid", AllowedTenants: []string{"t1"}},
				Deps{Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			v.state.Store(&state{meta: Metadata{Issuer: "https://idp.example"},
				keys: &keySet{keys: []key{{kid: "other", pub: &rsaKey.PublicKey}, {kid: "k1", pub: tc.priv.Public()}}}})
			tok := jwt.NewWithClaims(tc.method, jwt.MapClaims{
				"iss": "https://idp.example", "aud": "api", "sub": "alice", "tid": "t1",
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "datasets:read datasets:reload",
			})
			tok.Header["kid"] = "k1"
			raw, err := tok.SignedString(tc.priv)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Validate(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
