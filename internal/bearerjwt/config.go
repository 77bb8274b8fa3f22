package bearerjwt

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults and bounds.
const (
	// DefaultRefreshInterval is seed 001's jwks_refresh_secs.
	DefaultRefreshInterval = time.Hour
	// MinRefreshInterval is the clamp on RefreshInterval (seed 001: "clamped
	// to >= 60 s"), so a typo cannot make every replica poll the issuer.
	MinRefreshInterval = time.Minute
	// DefaultMinRefetchInterval bounds refetches caused by unknown kids.
	DefaultMinRefetchInterval = 30 * time.Second
	// DefaultRetryInterval is the first wait before retrying a failed first
	// load; it doubles up to MinRefreshInterval.
	DefaultRetryInterval = 5 * time.Second
	// DefaultLeeway is seed 001's leeway_secs.
	DefaultLeeway = 60 * time.Second
	// MaxLeeway bounds the clock-skew tolerance: more would make exp
	// meaningless for short-lived tokens.
	MaxLeeway = 5 * time.Minute
	// MaxTokenBytes refuses absurd tokens before any parsing.
	MaxTokenBytes = 16 << 10
	// fetchTimeout bounds one discovery or JWKS request.
	fetchTimeout = 10 * time.Second
	// maxDocumentBytes bounds what is read of a discovery document or JWKS.
	maxDocumentBytes = 1 << 20
	// minRSABits refuses weak RSA keys in a JWKS (RFC 7518 section 3.3).
	minRSABits = 2048
	// WellKnownSuffix is appended to an issuer for discovery (OpenID
	// Connect Discovery 1.0 section 4).
	WellKnownSuffix = "/.well-known/openid-configuration"
)

// Asymmetric is every algorithm an allow-list may hold: RSA PKCS#1 v1.5,
// RSA-PSS and ECDSA (RFC 7518 section 3.1). "none" proves nothing and an
// HS* token is "signed" with a shared secret, which with a public key as
// the secret is the classic algorithm-confusion forgery (RFC 8725 2.1).
var Asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// Config is one issuer's validation settings.
type Config struct {
	// Issuer is the expected iss. With DiscoveryURL empty, discovery is
	// at Issuer + WellKnownSuffix and the document must name this issuer.
	Issuer string
	// DiscoveryURL, when set, is fetched instead (Tiled's well_known_uri);
	// if Issuer is empty the document's issuer is expected.
	DiscoveryURL string
	// Audience must be among the token's aud; empty disables the check.
	Audience string
	// Algorithms is the allow-list; empty means every Asymmetric one.
	Algorithms []string
	// Leeway is the clock-skew tolerance for exp, nbf and iat.
	Leeway time.Duration
	// RefreshInterval is how often the JWKS is refetched in the background
	// (clamped to at least MinRefreshInterval); zero is the default.
	RefreshInterval time.Duration
	// MinRefetchInterval bounds refetches caused by unknown kids; zero is
	// the default. Tests shorten it.
	MinRefetchInterval time.Duration
	// RetryInterval is the first wait before retrying a failed first load;
	// zero is the default. Tests shorten it.
	RetryInterval time.Duration
	// TenantClaim is an RFC 6901 JSON pointer into the claims ("/tid").
	TenantClaim string
	// AllowedTenants, when not empty, lists the tenant values accepted.
	AllowedTenants []string
}

// Deps are what the validator uses from outside.
type Deps struct {
	// Client fetches discovery and the JWKS; a client with a 10 s timeout
	// when nil.
	Client *http.Client
	// Now is the clock for exp, nbf, iat and the refetch limiter.
	Now    func() time.Time
	Logger *slog.Logger
}

// checked is Config after validation, with the derived values.
type checked struct {
	Config
	discovery string
	tenant    Pointer
}

// check validates cfg and fills in defaults. Every problem is returned,
// joined, so a configuration error names them all.
func (cfg Config) check() (checked, error) {
	var errs []error
	c := checked{Config: cfg}
	switch {
	case cfg.DiscoveryURL != "":
		if err := checkURL(cfg.DiscoveryURL); err != nil {
			errs = append(errs, fmt.Errorf("discovery URL: %w", err))
		}
		c.discovery = cfg.DiscoveryURL
	case cfg.Issuer == "":
		errs = append(errs, errors.New("issuer is required"))
	default:
		if err := checkURL(cfg.Issuer); err != nil {
			errs = append(errs, fmt.Errorf("issuer: %w", err))
		}
		c.discovery = strings.TrimSuffix(cfg.Issuer, "/") + WellKnownSuffix
	}
	if len(cfg.Algorithms) == 0 {
		c.Algorithms = slices.Clone(Asymmetric)
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains(Asymmetric, a) {
			errs = append(errs, fmt.Errorf("algorithm %q is not accepted: only RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 and ES512 "+
				"(\"none\" and HS* would let anyone who knows the issuer's public key forge tokens)", a))
		}
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("leeway %s must be between 0 and %s", cfg.Leeway, MaxLeeway))
	}
	switch {
	case cfg.RefreshInterval == 0:
		c.RefreshInterval = DefaultRefreshInterval
	case cfg.RefreshInterval < MinRefreshInterval:
		c.RefreshInterval = MinRefreshInterval
	}
	if c.MinRefetchInterval <= 0 {
		c.MinRefetchInterval = DefaultMinRefetchInterval
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if cfg.TenantClaim != "" {
		p, err := ParsePointer(cfg.TenantClaim)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("tenant claim: %w", err))
		case p.IsZero():
			errs = append(errs, errors.New("tenant claim must point into the claims, as in \"/tid\""))
		}
		c.tenant = p
	} else if len(cfg.AllowedTenants) > 0 {
		errs = append(errs, errors.New("allowed tenants need a tenant claim to read the tenant from"))
	}
	return c, errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}
