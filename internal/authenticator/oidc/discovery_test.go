package oidc

import (
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseDiscovery: whatever a provider serves, parsing neither panics
// nor accepts a document without absolute endpoint URLs.
func FuzzParseDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://idp.example","authorization_endpoint":"https://idp.example/auth",` +
		`"token_endpoint":"https://idp.example/token","jwks_uri":"https://idp.example/keys",` +
		`"id_token_signing_alg_values_supported":["RS256","HS256","none"]}`))
	f.Add([]byte(`{"issuer":"https://idp.example","authorization_endpoint":"/auth","token_endpoint":"https://idp.example/token","jwks_uri":"https://idp.example/keys"}`))
	f.Add([]byte(`{"issuer":5}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := parseDiscovery(body)
		if err != nil {
			return
		}
		for _, s := range []string{doc.IssuerURL, doc.AuthURL, doc.TokenURL, doc.JWKSURL} {
			u, perr := url.Parse(s)
			if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				t.Fatalf("accepted %q in %s", s, body)
			}
		}
		for _, a := range asymmetric(doc.Algorithms) {
			if !allowed(a) {
				t.Fatalf("algorithm %q let through", a)
			}
		}
	})
}

func TestAsymmetric(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, []string{"RS256"}},
		{[]string{"HS256", "none"}, []string{"RS256"}},
		{[]string{"ES256", "RS256", "HS512", "ES256"}, []string{"ES256", "RS256"}},
	} {
		got := asymmetric(tc.in)
		if len(got) != len(tc.want) {
			t.Fatalf("asymmetric(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("asymmetric(%v) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestLogValueRedactsSecret(t *testing.T) {
	var b strings.Builder
	cfg := Config{ClientID: "id", ClientSecret: "do-not-log-me", TokenURI: "https://idp.example/token"}
	slog.New(slog.NewTextHandler(&b, nil)).Info("provider", "config", cfg, "provider", &Provider{cfg: cfg})
	if strings.Contains(b.String(), "do-not-log-me") || !strings.Contains(b.String(), "id") {
		t.Fatalf("logged %s", b.String())
	}
}
