package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/bearerauth"
	"github.com/tiledgo/server/internal/bearerjwt"
	"github.com/tiledgo/server/internal/config"
	"github.com/tiledgo/server/internal/http/api"
	"github.com/tiledgo/server/internal/http/docs"
	"github.com/tiledgo/server/internal/http/reload"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/tree"
)

// Resource-server settings that are not configuration.
const (
	principalCacheTTL = time.Minute
	principalCacheMax = 10_000
	// issuerRetryAfter is what a 503 asks bearer clients to wait while an
	// issuer's keys have not loaded (the background retry's first delay).
	issuerRetryAfter = 5 * time.Second
)

// resourceServer is the part of a replica that accepts external bearer
// JWTs: seed 001's auth block and Tiled's proxied providers.
type resourceServer struct {
	verifier *bearerauth.Verifier
	gate     *bearerauth.Gate
	proxied  map[string]*bearerjwt.Validator
}

// buildResourceServer makes and starts a validator per external issuer.
// Keys load in the background until ctx ends. An issuer unreachable now is
// a warning (bearer requests answer 503 until it answers), unless the auth
// block says start_degraded = false: then it is an error and the server
// does not start.
func buildResourceServer(ctx context.Context, cfg *config.Config, ids identity.Store, logger *slog.Logger) (*resourceServer, error) {
	rs := &resourceServer{proxied: map[string]*bearerjwt.Validator{}}
	client := tracedClient(10 * time.Second)
	deps := bearerjwt.Deps{Client: client, Now: time.Now, Logger: logger}
	var issuers []bearerauth.Issuer
	if a := cfg.Auth; a.Enabled {
		v, err := bearerjwt.New(bearerjwt.Config{
			Issuer: a.Issuer, Audience: a.Audience, Algorithms: a.Algorithms, Leeway: a.Leeway,
			RefreshInterval: a.JWKSRefresh, TenantClaim: a.TenantClaim, AllowedTenants: a.AllowedTenants,
		}, deps)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		if err := v.Start(ctx); err != nil {
			if !a.StartDegraded {
				return nil, fmt.Errorf("auth.issuer %s: signing keys could not be loaded at start and auth.start_degraded is false: %w", a.Issuer, err)
			}
			logger.Warn("identity provider unreachable at start; bearer requests answer 503 until its keys load (auth.start_degraded)",
				"issuer", a.Issuer, "error", err)
		}
		issuers = append(issuers, bearerauth.Issuer{
			Validator: v, Mode: bearerauth.Resource, Provider: a.Issuer, UserIDClaim: a.UserIDClaim,
			ReadScopes: a.ReadScopes, RetryAfter: issuerRetryAfter,
		})
	}
	var proxiedScopes []string
	for _, p := range cfg.Authentication.Providers {
		if p.Proxied == nil {
			continue
		}
		pa := p.Proxied
		// Tiled checks the provider's tokens against the discovery
		// document's algorithms; any RS/PS/ES algorithm is accepted here
		// (the key must fit it), never none or HS*.
		v, err := bearerjwt.New(bearerjwt.Config{DiscoveryURL: pa.WellKnownURI, Audience: pa.Audience, Leeway: config.DefaultAuthLeeway}, deps)
		if err != nil {
			return nil, fmt.Errorf("authentication.providers[%s]: %w", p.Name, err)
		}
		if err := v.Start(ctx); err != nil {
			logger.Warn("identity provider unreachable at start; its bearer tokens answer 503 until its keys load",
				"provider", p.Name, "well_known_uri", pa.WellKnownURI, "error", err)
		}
		rs.proxied[p.Name] = v
		proxiedScopes = pa.RequiredScopes()
		issuers = append(issuers, bearerauth.Issuer{
			Validator: v, Mode: bearerauth.Proxied, Provider: p.Name, UserIDClaim: pa.UserIDClaim,
			ScopesMap: pa.ScopesMap, Entra: pa.Entra, RetryAfter: issuerRetryAfter,
		})
	}
	if len(issuers) == 0 {
		return nil, nil
	}
	rs.verifier = &bearerauth.Verifier{
		Issuers: issuers, Identities: ids, Now: time.Now, Logger: logger,
		Cache: &bearerauth.Cache{TTL: principalCacheTTL, Max: principalCacheMax, Now: time.Now},
	}
	for _, ad := range cfg.Authentication.TiledAdmins {
		rs.verifier.Admins = append(rs.verifier.Admins, bearerauth.Admin{Provider: ad.Provider, ID: ad.ID})
	}
	// Which routes are reads comes from the one route table of the docs.
	rs.gate = &bearerauth.Gate{Verifier: rs.verifier, ProxiedScopes: proxiedScopes, IsRead: docs.IsRead}
	return rs, nil
}

// degraded reports an issuer whose keys have not loaded.
func (rs *resourceServer) degraded() error {
	var down []string
	for _, iss := range rs.verifier.Issuers {
		if !iss.Validator.Ready() {
			down = append(down, iss.Provider)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("identity provider signing keys not loaded: %s", strings.Join(down, ", "))
	}
	return nil
}

// proxiedInfo is the about document's view of a proxied provider.
func proxiedInfo(v *bearerjwt.Validator, pa *config.ProxiedArgs) func() api.ProxiedInfo {
	return func() api.ProxiedInfo {
		m, _ := v.Metadata()
		return api.ProxiedInfo{
			DeviceAuthorizationEndpoint: m.DeviceAuthorizationEndpoint, TokenEndpoint: m.TokenEndpoint,
			EndSessionEndpoint: m.EndSessionEndpoint, DeviceFlowClientID: pa.DeviceFlowClientID, ExtraScopes: pa.ExtraScopes,
		}
	}
}

// reloadSurface is POST /api/v1/reload: rebuild the trees from the
// configuration and swap them in. The admin token applies when the auth
// block is off (seed 001's legacy guard) or keeps it (admin_token_fallback).
func reloadSurface(cfg *config.Config, root *tree.Swappable, rs *resourceServer, logger *slog.Logger) *reload.Handler {
	token := cfg.Auth.AdminToken.Reveal()
	if cfg.Auth.Enabled && !cfg.Auth.AdminTokenFallback {
		token = ""
	}
	policy := &bearerauth.ReloadPolicy{AdminToken: token, ReloadScopes: cfg.Auth.ReloadScopes, Gate: &bearerauth.Gate{}}
	if rs != nil {
		policy.Gate = rs.gate
	}
	return &reload.Handler{
		Authorize: policy.Authorize,
		Reload: func(ctx context.Context) (tree.Changes, error) {
			n, err := buildTree(cfg, logger)
			if err != nil {
				return tree.Changes{}, fmt.Errorf("reload: %w", err)
			}
			c, ok := n.(tree.Container)
			if !ok {
				return tree.Changes{}, errors.New("reload: the root is not a container")
			}
			return root.Swap(c), nil
		},
		Logger: logger,
	}
}

// middlewares are the resource server's route rules, if it is on.
func (rs *resourceServer) middlewares() []echo.MiddlewareFunc {
	if rs == nil {
		return nil
	}
	return []echo.MiddlewareFunc{rs.gate.Middleware}
}
