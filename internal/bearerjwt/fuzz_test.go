package bearerjwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// staticValidator is a validator whose keys are set in memory, so the
// fuzzer exercises header and claims handling without a network.
func staticValidator(tb testing.TB) (*Validator, *ecdsa.PrivateKey) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	v, err := New(Config{Issuer: "https://idp.example", Audience: "api", Algorithms: []string{"ES256", "RS256"},
		Leeway: time.Minute, TenantClaim: "/ext/tid", AllowedTenants: []string{"t1"}, MinRefetchInterval: time.Hour},
		Deps{Now: func() time.Time { return now }})
	if err != nil {
		tb.Fatal(err)
	}
	v.lastAttempt = now // no refetch: there is no network here
	v.state.Store(&state{meta: Metadata{Issuer: "https://idp.example"}, keys: &keySet{keys: []key{{kid: "k1", pub: &priv.PublicKey}}}})
	return v, priv
}

func FuzzValidate(f *testing.F) {
	v, priv := staticValidator(f)
	good := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://idp.example", "aud": "api", "sub": "a", "exp": 1_800_000_100, "ext": map[string]any{"tid": "t1"},
	})
	good.Header["kid"] = "k1"
	signed, err := good.SignedString(priv)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := v.Validate(context.Background(), signed); err != nil {
		f.Fatalf("seed token refused: %v", err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{signed, "", "a.b.c", "..", enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{}`)) + ".",
		enc([]byte(`{"alg":"ES256","kid":["x"]}`)) + ".e30.", enc([]byte(`{"alg":"ES256","crit":["b64"]}`)) + ".e30.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := v.Validate(context.Background(), raw)
		if err == nil && tok == nil {
			t.Fatal("nil token without error")
		}
		if err == nil && raw != signed {
			// Anything else accepted must still be a token for us.
			if tok.Issuer != "https://idp.example" || tok.Tenant != "t1" {
				t.Fatalf("accepted %q: %+v", raw, tok)
			}
		}
		if err != nil {
			var e *Error
			if !asError(err, &e) {
				t.Fatalf("error of unexpected kind: %v", err)
			}
		}
	})
}

func FuzzHeaderClaims(f *testing.F) {
	v, priv := staticValidator(f)
	f.Add([]byte(`{"alg":"ES256","kid":"k1"}`), []byte(`{"iss":"https://idp.example","aud":"api","exp":1800000100,"ext":{"tid":"t1"}}`))
	f.Add([]byte(`{"alg":"ES256"}`), []byte(`{"iss":"https://idp.example","aud":["api",1],"exp":"1","nbf":null}`))
	f.Add([]byte(`{"alg":"RS256","kid":"k1"}`), []byte(`{"scp":[1,{}],"scope":["x"]}`))
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		// Sign whatever header and claims the fuzzer makes with the real
		// key: the signature is then valid, and only the checks of header
		// and claims stand between the input and acceptance.
		input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
		sig, err := jwt.SigningMethodES256.Sign(input, priv)
		if err != nil {
			t.Skip()
		}
		tok, err := v.Validate(context.Background(), input+"."+base64.RawURLEncoding.EncodeToString(sig))
		if err != nil {
			return
		}
		var h map[string]any
		if json.Unmarshal(header, &h) != nil || h["alg"] != "ES256" {
			t.Fatalf("accepted with header %s", header)
		}
		if tok.Issuer != "https://idp.example" || tok.Tenant != "t1" || tok.ExpiresAt.IsZero() {
			t.Fatalf("accepted claims %s as %+v", claims, tok)
		}
		found := false
		for _, a := range tok.Audience {
			found = found || a == "api"
		}
		if !found {
			t.Fatalf("accepted audience %v", tok.Audience)
		}
	})
}

func FuzzPointer(f *testing.F) {
	for _, s := range []string{"", "/", "/tid", "/a~1b/~0", "/0/1", "/~", "x"} {
		f.Add(s, `{"tid":"t","a/b":{"~":[1,2]},"0":[["x"]]}`)
	}
	f.Fuzz(func(t *testing.T, ptr, doc string) {
		p, err := ParsePointer(ptr)
		if err != nil {
			return
		}
		var d any
		if json.Unmarshal([]byte(doc), &d) != nil {
			return
		}
		p.Lookup(d)
	})
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}
