package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/authenticator/oidc"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

const (
	clientID     = "tiled-test"
	clientSecret = "s3cret-for-tests"
	redirectURI  = "http://127.0.0.1:1/api/v1/auth/provider/idp/code"
)

func startOP(t *testing.T) *oidcprovider.Provider {
	return oidcprovider.Start(t, oidcprovider.Options{
		ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs: []string{redirectURI}, Users: []string{"alice", "bob"},
	})
}

func discovered(t *testing.T, op *oidcprovider.Provider, mod func(*oidc.Config)) *oidc.Provider {
	t.Helper()
	cfg := oidc.Config{ClientID: clientID, ClientSecret: clientSecret, WellKnownURI: op.WellKnownURI()}
	if mod != nil {
		mod(&cfg)
	}
	p, err := oidc.New(context.Background(), cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// explicit switches a config to seed 000's form against op, with keys
// (op's own when nil) and an optional issuer.
func explicit(op *oidcprovider.Provider, keys []map[string]any, issuer string) func(*oidc.Config) {
	if keys == nil {
		keys = op.JWKS()
	}
	return func(c *oidc.Config) {
		c.WellKnownURI, c.TokenURI, c.AuthorizationEndpoint = "", op.TokenEndpoint(), op.AuthorizationEndpoint()
		c.PublicKeys, c.Issuer = keys, issuer
	}
}

// begin runs the browser leg as user, with state "state-1" and nonce
// "nonce-1", and returns the code and the PKCE verifier.
func begin(t *testing.T, op *oidcprovider.Provider, p *oidc.Provider, user string) (code, verifier string) {
	t.Helper()
	ctx := context.Background()
	verifier = oauth2.GenerateVerifier()
	u, err := p.AuthCodeURL(ctx, redirectURI, "state-1", "nonce-1", verifier)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	back, err := op.Login(ctx, u, user)
	if err != nil {
		t.Fatalf("login at the provider: %v", err)
	}
	if got := back.Query().Get("state"); got != "state-1" {
		t.Fatalf("state came back as %q", got)
	}
	return back.Query().Get("code"), verifier
}

// login runs the browser leg as user and exchanges the code; it returns the
// identity id, or the exchange's error.
func login(t *testing.T, op *oidcprovider.Provider, p *oidc.Provider, user string) (string, error) {
	t.Helper()
	code, verifier := begin(t, op, p, user)
	return p.Exchange(context.Background(), code, redirectURI, verifier, "nonce-1")
}

func TestAuthCodeURL(t *testing.T) {
	op := startOP(t)
	p := discovered(t, op, func(c *oidc.Config) { c.ExtraScopes = []string{"email", "openid"} })
	u, err := p.AuthCodeURL(context.Background(), redirectURI, "st", "nn", "verifier-verifier-verifier-verifier-verifier")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := parsed.Query()
	want := map[string]string{
		"client_id": clientID, "response_type": "code", "scope": "openid offline_access email",
		"redirect_uri": redirectURI, "prompt": "login", "state": "st", "nonce": "nn",
		"code_challenge":        oauth2.S256ChallengeFromVerifier("verifier-verifier-verifier-verifier-verifier"),
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("client_secret") {
		t.Error("the client secret must never be in a browser URL")
	}
	if got := parsed.Scheme + "://" + parsed.Host + parsed.Path; got != op.AuthorizationEndpoint() {
		t.Errorf("authorization endpoint %s, want %s", got, op.AuthorizationEndpoint())
	}
}

func TestExchange(t *testing.T) {
	op := startOP(t)
	for _, tc := range []struct {
		name string
		cfg  func(*oidc.Config)
		user string
		want string
	}{
		{"sub is the id", nil, "alice", "alice"},
		{"another user", nil, "bob", "bob"},
		{"user_id_claim", func(c *oidc.Config) {
			c.ExtraScopes, c.UserIDClaim = []string{"email"}, "email"
		}, "alice", "alice@example.test"},
		{"explicit endpoints and keys", explicit(op, nil, ""), "bob", "bob"},
		{"explicit form with issuer", explicit(op, nil, op.Issuer()), "alice", "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := login(t, op, discovered(t, op, tc.cfg), tc.user)
			if err != nil || id != tc.want {
				t.Fatalf("got %q, %v; want %q", id, err, tc.want)
			}
		})
	}
}

// foreignKey signs like the provider's current key (same kid) but with a
// key the provider never published: a forgery.
func foreignKey(t *testing.T, op *oidcprovider.Provider) func(map[string]any) string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := op.JWKS()[0]["kid"].(string)
	return func(claims map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(claims)
		jws, err := s.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
}

func TestExchangeRejectsBadIDTokens(t *testing.T) {
	op := startOP(t)
	p := discovered(t, op, nil)
	fixed := discovered(t, op, explicit(op, nil, op.Issuer()))
	forge := foreignKey(t, op)
	for _, tc := range []struct {
		name    string
		rewrite func(map[string]any) string
	}{
		{"wrong nonce", func(c map[string]any) string { c["nonce"] = "another login's nonce"; return op.SignRS256(c) }},
		{"no nonce", func(c map[string]any) string { delete(c, "nonce"); return op.SignRS256(c) }},
		{"wrong audience", func(c map[string]any) string { c["aud"] = []string{"another-client"}; return op.SignRS256(c) }},
		{"several audiences, azp not us", func(c map[string]any) string {
			c["aud"], c["azp"] = []string{clientID, "another-client"}, "another-client"
			return op.SignRS256(c)
		}},
		{"wrong issuer", func(c map[string]any) string { c["iss"] = "https://evil.example"; return op.SignRS256(c) }},
		{"expired", func(c map[string]any) string {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return op.SignRS256(c)
		}},
		{"no user id claim", func(c map[string]any) string { delete(c, "sub"); return op.SignRS256(c) }},
		{"at_hash of another access token", func(c map[string]any) string { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA"; return op.SignRS256(c) }},
		{"alg none", oidcprovider.SignNone},
		{"HS256 with the client secret", func(c map[string]any) string { return oidcprovider.SignHS256(c, []byte(clientSecret)) }},
		{"signed by an unpublished key", forge},
		{"not a JWT", func(map[string]any) string { return "garbage" }},
	} {
		for _, rp := range []struct {
			form string
			p    *oidc.Provider
		}{{"discovery", p}, {"explicit", fixed}} {
			t.Run(tc.name+"/"+rp.form, func(t *testing.T) {
				op.RewriteIDTokens(tc.rewrite)
				defer op.RewriteIDTokens(nil)
				id, err := login(t, op, rp.p, "alice")
				if !errors.Is(err, oidc.ErrRejected) {
					t.Fatalf("got %q, %v; want ErrRejected", id, err)
				}
			})
		}
	}
	// The same provider still logs people in once the tokens are genuine:
	// the rejections above were about the tokens.
	if id, err := login(t, op, p, "alice"); err != nil || id != "alice" {
		t.Fatalf("genuine token: %q, %v", id, err)
	}
}

func TestExchangeRejectsBadCodes(t *testing.T) {
	op := startOP(t)
	p := discovered(t, op, nil)
	ctx := context.Background()
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		code, _ := begin(t, op, p, "alice")
		if _, err := p.Exchange(ctx, code, redirectURI, oauth2.GenerateVerifier(), "nonce-1"); !errors.Is(err, oidc.ErrRejected) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("code used twice", func(t *testing.T) {
		code, v := begin(t, op, p, "alice")
		if _, err := p.Exchange(ctx, code, redirectURI, v, "nonce-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Exchange(ctx, code, redirectURI, v, "nonce-1"); !errors.Is(err, oidc.ErrRejected) {
			t.Fatalf("second use: %v", err)
		}
	})
	t.Run("made-up code", func(t *testing.T) {
		if _, err := p.Exchange(ctx, "made-up", redirectURI, oauth2.GenerateVerifier(), "n"); !errors.Is(err, oidc.ErrRejected) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		wrong := discovered(t, op, func(c *oidc.Config) { c.ClientSecret = "wrong" })
		if _, err := login(t, op, wrong, "alice"); !errors.Is(err, oidc.ErrRejected) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("keys of another provider", func(t *testing.T) {
		other := startOP(t)
		p := discovered(t, op, explicit(op, other.JWKS(), ""))
		if _, err := login(t, op, p, "alice"); !errors.Is(err, oidc.ErrRejected) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestExplicitFormWithoutIssuer: seed 000's form names no issuer, so iss
// is not checked there; the configured keys still are.
func TestExplicitFormWithoutIssuer(t *testing.T) {
	op := startOP(t)
	p := discovered(t, op, explicit(op, nil, ""))
	op.RewriteIDTokens(func(c map[string]any) string { c["iss"] = "https://elsewhere.example"; return op.SignRS256(c) })
	defer op.RewriteIDTokens(nil)
	if id, err := login(t, op, p, "alice"); err != nil || id != "alice" {
		t.Fatalf("got %q, %v", id, err)
	}
	op.RewriteIDTokens(foreignKey(t, op))
	if _, err := login(t, op, p, "alice"); !errors.Is(err, oidc.ErrRejected) {
		t.Fatalf("forged signature: %v", err)
	}
}

// TestKeyRotation: a provider that starts signing with a new key needs no
// restart here, the key set is fetched again for an unknown kid.
func TestKeyRotation(t *testing.T) {
	op := startOP(t)
	p := discovered(t, op, nil)
	if id, err := login(t, op, p, "alice"); err != nil || id != "alice" {
		t.Fatalf("before rotation: %q, %v", id, err)
	}
	if err := op.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if id, err := login(t, op, p, "bob"); err != nil || id != "bob" {
		t.Fatalf("after rotation: %q, %v", id, err)
	}
}

type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// freeAddr reserves a loopback port and frees it, for a provider that is to
// start there later.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDiscoveryRetried(t *testing.T) {
	addr := freeAddr(t)
	clk := &clock{}
	cfg := oidc.Config{
		ClientID: clientID, ClientSecret: clientSecret, RetryAfter: time.Minute, Now: clk.now,
		WellKnownURI: "http://" + addr + "/.well-known/openid-configuration",
	}
	p, err := oidc.New(context.Background(), cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("an unreachable provider must not fail New: %v", err)
	}
	ctx := context.Background()
	if _, err := p.AuthCodeURL(ctx, redirectURI, "s", "n", "v"); !errors.Is(err, authenticator.ErrUnavailable) {
		t.Fatalf("provider down: got %v, want ErrUnavailable", err)
	}
	op := oidcprovider.Start(t, oidcprovider.Options{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURIs: []string{redirectURI},
		Users: []string{"alice"}, Addr: addr,
	})
	// Within RetryAfter of the failure the provider is not asked again.
	if _, err := p.AuthCodeURL(ctx, redirectURI, "s", "n", "v"); !errors.Is(err, authenticator.ErrUnavailable) {
		t.Fatalf("inside the retry interval: got %v, want ErrUnavailable", err)
	}
	clk.advance(time.Minute)
	if id, err := login(t, op, p, "alice"); err != nil || id != "alice" {
		t.Fatalf("after the provider came up: %q, %v", id, err)
	}
}

func TestExchangeProviderDown(t *testing.T) {
	op := startOP(t)
	p := discovered(t, op, nil)
	code, v := begin(t, op, p, "alice")
	op.Close()
	if _, err := p.Exchange(context.Background(), code, redirectURI, v, "nonce-1"); !errors.Is(err, authenticator.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	rsaKey := map[string]any{"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for a, b := range m {
			out[a] = b
		}
		out[k] = v
		return out
	}
	explicit := func(keys ...map[string]any) oidc.Config {
		return oidc.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURI: "https://idp.example/token",
			AuthorizationEndpoint: "https://idp.example/auth", PublicKeys: keys}
	}
	for _, tc := range []struct {
		name string
		cfg  oidc.Config
	}{
		{"no client id", oidc.Config{WellKnownURI: "https://idp.example/.well-known/openid-configuration"}},
		{"relative well_known_uri", oidc.Config{ClientID: clientID, WellKnownURI: "/.well-known/openid-configuration"}},
		{"no keys", explicit()},
		{"bad token_uri", func() oidc.Config { c := explicit(rsaKey); c.TokenURI = "ftp://x"; return c }()},
		{"no authorization_endpoint", func() oidc.Config { c := explicit(rsaKey); c.AuthorizationEndpoint = ""; return c }()},
		{"symmetric key", explicit(map[string]any{"kty": "oct", "k": "c2VjcmV0"})},
		{"encryption key", explicit(with(rsaKey, "use", "enc"))},
		{"HS256 on an RSA key", explicit(with(rsaKey, "alg", "HS256"))},
		{"not a key", explicit(map[string]any{"kty": "RSA"})},
		{"no client secret", func() oidc.Config { c := explicit(rsaKey); c.ClientSecret = ""; return c }()},
		{"a secret for a public client", func() oidc.Config { c := explicit(rsaKey); c.TokenEndpointAuthMethod = oidc.AuthNone; return c }()},
		{"unknown auth method", func() oidc.Config { c := explicit(rsaKey); c.TokenEndpointAuthMethod = "private_key_jwt"; return c }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := oidc.New(context.Background(), tc.cfg, nil, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := oidc.New(context.Background(), explicit(with(rsaKey, "alg", "RS256")), nil, nil); err != nil {
		t.Fatalf("a good explicit config: %v", err)
	}
}

// TestTokenEndpointAuthMethod: the client authenticates at the token
// endpoint as the provider insists (it refuses any other method, as Hydra
// and Okta do): client_secret_basic when discovery offers it or says
// nothing, client_secret_post when only that is offered, and whatever
// token_endpoint_auth_method names (none: a public client with PKCE).
func TestTokenEndpointAuthMethod(t *testing.T) {
	for _, tc := range []struct {
		name       string
		registered string   // how the provider holds the client to authenticate
		advertised []string // token_endpoint_auth_methods_supported (nil: basic and post)
		configured string   // token_endpoint_auth_method
		refused    bool
	}{
		{"basic client, both offered", oidcprovider.AuthBasic, nil, "", false},
		{"basic client, member absent", oidcprovider.AuthBasic, []string{}, "", false},
		{"post client, only post offered", oidcprovider.AuthPost, []string{oidc.AuthPost}, "", false},
		{"post client, configured post", oidcprovider.AuthPost, nil, oidc.AuthPost, false},
		{"basic client, configured basic", oidcprovider.AuthBasic, []string{oidc.AuthPost}, oidc.AuthBasic, false},
		{"public client, configured none", oidcprovider.AuthNone, nil, oidc.AuthNone, false},
		{"post client, basic chosen from discovery", oidcprovider.AuthPost, nil, "", true},
		{"basic client, configured post", oidcprovider.AuthBasic, nil, oidc.AuthPost, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := clientSecret
			if tc.registered == oidcprovider.AuthNone {
				secret = ""
			}
			op := oidcprovider.Start(t, oidcprovider.Options{
				ClientID: clientID, ClientSecret: secret, RedirectURIs: []string{redirectURI}, Users: []string{"alice"},
				AuthMethod: tc.registered, AdvertisedAuthMethods: tc.advertised,
			})
			p := discovered(t, op, func(c *oidc.Config) { c.ClientSecret, c.TokenEndpointAuthMethod = secret, tc.configured })
			id, err := login(t, op, p, "alice")
			switch {
			case tc.refused && !errors.Is(err, oidc.ErrRejected):
				t.Fatalf("login = %q, %v; want the provider to refuse the client (ErrRejected)", id, err)
			case !tc.refused && (err != nil || id != "alice"):
				t.Fatalf("login = %q, %v; want alice", id, err)
			}
		})
	}
	t.Run("only methods this server does not speak", func(t *testing.T) {
		op := oidcprovider.Start(t, oidcprovider.Options{
			ClientID: clientID, ClientSecret: clientSecret, RedirectURIs: []string{redirectURI},
			AdvertisedAuthMethods: []string{"private_key_jwt"},
		})
		p := discovered(t, op, nil)
		_, err := p.AuthCodeURL(context.Background(), redirectURI, "state", "nonce", "verifier-verifier-verifier-verifier-verifier")
		if !errors.Is(err, authenticator.ErrUnavailable) || !strings.Contains(err.Error(), "set token_endpoint_auth_method") {
			t.Fatalf("AuthCodeURL = %v; want unavailable, saying to set token_endpoint_auth_method", err)
		}
	})
}
