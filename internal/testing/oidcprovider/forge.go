package oidcprovider

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// rewriteIDToken wraps the token endpoint: when a rewrite is set, the ID
// token of a successful answer is replaced by what it returns.
func (p *Provider) rewriteIDToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		fn := p.rewrite
		p.mu.Unlock()
		if fn == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var resp map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(body, &resp) == nil {
			if raw, ok := resp["id_token"].(string); ok {
				if claims, err := payload(raw); err == nil {
					resp["id_token"] = fn(claims)
					body, _ = json.Marshal(resp)
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// payload decodes a JWS's claims without checking it: it is the provider's
// own token.
func payload(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, jose.ErrCryptoFailure
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return claims, d.Decode(&claims)
}

// SignRS256 signs claims with the provider's current RS256 key, as a
// genuine token is signed: a test changes a claim and the result still
// verifies.
func (p *Provider) SignRS256(claims map[string]any) string { return p.Mint("RS256", claims) }

// Mint signs claims with the provider's current key for alg, with that
// key's id in the header, as the provider's own tokens are signed.
func (p *Provider) Mint(alg string, claims map[string]any) string {
	p.store.mu.Lock()
	k, ok := p.store.current(jose.SignatureAlgorithm(alg))
	p.store.mu.Unlock()
	if !ok {
		return "unsignable: no key for " + alg
	}
	return sign(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}}, claims)
}

// MintWithHeader signs claims with the current key for alg but puts the
// given extra header members (such as a forged "kid") in the header.
func (p *Provider) MintWithHeader(alg string, header map[string]any, claims map[string]any) string {
	p.store.mu.Lock()
	k, ok := p.store.current(jose.SignatureAlgorithm(alg))
	p.store.mu.Unlock()
	if !ok {
		return "unsignable: no key for " + alg
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for name, v := range header {
		opts = opts.WithHeader(jose.HeaderKey(name), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		return "unsignable: " + err.Error()
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		return "unsignable: " + err.Error()
	}
	out, _ := jws.CompactSerialize()
	return out
}

// PublicKeyDER returns the PKIX DER encoding of the current public key for
// alg, the bytes an attacker would use as an HS256 secret in an
// algorithm-confusion forgery.
func (p *Provider) PublicKeyDER(alg string) []byte {
	p.store.mu.Lock()
	k, ok := p.store.current(jose.SignatureAlgorithm(alg))
	p.store.mu.Unlock()
	if !ok {
		return nil
	}
	der, _ := x509.MarshalPKIXPublicKey(k.key.Public())
	return der
}

// SignHS256 signs claims with an HMAC key, as an attacker who knows the
// client secret (or a confused provider) would. Signed by hand: JOSE
// libraries refuse short HMAC keys, attackers do not.
func SignHS256(claims map[string]any, key []byte) string {
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	b, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// SignNone makes an unsigned token ("alg": "none").
func SignNone(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	b, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

func sign(key jose.SigningKey, claims map[string]any) string {
	s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "unsignable: " + err.Error()
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		return "unsignable: " + err.Error()
	}
	out, _ := jws.CompactSerialize()
	return out
}

// jwk is the public half of k as a JWK object.
func jwk(k *signingKey) map[string]any {
	b, _ := jose.JSONWebKey{Key: k.key.Public(), KeyID: k.id, Algorithm: string(k.alg), Use: "sig"}.MarshalJSON()
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
