package bearerjwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
)

// Token is what a validated token says.
type Token struct {
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	// Scopes are from "scope" and "scp" (see Scopes).
	Scopes []string
	// Tenant is the tenant claim's value ("" when none is configured or,
	// with no allowed tenants, the token has none).
	Tenant string
	// Claims are all the claims, as decoded JSON.
	Claims    map[string]any
	KeyID     string
	Algorithm string
}

// Validator validates tokens of one issuer. It is safe for concurrent use.
type Validator struct {
	cfg    checked
	client *http.Client
	now    func() time.Time
	logger *slog.Logger
	parser *jwt.Parser

	// state is the latest good discovery and key set; nil until loaded.
	state atomic.Pointer[state]

	// mu guards lastAttempt: the start of the latest fetch of any kind,
	// which the unknown-kid limiter measures from.
	mu          sync.Mutex
	lastAttempt time.Time
	flight      singleflight.Group
	// fetches counts JWKS fetch attempts, for tests and logs.
	fetches atomic.Int64
}

type state struct {
	meta     Metadata
	keys     *keySet
	loadedAt time.Time
}

// New checks cfg and returns a validator with no keys yet: call Start.
// Configuration errors (an algorithm outside the allow-list, a bad
// pointer) are returned, all of them.
func New(cfg Config, deps Deps) (*Validator, error) {
	c, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if deps.Client == nil {
		deps.Client = &http.Client{Timeout: fetchTimeout}
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Validator{cfg: c, client: deps.Client, now: deps.Now, logger: deps.Logger}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(c.Algorithms),
		jwt.WithLeeway(c.Leeway),
		jwt.WithTimeFunc(deps.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Start loads the discovery document and the keys once, then keeps them
// fresh in the background until ctx ends: every RefreshInterval once
// loaded, and with a growing delay (from RetryInterval up to a minute)
// while the first load has not succeeded. It returns the first load's
// error; the validator keeps trying either way, so the caller decides
// whether that error is fatal (start_degraded = false) or a warning.
func (v *Validator) Start(ctx context.Context) error {
	err := v.Refresh(ctx)
	go v.loop(ctx)
	return err
}

func (v *Validator) loop(ctx context.Context) {
	wait := v.cfg.RetryInterval
	for {
		next := v.cfg.RefreshInterval
		if !v.Ready() {
			next = wait
			wait = min(wait*2, MinRefreshInterval)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := v.Refresh(ctx); err != nil && ctx.Err() == nil {
			if v.Ready() {
				v.logger.WarnContext(ctx, "JWKS refresh failed; keeping the last good keys", "issuer", v.issuer(), "error", err)
			} else {
				v.logger.WarnContext(ctx, "issuer still unreachable; bearer tokens answer 503", "discovery", v.cfg.discovery, "error", err)
			}
		}
	}
}

// Ready reports whether keys have been loaded (bearer tokens can be judged).
func (v *Validator) Ready() bool { return v.state.Load() != nil }

// Metadata returns the discovery document, and false before it is loaded.
func (v *Validator) Metadata() (Metadata, bool) {
	s := v.state.Load()
	if s == nil {
		return Metadata{}, false
	}
	return s.meta, true
}

// Fetches is how many JWKS fetches were attempted.
func (v *Validator) Fetches() int64 { return v.fetches.Load() }

// Issuer is the expected iss: the configured one, else the discovered one
// ("" before discovery).
func (v *Validator) issuer() string {
	if s := v.state.Load(); s != nil {
		return s.meta.Issuer
	}
	return v.cfg.Issuer
}

// Refresh fetches the keys now (and the discovery document, until it has
// been read once). On failure the last good keys stay in use.
func (v *Validator) Refresh(ctx context.Context) error {
	v.mu.Lock()
	v.lastAttempt = v.now()
	v.mu.Unlock()
	_, err, _ := v.flight.Do("fetch", func() (any, error) { return nil, v.load(ctx) })
	return err
}

func (v *Validator) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	old := v.state.Load()
	var meta Metadata
	if old != nil {
		meta = old.meta
	} else {
		m, err := Discover(ctx, v.client, v.cfg.discovery, v.cfg.Issuer)
		if err != nil {
			return err
		}
		meta = m
	}
	v.fetches.Add(1)
	body, err := fetch(ctx, v.client, meta.JWKSURI)
	if err != nil {
		return err
	}
	ks, skipped, err := parseJWKS(body)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		v.logger.DebugContext(ctx, "JWKS keys skipped", "issuer", meta.Issuer, "skipped", skipped)
	}
	v.state.Store(&state{meta: meta, keys: ks, loadedAt: v.now()})
	if old == nil {
		v.logger.InfoContext(ctx, "issuer keys loaded", "issuer", meta.Issuer, "kids", ks.kids())
	} else if !slices.Equal(old.keys.kids(), ks.kids()) {
		v.logger.InfoContext(ctx, "issuer keys changed", "issuer", meta.Issuer, "kids", ks.kids())
	}
	return nil
}

// refetchLimited refetches the keys unless a fetch started less than
// MinRefetchInterval ago. Concurrent callers share one fetch. The fetch is
// not tied to the request that triggered it, so one client hanging up does
// not cancel it for the others.
func (v *Validator) refetchLimited(ctx context.Context) {
	now := v.now()
	v.mu.Lock()
	if !v.lastAttempt.IsZero() && now.Sub(v.lastAttempt) < v.cfg.MinRefetchInterval {
		v.mu.Unlock()
		return
	}
	v.lastAttempt = now
	v.mu.Unlock()
	_, err, _ := v.flight.Do("fetch", func() (any, error) { return nil, v.load(context.WithoutCancel(ctx)) })
	if err != nil {
		v.logger.WarnContext(ctx, "JWKS refetch failed", "issuer", v.issuer(), "error", err)
	}
}

// Validate checks raw and returns what it says. Errors are *Error (the
// token is refused; Code and Description are for the client) or
// ErrUnavailable (no keys yet: the client should retry).
func (v *Validator) Validate(ctx context.Context, raw string) (*Token, error) {
	if len(raw) > MaxTokenBytes {
		return nil, invalid("The access token is too large.", nil)
	}
	if v.state.Load() == nil {
		v.refetchLimited(ctx)
		if v.state.Load() == nil {
			return nil, ErrUnavailable
		}
	}
	alg, kid, err := parseHeader(raw)
	if err != nil {
		return nil, invalid("The access token is malformed.", err)
	}
	// Checked here as well as by the parser's method list, to say why.
	if !slices.Contains(v.cfg.Algorithms, alg) {
		return nil, invalid("The access token's signing algorithm is not accepted.", fmt.Errorf("alg %q", alg))
	}
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		return v.keysFor(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return nil, v.refusal(err, kid)
	}
	if !tok.Valid {
		return nil, invalid("The access token is invalid.", nil)
	}
	// WithIssuer is not used: the expected issuer is only known once
	// discovery has run (Tiled's well_known_uri form).
	iss, _ := claims["iss"].(string)
	if want := v.issuer(); iss != want {
		return nil, invalid("The access token was issued by another issuer.", fmt.Errorf("iss %q, want %q", iss, want))
	}
	out := &Token{Issuer: iss, Claims: claims, KeyID: kid, Algorithm: alg, Scopes: Scopes(claims)}
	out.Subject, _ = claims["sub"].(string)
	out.Audience, _ = claims.GetAudience()
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		out.ExpiresAt = exp.Time
	}
	if err := v.checkTenant(claims, out); err != nil {
		return nil, err
	}
	return out, nil
}

// keysFor returns the keys that may verify a token with kid and alg,
// refetching the JWKS (rate limited) when the kid is unknown: the issuer
// may have rotated its keys.
func (v *Validator) keysFor(ctx context.Context, kid, alg string) (any, error) {
	s := v.state.Load()
	keys, known := s.keys.candidates(kid, alg)
	if !known {
		v.refetchLimited(ctx)
		keys, known = v.state.Load().keys.candidates(kid, alg)
		if !known {
			return nil, errUnknownKID
		}
	}
	if len(keys) == 0 {
		return nil, errNoFittingKey
	}
	set := jwt.VerificationKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

var (
	errUnknownKID   = errors.New("no key with this kid")
	errNoFittingKey = errors.New("the key named cannot verify this algorithm")
)

// refusal turns golang-jwt's error into an RFC 6750 answer. Descriptions
// say what is wrong without echoing the token.
func (v *Validator) refusal(err error, kid string) *Error {
	switch {
	case errors.Is(err, errUnknownKID):
		return invalid("The access token is signed with an unknown key.", fmt.Errorf("kid %q: %w", kid, err))
	case errors.Is(err, errNoFittingKey):
		return invalid("The access token's key does not match its algorithm.", err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid("The access token is malformed.", err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalid("The access token's algorithm or key is not accepted.", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid("The access token's signature is invalid.", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid("The access token has expired.", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalid("The access token is not valid yet.", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid("The access token was issued in the future.", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid("The access token is not meant for this server (audience).", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid("The access token lacks a required claim.", err)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return invalid("The access token's claims are invalid.", err)
	}
	return invalid("The access token is invalid.", err)
}

func (v *Validator) checkTenant(claims map[string]any, t *Token) error {
	if v.cfg.tenant.IsZero() {
		return nil
	}
	val, ok := v.cfg.tenant.Lookup(map[string]any(claims))
	s, isStr := val.(string)
	if ok && isStr {
		t.Tenant = s
	}
	if len(v.cfg.AllowedTenants) == 0 {
		return nil
	}
	if !ok || !isStr || s == "" {
		return invalid("The access token names no tenant.", fmt.Errorf("claim %s missing or not a string", v.cfg.tenant))
	}
	if !slices.Contains(v.cfg.AllowedTenants, s) {
		return invalid("The access token's tenant is not allowed here.", fmt.Errorf("tenant %q not in allowed_tenants", s))
	}
	return nil
}
