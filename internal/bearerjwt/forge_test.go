package bearerjwt_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// signHS256WithKID is the algorithm-confusion forgery naming a real kid.
func signHS256WithKID(claims map[string]any, key []byte, kid string) string {
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
	b, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// swapSignature puts the signature of b on the header and claims of a.
func swapSignature(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pa[1] + "." + pb[2]
}

// relabel rewrites the header of tok to claim alg and kid, keeping its
// claims and signature.
func relabel(tok, alg, kid string) string {
	parts := strings.Split(tok, ".")
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": kid})
	return base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + "." + parts[2]
}
