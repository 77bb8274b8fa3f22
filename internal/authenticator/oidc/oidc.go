// Package oidc logs people in through an OpenID Connect provider (Tiled's
// OIDCAuthenticator): the authorization code flow with PKCE (RFC 7636),
// state and nonce, and the ID token verified against the provider's keys.
//
// It owns the conversation with the identity provider only: building the
// authorization URL, exchanging the code and verifying the ID token. Where
// the state, verifier and nonce are kept between the two legs of a login is
// the caller's business (the session database, so any replica can finish a
// login another one started).
//
// Endpoints and keys come either from discovery (well_known_uri, Tiled 0.2)
// or from configuration (token_uri, authorization_endpoint and public_keys,
// the older form of seed 000). A provider that cannot be reached when the
// server starts does not stop the server: discovery is retried on use, at
// most once per Config.RetryAfter, and logins answer
// authenticator.ErrUnavailable (503) until it succeeds.
package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tiledgo/server/internal/authenticator"
)

// ErrRejected means the identity provider did not vouch for anyone: it
// refused the code, or its answer did not verify (signature, issuer,
// audience, expiry, nonce). The person may retry; the login is 401.
var ErrRejected = errors.New("identity provider login rejected")

// Defaults.
const (
	// DefaultRetryAfter spaces discovery attempts while the provider is
	// unreachable, so that a login storm does not become a storm of
	// requests to a provider that is down.
	DefaultRetryAfter = 5 * time.Second
	// discoveryTimeout bounds one discovery request.
	discoveryTimeout = 10 * time.Second
	// maxDocument bounds what is read of a discovery document.
	maxDocument     = 1 << 20
	wellKnownSuffix = "/.well-known/openid-configuration"
)

// Config is one OIDC provider's settings (Tiled's OIDCAuthenticator args).
type Config struct {
	ClientID     string
	ClientSecret string
	// Audience must be among the ID token's aud; ClientID when empty
	// (Tiled's `audience`; the older form had none).
	Audience string
	// WellKnownURI is the discovery document. When empty, the explicit
	// endpoints and keys below are used.
	WellKnownURI          string
	TokenURI              string
	AuthorizationEndpoint string
	// PublicKeys are JWKs (RFC 7517) that sign ID tokens.
	PublicKeys []map[string]any
	// Issuer is checked against the ID token's iss in the explicit form when
	// set. Seed 000's form names no issuer, so there the check is skipped
	// and the configured keys alone vouch for the token. With discovery the
	// document's issuer is always checked.
	Issuer      string
	ExtraScopes []string
	// UserIDClaim names the ID token claim that becomes the identity id
	// ("sub" when empty, as Tiled).
	UserIDClaim string
	// TokenEndpointAuthMethod is how the client authenticates when it
	// exchanges a code: AuthBasic, AuthPost or AuthNone (a public client,
	// PKCE alone). Empty chooses from the discovery document (see
	// chooseAuthMethod); the explicit form without discovery uses AuthBasic.
	TokenEndpointAuthMethod string
	RedirectOnSuccess       string
	RedirectOnFailure       string
	// RetryAfter is the least time between two discovery attempts while the
	// provider is unreachable, and what a 503 asks clients to wait.
	// DefaultRetryAfter when zero.
	RetryAfter time.Duration
	// Now is the clock for ID token expiry; time.Now when nil.
	Now func() time.Time
}

// LogValue keeps the client secret out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", c.ClientID), slog.String("client_secret", "[redacted]"),
		slog.String("well_known_uri", c.WellKnownURI), slog.String("token_uri", c.TokenURI),
		slog.String("authorization_endpoint", c.AuthorizationEndpoint))
}

// LogValue keeps the client secret out of logs.
func (p *Provider) LogValue() slog.Value { return p.cfg.LogValue() }

// Client authentication methods at the token endpoint (OpenID Connect Core
// section 9; RFC 7591 section 2).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthNone  = "none"
)

// Provider is one configured OIDC provider. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	client *http.Client
	logger *slog.Logger

	// mu guards the fields below and is held during a discovery attempt,
	// so concurrent logins share one attempt instead of each making one.
	mu      sync.Mutex
	ep      *endpoints
	lastTry time.Time
	lastErr error
}

// endpoints is what discovery (or the explicit form) yields.
type endpoints struct {
	authURL, tokenURL string
	// authStyle is how the client secret travels to tokenURL.
	authStyle oauth2.AuthStyle
	verifier  *gooidc.IDTokenVerifier
}

// New checks cfg and returns the provider. With discovery it tries the
// provider once now; if that fails it logs a warning and returns a Provider
// that retries on use, so one unreachable identity provider does not keep
// the server (and its other providers) from starting. Only configuration
// errors are returned.
func New(ctx context.Context, cfg Config, client *http.Client, logger *slog.Logger) (*Provider, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("oidc: client_id is required")
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.ClientID
	}
	if cfg.UserIDClaim == "" {
		cfg.UserIDClaim = "sub"
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	switch cfg.TokenEndpointAuthMethod {
	case "", AuthBasic, AuthPost:
		if cfg.ClientSecret == "" {
			return nil, fmt.Errorf("oidc: client_secret is required (or token_endpoint_auth_method: %s for a public client)", AuthNone)
		}
	case AuthNone:
		if cfg.ClientSecret != "" {
			return nil, fmt.Errorf("oidc: token_endpoint_auth_method %s is for a public client: remove client_secret", AuthNone)
		}
	default:
		return nil, fmt.Errorf("oidc: token_endpoint_auth_method %q is not one of %s, %s, %s",
			cfg.TokenEndpointAuthMethod, AuthBasic, AuthPost, AuthNone)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Provider{cfg: cfg, client: client, logger: logger}

	if cfg.WellKnownURI == "" {
		ep, err := p.explicit()
		if err != nil {
			return nil, err
		}
		p.ep = ep
		return p, nil
	}
	if err := checkURL("well_known_uri", cfg.WellKnownURI); err != nil {
		return nil, err
	}
	if _, err := p.endpoints(ctx); err != nil {
		logger.WarnContext(ctx, "OIDC discovery failed; logins with this provider answer 503 until it succeeds",
			"well_known_uri", cfg.WellKnownURI, "error", err)
	}
	return p, nil
}

// RedirectOnSuccess is where a browser login sends the person with the
// tokens in the query ("" to answer with the token JSON).
func (p *Provider) RedirectOnSuccess() string { return p.cfg.RedirectOnSuccess }

// RedirectOnFailure is where a failed browser login sends the person ("" to
// answer 401).
func (p *Provider) RedirectOnFailure() string { return p.cfg.RedirectOnFailure }

// RetryAfter is how long a client should wait after a 503.
func (p *Provider) RetryAfter() time.Duration { return p.cfg.RetryAfter }

// AuthCodeURL is the identity provider's authorization URL for one login:
// scope "openid offline_access" plus the extra scopes, prompt=login (as
// Tiled, so a shared browser does not silently log in the previous person),
// the nonce, and the S256 challenge of verifier.
func (p *Provider) AuthCodeURL(ctx context.Context, redirectURI, state, nonce, verifier string) (string, error) {
	ep, err := p.endpoints(ctx)
	if err != nil {
		return "", err
	}
	return p.oauth(ep, redirectURI).AuthCodeURL(state,
		oauth2.SetAuthURLParam("prompt", "login"),
		gooidc.Nonce(nonce),
		oauth2.S256ChallengeOption(verifier)), nil
}

// Exchange trades an authorization code for the identity id it vouches for.
// The client authenticates as the provider expects (see chooseAuthMethod;
// Tiled always uses client_secret_post, which strict providers refuse for
// clients registered the default way). The ID token must be signed by one of the provider's keys with
// an asymmetric algorithm, name the provider as issuer and our audience,
// be unexpired and carry nonce. Errors are ErrRejected or
// authenticator.ErrUnavailable, wrapped.
func (p *Provider) Exchange(ctx context.Context, code, redirectURI, verifier, nonce string) (string, error) {
	ep, err := p.endpoints(ctx)
	if err != nil {
		return "", err
	}
	tok, err := p.oauth(ep, redirectURI).Exchange(
		context.WithValue(ctx, oauth2.HTTPClient, p.client), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", classifyExchange(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", fmt.Errorf("%w: token response has no id_token", ErrRejected)
	}
	tr := &trace{}
	idt, err := ep.verifier.Verify(context.WithValue(ctx, traceKey{}, tr), raw)
	if err != nil {
		if tr.fetchErr != nil {
			return "", fmt.Errorf("%w: fetch signing keys: %w", authenticator.ErrUnavailable, tr.fetchErr)
		}
		return "", fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return p.identity(idt, tok.AccessToken, nonce)
}

// identity applies the checks go-oidc leaves to its caller and reads the
// user id claim.
func (p *Provider) identity(idt *gooidc.IDToken, accessToken, nonce string) (string, error) {
	// OpenID Connect Core 3.1.3.7 (11): the nonce ties the token to the
	// login this browser started, so a token from another login (replayed
	// or injected) is refused.
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return "", fmt.Errorf("%w: nonce mismatch", ErrRejected)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return "", fmt.Errorf("%w: at_hash: %w", ErrRejected, err)
		}
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("%w: claims: %w", ErrRejected, err)
	}
	// Core 3.1.3.7 (4, 5): a token for several audiences names the one it
	// was issued to in azp; it must be us.
	if len(idt.Audience) > 1 {
		if azp, _ := claims["azp"].(string); azp != p.cfg.ClientID {
			return "", fmt.Errorf("%w: several audiences and azp %q is not the client", ErrRejected, azp)
		}
	}
	id, ok := claims[p.cfg.UserIDClaim].(string)
	if !ok || id == "" {
		return "", fmt.Errorf("%w: ID token has no string claim %q", ErrRejected, p.cfg.UserIDClaim)
	}
	return id, nil
}

// classifyExchange tells a refused code (the person's doing: 401) from a
// provider that could not be asked (503).
func classifyExchange(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && re.Response.StatusCode >= 500 {
			return fmt.Errorf("%w: token endpoint: %w", authenticator.ErrUnavailable, err)
		}
		return fmt.Errorf("%w: token endpoint: %w", ErrRejected, err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%w: token endpoint: %w", authenticator.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: token endpoint: %w", ErrRejected, err)
}

func (p *Provider) oauth(ep *endpoints, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: ep.authURL, TokenURL: ep.tokenURL, AuthStyle: ep.authStyle},
		RedirectURL:  redirectURI,
		Scopes:       scopes(p.cfg.ExtraScopes),
	}
}

// scopes is Tiled's set: openid and offline_access, then the extra ones,
// each once.
func scopes(extra []string) []string {
	out := []string{gooidc.ScopeOpenID, gooidc.ScopeOfflineAccess}
	for _, s := range extra {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// endpoints returns the discovered endpoints, discovering them if that has
// not succeeded yet and the last attempt is older than RetryAfter.
func (p *Provider) endpoints(ctx context.Context) (*endpoints, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ep != nil {
		return p.ep, nil
	}
	now := p.cfg.Now()
	if p.lastErr != nil && now.Sub(p.lastTry) < p.cfg.RetryAfter {
		return nil, fmt.Errorf("%w: discovery: %w", authenticator.ErrUnavailable, p.lastErr)
	}
	p.lastTry = now
	// The attempt serves every waiting login, so it is not cut short when
	// the request that happened to start it goes away.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
	defer cancel()
	ep, err := p.discover(dctx)
	if err != nil {
		p.lastErr = err
		return nil, fmt.Errorf("%w: discovery: %w", authenticator.ErrUnavailable, err)
	}
	if p.lastErr != nil {
		p.logger.InfoContext(ctx, "OIDC discovery succeeded after earlier failures", "well_known_uri", p.cfg.WellKnownURI)
	}
	p.ep, p.lastErr = ep, nil
	return ep, nil
}

// discover reads the discovery document (OpenID Connect Discovery 1.0).
// The document is fetched from well_known_uri as configured rather than
// derived from an issuer, as Tiled does; an issuer that does not match the
// URI is logged, not refused, because multi-tenant providers publish such
// documents, and the tokens are still checked against the document's issuer.
func (p *Provider) discover(ctx context.Context) (*endpoints, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.WellKnownURI, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", p.cfg.WellKnownURI, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.cfg.WellKnownURI, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", p.cfg.WellKnownURI, resp.Status)
	}
	doc, err := parseDiscovery(body)
	if err != nil {
		return nil, fmt.Errorf("discovery document %s: %w", p.cfg.WellKnownURI, err)
	}
	var methods struct {
		Supported *[]string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = json.Unmarshal(body, &methods) // parseDiscovery has decoded it already
	method, err := chooseAuthMethod(p.cfg.TokenEndpointAuthMethod, methods.Supported)
	if err != nil {
		return nil, fmt.Errorf("discovery document %s: %w", p.cfg.WellKnownURI, err)
	}
	if p.cfg.TokenEndpointAuthMethod != "" && methods.Supported != nil && !slices.Contains(*methods.Supported, method) {
		p.logger.WarnContext(ctx, "OIDC provider does not list the configured token_endpoint_auth_method; using it as configured",
			"token_endpoint_auth_method", method, "supported", *methods.Supported)
	}
	if strings.TrimSuffix(doc.IssuerURL, "/")+wellKnownSuffix != p.cfg.WellKnownURI {
		p.logger.WarnContext(ctx, "OIDC issuer does not match well_known_uri; ID tokens are checked against the document's issuer",
			"issuer", doc.IssuerURL, "well_known_uri", p.cfg.WellKnownURI)
	}
	keys := &tracingKeySet{gooidc.NewRemoteKeySet(gooidc.ClientContext(context.Background(), p.client), doc.JWKSURL)}
	return &endpoints{
		authURL: doc.AuthURL, tokenURL: doc.TokenURL, authStyle: authStyle(method),
		verifier: gooidc.NewVerifier(doc.IssuerURL, keys, p.verifierConfig(asymmetric(doc.Algorithms), false)),
	}, nil
}

// chooseAuthMethod picks how the client authenticates at the token
// endpoint. A configured method wins. Otherwise client_secret_basic when the
// provider offers it or says nothing (it is the default of OpenID Connect
// Core section 9 and of RFC 7591, so a client registered without a method
// has it), else client_secret_post. A provider offering neither (only
// private_key_jwt, say) needs a method this server does not speak.
func chooseAuthMethod(configured string, supported *[]string) (string, error) {
	switch {
	case configured != "":
		return configured, nil
	case supported == nil || len(*supported) == 0 || slices.Contains(*supported, AuthBasic):
		return AuthBasic, nil
	case slices.Contains(*supported, AuthPost):
		return AuthPost, nil
	}
	return "", fmt.Errorf("token_endpoint_auth_methods_supported %q offers neither %s nor %s; "+
		"register the client with one of them, or set token_endpoint_auth_method", *supported, AuthBasic, AuthPost)
}

// authStyle is how golang.org/x/oauth2 sends the client's credentials for
// method. Basic is AuthStyleInHeader, which form-encodes id and secret
// before base64 as RFC 6749 section 2.3.1 requires (Hydra insists on it);
// none sends client_id alone in the body.
func authStyle(method string) oauth2.AuthStyle {
	if method == AuthBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// parseDiscovery decodes a discovery document and checks the members the
// code flow needs.
func parseDiscovery(body []byte) (gooidc.ProviderConfig, error) {
	var doc gooidc.ProviderConfig
	if err := json.Unmarshal(body, &doc); err != nil {
		return doc, fmt.Errorf("decode: %w", err)
	}
	for _, u := range []struct{ name, value string }{
		{"issuer", doc.IssuerURL}, {"authorization_endpoint", doc.AuthURL},
		{"token_endpoint", doc.TokenURL}, {"jwks_uri", doc.JWKSURL},
	} {
		if err := checkURL(u.name, u.value); err != nil {
			return doc, err
		}
	}
	return doc, nil
}

// explicit builds the endpoints of seed 000's form: no discovery, keys from
// the configuration.
func (p *Provider) explicit() (*endpoints, error) {
	if err := checkURL("token_uri", p.cfg.TokenURI); err != nil {
		return nil, err
	}
	if err := checkURL("authorization_endpoint", p.cfg.AuthorizationEndpoint); err != nil {
		return nil, err
	}
	keys, algs, err := parseKeys(p.cfg.PublicKeys)
	if err != nil {
		return nil, err
	}
	method, _ := chooseAuthMethod(p.cfg.TokenEndpointAuthMethod, nil)
	return &endpoints{
		authURL: p.cfg.AuthorizationEndpoint, tokenURL: p.cfg.TokenURI, authStyle: authStyle(method),
		verifier: gooidc.NewVerifier(p.cfg.Issuer, keys, p.verifierConfig(algs, p.cfg.Issuer == "")),
	}, nil
}

func (p *Provider) verifierConfig(algs []string, skipIssuer bool) *gooidc.Config {
	return &gooidc.Config{
		ClientID:             p.cfg.Audience,
		SupportedSigningAlgs: algs,
		SkipIssuerCheck:      skipIssuer,
		Now:                  p.cfg.Now,
	}
}

func checkURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("oidc: %s %q is not an absolute http(s) URL", name, s)
	}
	return nil
}
