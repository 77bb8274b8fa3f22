package bearerjwt_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/bearerjwt"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
)

// clock is a settable clock shared by the validator and the test.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

const audience = "api://tiled"

func startIdP(t *testing.T) *oidcprovider.Provider {
	t.Helper()
	return oidcprovider.Start(t, oidcprovider.Options{
		ClientID: "tiled", ClientSecret: "s3cret", Algorithms: []string{"RS256", "ES256", "PS256"},
	})
}

func newValidator(t *testing.T, idp *oidcprovider.Provider, clk *clock, mod func(*bearerjwt.Config)) *bearerjwt.Validator {
	t.Helper()
	cfg := bearerjwt.Config{
		Issuer: idp.Issuer(), Audience: audience, Algorithms: []string{"RS256", "ES256", "PS256"},
		Leeway: 60 * time.Second, TenantClaim: "/tid", AllowedTenants: []string{"t1", "t2"},
		RetryInterval: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := bearerjwt.New(cfg, bearerjwt.Deps{Client: &http.Client{Timeout: 5 * time.Second}, Now: clk.now})
	if err != nil {
		t.Fatalf("new validator: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := v.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	return v
}

func claimsAt(idp *oidcprovider.Provider, now time.Time) map[string]any {
	return map[string]any{
		"iss": idp.Issuer(), "sub": "alice", "aud": audience, "tid": "t1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"scope": "datasets:read openid", "scp": []any{"datasets:reload", "datasets:read"},
	}
}

func with(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func wantRefused(t *testing.T, err error) *bearerjwt.Error {
	t.Helper()
	var e *bearerjwt.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if e.Code != bearerjwt.CodeInvalidToken {
		t.Fatalf("code %q, want invalid_token", e.Code)
	}
	return e
}

// TestValidate covers every check with tokens from a real provider, for
// each algorithm. Time edges are tested exactly at the leeway (60 s).
func TestValidate(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, nil)
	now := clk.now()
	base := claimsAt(idp, now)
	leeway := 60 * time.Second
	ts := func(d time.Duration) int64 { return now.Add(d).Unix() }

	tests := []struct {
		name   string
		claims map[string]any
		ok     bool
	}{
		{"valid", base, true},
		{"aud as a list containing ours", with(base, "aud", []any{"other", audience}), true},
		{"wrong issuer", with(base, "iss", "https://evil.example"), false},
		{"issuer with a trailing slash added", with(base, "iss", idp.Issuer()+"/"), false},
		{"no issuer", with(base, "iss", nil), false},
		{"wrong audience", with(base, "aud", "api://other"), false},
		{"no audience", with(base, "aud", nil), false},
		{"expired beyond the leeway by a second", with(base, "exp", ts(-leeway-time.Second)), false},
		{"expired exactly at the leeway", with(base, "exp", ts(-leeway)), false},
		{"expired within the leeway", with(base, "exp", ts(-leeway+time.Second)), true},
		{"no exp", with(base, "exp", nil), false},
		{"exp not a number", with(base, "exp", "tomorrow"), false},
		{"nbf at the leeway", with(base, "nbf", ts(leeway)), true},
		{"nbf beyond the leeway", with(base, "nbf", ts(leeway+time.Second)), false},
		{"iat at the leeway", with(base, "iat", ts(leeway)), true},
		{"iat beyond the leeway", with(base, "iat", ts(leeway+time.Second)), false},
		{"tenant allowed", with(base, "tid", "t2"), true},
		{"tenant not allowed", with(base, "tid", "t3"), false},
		{"tenant differing only in case", with(base, "tid", "T1"), false},
		{"no tenant", with(base, "tid", nil), false},
		{"tenant not a string", with(base, "tid", 1), false},
	}
	for _, alg := range []string{"RS256", "ES256", "PS256"} {
		for _, tt := range tests {
			t.Run(alg+"/"+tt.name, func(t *testing.T) {
				tok, err := v.Validate(context.Background(), idp.Mint(alg, tt.claims))
				if !tt.ok {
					e := wantRefused(t, err)
					if e.Description == "" {
						t.Fatal("no description")
					}
					return
				}
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tok.Subject != "alice" || tok.Algorithm != alg || tok.KeyID != idp.KeyID(alg) {
					t.Fatalf("token %+v", tok)
				}
				if fmt.Sprint(tok.Scopes) != "[datasets:read openid datasets:reload]" {
					t.Fatalf("scopes %v", tok.Scopes)
				}
			})
		}
	}
}

// TestForgeries: tokens nobody with the issuer's private key signed.
func TestForgeries(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, nil)
	claims := claimsAt(idp, clk.now())
	kid := idp.KeyID("RS256")
	for name, tok := range map[string]string{
		"alg none":                       oidcprovider.SignNone(claims),
		"HS256 with the public key":      oidcprovider.SignHS256(claims, idp.PublicKeyDER("RS256")),
		"HS256 with the EC public key":   oidcprovider.SignHS256(claims, idp.PublicKeyDER("ES256")),
		"HS256 naming the real kid":      signHS256WithKID(claims, idp.PublicKeyDER("RS256"), kid),
		"signature of another token":     swapSignature(idp.Mint("RS256", claims), idp.Mint("RS256", with(claims, "sub", "mallory"))),
		"claims changed after signing":   swapSignature(idp.Mint("RS256", with(claims, "sub", "mallory")), idp.Mint("RS256", claims)),
		"ES256 header on an RSA kid":     relabel(idp.Mint("ES256", claims), "RS256", kid),
		"two parts":                      "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0",
		"empty":                          "",
		"garbage":                        "not a token",
		"crit extension":                 idp.MintWithHeader("RS256", map[string]any{"crit": []string{"exp"}, "exp": 1}, claims),
		"kid is a number":                idp.MintWithHeader("RS256", map[string]any{"kid": 7}, claims),
		"signed by another provider key": otherProviderToken(t, claims),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), tok)
			wantRefused(t, err)
		})
	}
}

func otherProviderToken(t *testing.T, claims map[string]any) string {
	other := oidcprovider.Start(t, oidcprovider.Options{ClientID: "x", ClientSecret: "y"})
	return other.Mint("RS256", claims)
}

// TestAlgorithmAllowList: a valid ES256 token is refused by a validator
// that allows only RS256.
func TestAlgorithmAllowList(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, func(c *bearerjwt.Config) { c.Algorithms = []string{"RS256"} })
	claims := claimsAt(idp, clk.now())
	if _, err := v.Validate(context.Background(), idp.Mint("RS256", claims)); err != nil {
		t.Fatalf("RS256 refused: %v", err)
	}
	for _, alg := range []string{"ES256", "PS256"} {
		_, err := v.Validate(context.Background(), idp.Mint(alg, claims))
		wantRefused(t, err)
	}
}

// TestNoAudienceNoTenant: an empty audience disables the aud check, and no
// allowed tenants accepts any (or no) tenant.
func TestNoAudienceNoTenant(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, func(c *bearerjwt.Config) { c.Audience, c.AllowedTenants = "", nil })
	claims := claimsAt(idp, clk.now())
	for _, c := range []map[string]any{with(claims, "aud", "anything"), with(claims, "aud", nil), with(claims, "tid", nil)} {
		if _, err := v.Validate(context.Background(), idp.Mint("RS256", c)); err != nil {
			t.Fatalf("refused: %v", err)
		}
	}
	tok, _ := v.Validate(context.Background(), idp.Mint("RS256", with(claims, "tid", "t9")))
	if tok == nil || tok.Tenant != "t9" {
		t.Fatalf("tenant not reported: %+v", tok)
	}
}

func TestNewRefuses(t *testing.T) {
	base := bearerjwt.Config{Issuer: "https://idp.example"}
	for name, mod := range map[string]func(*bearerjwt.Config){
		"alg none":                 func(c *bearerjwt.Config) { c.Algorithms = []string{"RS256", "none"} },
		"HS256":                    func(c *bearerjwt.Config) { c.Algorithms = []string{"HS256"} },
		"HS512":                    func(c *bearerjwt.Config) { c.Algorithms = []string{"HS512"} },
		"lower-case rs256":         func(c *bearerjwt.Config) { c.Algorithms = []string{"rs256"} },
		"EdDSA":                    func(c *bearerjwt.Config) { c.Algorithms = []string{"EdDSA"} },
		"no issuer":                func(c *bearerjwt.Config) { c.Issuer = "" },
		"relative issuer":          func(c *bearerjwt.Config) { c.Issuer = "idp.example" },
		"negative leeway":          func(c *bearerjwt.Config) { c.Leeway = -time.Second },
		"leeway over the bound":    func(c *bearerjwt.Config) { c.Leeway = bearerjwt.MaxLeeway + time.Second },
		"pointer without slash":    func(c *bearerjwt.Config) { c.TenantClaim = "tid" },
		"pointer with a bad tilde": func(c *bearerjwt.Config) { c.TenantClaim = "/t~2" },
		"tenants without a claim":  func(c *bearerjwt.Config) { c.AllowedTenants = []string{"t"} },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			mod(&cfg)
			if _, err := bearerjwt.New(cfg, bearerjwt.Deps{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	ok := base
	ok.Leeway = bearerjwt.MaxLeeway
	if _, err := bearerjwt.New(ok, bearerjwt.Deps{}); err != nil {
		t.Fatalf("leeway at the bound refused: %v", err)
	}
}

// TestKeyRotation: the provider rotates while the validator runs. A token
// with the new kid is accepted after one refetch; old tokens keep working
// while the old key is published, and stop once it is retired.
func TestKeyRotation(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, nil)
	ctx := context.Background()
	claims := claimsAt(idp, clk.now())
	oldKID := idp.KeyID("ES256")
	oldTok := idp.Mint("ES256", claims)
	if _, err := v.Validate(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	if _, err := idp.RotateAlgorithm("ES256"); err != nil {
		t.Fatal(err)
	}
	clk.advance(bearerjwt.DefaultMinRefetchInterval)
	before := idp.Requests(oidcprovider.JWKSPath)
	newTok := idp.Mint("ES256", claims)
	if _, err := v.Validate(ctx, newTok); err != nil {
		t.Fatalf("token with the rotated key: %v", err)
	}
	if got := idp.Requests(oidcprovider.JWKSPath) - before; got != 1 {
		t.Fatalf("JWKS fetched %d times for one new kid, want 1", got)
	}
	if _, err := v.Validate(ctx, oldTok); err != nil {
		t.Fatalf("token with the old, still published key: %v", err)
	}
	idp.RetireKey(oldKID)
	if err := v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := v.Validate(ctx, oldTok)
	wantRefused(t, err)
}

// TestUnknownKIDFlood: many concurrent requests with forged kids cause at
// most one JWKS fetch per 30 s between them.
func TestUnknownKIDFlood(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, nil)
	claims := claimsAt(idp, clk.now())
	flood := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := idp.MintWithHeader("RS256", map[string]any{"kid": fmt.Sprintf("forged-%d", i)}, claims)
				_, err := v.Validate(context.Background(), tok)
				var e *bearerjwt.Error
				if !errors.As(err, &e) {
					t.Errorf("forged kid: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	start := idp.Requests(oidcprovider.JWKSPath) // the load at Start
	clk.advance(bearerjwt.DefaultMinRefetchInterval)
	flood(200)
	if got := idp.Requests(oidcprovider.JWKSPath) - start; got != 1 {
		t.Fatalf("%d JWKS fetches for a flood of 200 forged kids, want 1", got)
	}
	clk.advance(bearerjwt.DefaultMinRefetchInterval - time.Second)
	flood(50)
	if got := idp.Requests(oidcprovider.JWKSPath) - start; got != 1 {
		t.Fatalf("%d fetches 29 s later, want still 1", got)
	}
	clk.advance(time.Second)
	flood(50)
	if got := idp.Requests(oidcprovider.JWKSPath) - start; got != 2 {
		t.Fatalf("%d fetches 30 s later, want 2", got)
	}
}

// TestStartDegraded: the provider is down at start. Start reports it,
// tokens answer ErrUnavailable (never accepted, never refused), and once
// the provider is back the background retry loads the keys.
func TestStartDegraded(t *testing.T) {
	idp := startIdP(t)
	idp.SetAvailable(false)
	clk := newClock()
	v, err := bearerjwt.New(bearerjwt.Config{Issuer: idp.Issuer(), Audience: audience, RetryInterval: 10 * time.Millisecond},
		bearerjwt.Deps{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := v.Start(ctx); err == nil {
		t.Fatal("Start did not report the unreachable provider")
	}
	tok := idp.Mint("RS256", claimsAt(idp, clk.now()))
	if _, err := v.Validate(ctx, tok); !errors.Is(err, bearerjwt.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if v.Ready() {
		t.Fatal("ready without keys")
	}
	idp.SetAvailable(true)
	deadline := time.Now().Add(10 * time.Second)
	for !v.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("after the provider came back: %v", err)
	}
}

// TestProviderDownLater: once keys are loaded, an outage keeps them.
func TestProviderDownLater(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, nil)
	tok := idp.Mint("PS256", claimsAt(idp, clk.now()))
	idp.SetAvailable(false)
	if err := v.Refresh(context.Background()); err == nil {
		t.Fatal("refresh against a provider that is down succeeded")
	}
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Fatalf("last good keys dropped: %v", err)
	}
	// An unknown kid during the outage is refused, not a 5xx.
	clk.advance(time.Minute)
	forged := idp.MintWithHeader("RS256", map[string]any{"kid": "nope"}, claimsAt(idp, clk.now()))
	_, err := v.Validate(context.Background(), forged)
	wantRefused(t, err)
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	idp := startIdP(t)
	_, err := bearerjwt.Discover(context.Background(), http.DefaultClient, idp.WellKnownURI(), "https://someone.else")
	if err == nil {
		t.Fatal("accepted a discovery document naming another issuer")
	}
	m, err := bearerjwt.Discover(context.Background(), http.DefaultClient, idp.WellKnownURI(), idp.Issuer()+"/")
	if err != nil || m.Issuer != idp.Issuer() || m.JWKSURI == "" || m.TokenEndpoint == "" {
		t.Fatalf("discovery: %+v, %v", m, err)
	}
}

// TestWellKnownForm: Tiled's form gives the discovery URL, no issuer; the
// document's issuer is then expected.
func TestWellKnownForm(t *testing.T) {
	idp := startIdP(t)
	clk := newClock()
	v := newValidator(t, idp, clk, func(c *bearerjwt.Config) { c.Issuer, c.DiscoveryURL = "", idp.WellKnownURI() })
	claims := claimsAt(idp, clk.now())
	if _, err := v.Validate(context.Background(), idp.Mint("RS256", claims)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Validate(context.Background(), idp.Mint("RS256", with(claims, "iss", "https://evil.example")))
	wantRefused(t, err)
}
