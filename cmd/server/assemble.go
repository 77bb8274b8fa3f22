package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"

	"github.com/tiledgo/server/internal/access"
	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/authenticator/oidc"
	"github.com/tiledgo/server/internal/authenticator/pam"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/config"
	"github.com/tiledgo/server/internal/http/api"
	"github.com/tiledgo/server/internal/http/authapi"
	"github.com/tiledgo/server/internal/http/data"
	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/pages"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/metrics"
	"github.com/tiledgo/server/internal/serialize"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/telemetry"
	"github.com/tiledgo/server/internal/tokens"
	"github.com/tiledgo/server/internal/tree"
	"github.com/tiledgo/server/internal/version"
)

const (
	gcInterval    = 10 * time.Minute
	gcRetain      = 24 * time.Hour
	gcBatch       = 1000
	schemaRecheck = 5 * time.Second
)

// app is one assembled replica.
type app struct {
	server        *api.Server
	metrics       *metrics.Metrics
	singleUserKey string
	generatedKey  bool
	closers       []func()
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// assemble builds the tree, the authentication layer and the HTTP surface.
func assemble(ctx context.Context, cfg *config.Config, logger *slog.Logger, build version.Info) (*app, error) {
	built, err := buildTree(cfg, logger)
	if err != nil {
		return nil, err
	}
	rootC, ok := built.(tree.Container)
	if !ok {
		return nil, errors.New("the root of the served trees is not a container")
	}
	// Swappable, so POST /api/v1/reload can rescan while serving.
	root := tree.NewSwappable(rootC)
	a := &app{metrics: metrics.New(metrics.Build{Version: build.Version, Commit: build.Commit, TiledAPI: version.TiledAPIVersion})}
	deps := api.Deps{
		Logger: logger, Build: build, Formats: serialize.Formats(), Aliases: serialize.Aliases(), Queries: data.Queries(),
		Tracing: telemetry.Enabled(getenvOS), ReadinessTimeout: cfg.Server.ReadinessTimeout,
		AllowOrigins: cfg.AllowOrigins, RootPath: cfg.Uvicorn.RootPath,
		Forwarded: forwarded.Resolver{
			Trusted: cfg.Server.TrustedProxies, Header: forwarded.Header(cfg.Server.ForwardedHeader),
		},
		MaxInFlight: cfg.Server.MaxInFlight, RequestTimeout: cfg.Server.RequestTimeout,
		DatabaseBudget: cfg.Server.DatabaseTimeout,
	}
	deps.Docs = docsSurface(cfg)
	deps.Metrics = a.metrics
	if cfg.Metrics.Prometheus {
		deps.MetricsHandler = a.metrics.Handler()
	}
	policy := access.Policy(access.AllowAll{})
	auth := &cfg.Authentication

	if cfg.SingleUser() {
		a.singleUserKey = auth.SingleUserAPIKey.Reveal()
		if a.singleUserKey == "" {
			a.singleUserKey, a.generatedKey = generateKey(), true
		}
		if cfg.AccessControl != nil {
			logger.Warn("access_control is ignored in single-user mode: the single-user key sees everything")
		}
		deps.Resolver = &authn.Resolver{SingleUserKey: a.singleUserKey, AllowAnonymous: auth.AllowAnonymousAccess}
		deps.View = view.MustNew(build.Version)
		deps.Pages = &pages.Handlers{SingleUser: true, Resolver: deps.Resolver, View: deps.View, Now: time.Now, Logger: logger}
		deps.Surfaces = []api.Registrar{&data.Handlers{Root: root, Policy: policy, Logger: logger},
			reloadSurface(cfg, root, nil, logger)}
		a.server = api.New(deps)
		a.metrics.ObserveReady(func() bool { return !a.server.Draining() })
		return a, nil
	}

	if cfg.AccessControl != nil {
		base := ""
		if len(cfg.Sources) > 0 {
			base = filepath.Dir(cfg.Sources[0])
		}
		policy, err = access.FromConfig(cfg.AccessControl.Policy, cfg.AccessControl.Args,
			access.Options{AllowAnonymous: auth.AllowAnonymousAccess, BaseDir: base})
		if err != nil {
			return nil, err
		}
		if err := checkTagCoverage(cfg, policy); err != nil {
			return nil, err
		}
	}
	// Providers first: a provider this binary or host cannot serve (PAM
	// without libpam) is a configuration error, reported before any
	// database is touched.
	providers, err := buildProviders(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() {
		if err := st.Close(); err != nil {
			logger.Warn("close session database", "error", err)
		}
	})

	// Refuse a stale schema without refusing to start: probes answer, the
	// rest answers 503 until `server migrate up` has run (checked again
	// every few seconds), so a rollout waits for its migration Job.
	var schemaOK atomic.Bool
	checkSchema := func(ctx context.Context) error {
		if cfg.Database.InitIfNotExists {
			// Up takes an advisory lock: replicas starting together migrate once.
			if _, err := st.Migrator().Up(ctx); err != nil {
				schemaOK.Store(false)
				return err
			}
		}
		err := st.Migrator().Check(ctx)
		schemaOK.Store(err == nil)
		if v, verr := st.Migrator().Version(ctx); verr == nil {
			a.metrics.SetSchemaVersion(v)
		}
		return err
	}
	if err := checkSchema(ctx); err != nil {
		logger.Error("session database not ready; answering 503 until it is", "error", err)
	}
	go every(ctx, schemaRecheck, func() {
		if !schemaOK.Load() {
			_ = checkSchema(ctx)
		}
	})

	keys, err := secretKeys(auth, logger)
	if err != nil {
		return nil, err
	}
	now := time.Now
	mgr := &sessions.Manager{
		Sessions: st, Identities: st, Keys: keys, Now: now, Logger: logger, Observe: a.metrics,
		Config: sessions.Config{
			AccessTokenMaxAge: auth.AccessTokenMaxAge, RefreshMaxAge: auth.RefreshTokenMaxAge,
			SessionMaxAge: auth.SessionMaxAge, Grace: cfg.Server.RefreshGracePeriod,
			MaxSessions: sessions.DefaultConfig().MaxSessions,
		},
	}
	confirmations := &sessions.ConfirmBatcher{Store: st, Logger: logger}
	mgr.Confirmations = confirmations
	confirmCtx, stopConfirm := context.WithCancel(context.WithoutCancel(ctx))
	confirmDone := make(chan struct{})
	go func() { defer close(confirmDone); confirmations.Run(confirmCtx) }()
	// Before the store closes (closers run in reverse): the last batch is
	// written on the way out.
	a.closers = append(a.closers, func() { stopConfirm(); <-confirmDone })
	// The hot path's cache of revocations, keys and principals, following
	// the revocation log (LISTEN/NOTIFY on PostgreSQL, in process on
	// SQLite); until it is in sync, requests read the database as before.
	cache, err := authcache.New(authcache.Config{AccessTokenMaxAge: auth.AccessTokenMaxAge, Now: now, Logger: logger,
		OnApply: a.metrics.RevocationLag})
	if err != nil {
		return nil, err
	}
	a.metrics.ObserveAuthCache(cache.Stats)
	mgr.Revocations, mgr.Principals = cache, cache
	activity := &apikeys.ActivityBatcher{Store: st, Logger: logger}
	followCtx, stopFollow := context.WithCancel(context.WithoutCancel(ctx))
	followDone := make(chan struct{}, 2)
	go func() { defer func() { followDone <- struct{}{} }(); cache.Follow(followCtx, st) }()
	go func() { defer func() { followDone <- struct{}{} }(); activity.Run(followCtx) }()
	a.closers = append(a.closers, func() { stopFollow(); <-followDone; <-followDone })
	keySvc := &apikeys.Service{Identities: st, Now: now, Logger: logger, TagsEnforced: access.EnforcesTags(policy),
		Cache: cache, Activity: activity, Observe: a.metrics}
	recorder := &audit.Recorder{Store: st, Logger: logger, Now: now, Count: a.metrics}
	handlers := &authapi.Handlers{
		Providers: providers, Manager: mgr, Sessions: st, Identities: st, APIKeys: keySvc,
		LoginLimit: authapi.LoginLimit{
			PerUserAddress: cfg.Server.LoginFailuresPerUserAddress, PerAddress: cfg.Server.LoginFailuresPerAddress,
			Window: cfg.Server.LoginFailureWindow, MaxDelay: cfg.Server.LoginFailureMaxDelay,
		},
		Audit: recorder, Now: now, Logger: logger,
	}
	for _, ad := range auth.TiledAdmins {
		handlers.Admins = append(handlers.Admins, authapi.AdminIdentity{Provider: ad.Provider, ID: ad.ID})
	}
	if schemaOK.Load() {
		bootstrapAdmins(ctx, st, auth.TiledAdmins, recorder, logger)
	}

	// External issuers' keys load in the background until shutdown.
	rsCtx, stopRS := context.WithCancel(context.WithoutCancel(ctx))
	a.closers = append(a.closers, stopRS)
	rs, err := buildResourceServer(rsCtx, cfg, st, logger)
	if err != nil {
		return nil, err
	}
	deps.Resolver = &authn.Resolver{AllowAnonymous: cfg.AnonymousReads(), Tokens: mgr, APIKeys: keySvc}
	deps.Providers = aboutProviders(providers)
	if rs != nil {
		// Bearer users' principals follow the revocation log too: a role
		// change or deletion drops the cached principal at once.
		cache.Subscribe(rs.verifier.Cache)
		deps.Resolver.External = rs.verifier
		deps.Middleware = rs.middlewares()
		deps.Degraded = rs.degraded
		for _, p := range auth.Providers {
			if v, ok := rs.proxied[p.Name]; ok {
				msg := p.ConfirmationMessage
				deps.Providers = append(deps.Providers, api.Provider{Name: p.Name, External: true,
					ConfirmationMessage: &msg, Proxied: proxiedInfo(v, p.Proxied)})
			}
		}
	}
	deps.View = view.MustNew(build.Version)
	handlers.View = deps.View
	pg := &pages.Handlers{
		Accounts: handlers, Tokens: mgr, Resolver: deps.Resolver, Sessions: st, Principals: st,
		Providers: pageProviders(providers), View: deps.View, Now: now, Logger: logger,
	}
	handlers.SignedIn = pg.SignedIn
	deps.Pages = guardedPages{pg, &schemaOK}
	deps.Surfaces = []api.Registrar{
		guarded{&data.Handlers{Root: root, Policy: policy, Logger: logger}, &schemaOK},
		guarded{handlers, &schemaOK},
		reloadSurface(cfg, root, rs, logger),
	}
	deps.Ready = func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return err
		}
		if schemaOK.Load() {
			return nil
		}
		return checkSchema(ctx)
	}
	a.server = api.New(deps)
	a.metrics.ObservePool(st.PoolStats)
	a.metrics.ObserveReady(func() bool { return schemaOK.Load() && !a.server.Draining() })

	gcCtx, stopGC := context.WithCancel(context.WithoutCancel(ctx))
	a.closers = append(a.closers, stopGC)
	// Revocation-log entries must outlive the access tokens they deny.
	retain := max(gcRetain, auth.AccessTokenMaxAge+authcache.DefaultClockSkew)
	gcPol := gcPolicy(retain, cfg.Server.AuditRetention)
	go every(gcCtx, gcInterval, func() { collectGarbage(gcCtx, st, gcPol, a.metrics, logger) })
	return a, nil
}

// checkTagCoverage refuses a tag-based policy over trees that carry no tags.
// Nodes get access blobs here only from trees[].args.top_level_access_blob,
// so a tree without one would have no tags anywhere, and the policy grants
// every scope on untagged nodes: the whole tree would be readable by
// anyone. Tiled serves such a config so; someone who configured an access
// policy expects it to restrict, so it is refused with the fix instead.
func checkTagCoverage(cfg *config.Config, policy access.Policy) error {
	if !access.EnforcesTags(policy) {
		return nil
	}
	var errs []error
	for _, t := range cfg.Trees {
		if _, ok := t.Args["top_level_access_blob"]; !ok {
			errs = append(errs, fmt.Errorf("trees[%s].args.top_level_access_blob: required with the tag-based access policy: "+
				"without it no node of this tree carries tags and every caller could read it (Tiled serves it so). "+
				"Give the tags that may read it, such as {tags: [public]} to keep it readable by every user, "+
				"or {tags: [data_A]} to restrict it", t.Path))
		}
	}
	return errors.Join(errs...)
}

// guarded mounts a surface whose routes need the session database; while
// the schema is not current they answer 503 with Retry-After.
type guarded struct {
	api.Registrar
	ok *atomic.Bool
}

func (g guarded) Register(grp *echo.Group) {
	sub := grp.Group("", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !g.ok.Load() {
				return httperr.Unavailable("The session database is not ready (migrations pending). Please retry.", 5)
			}
			return next(c)
		}
	})
	g.Registrar.Register(sub)
}

// guardedPages are pages behind the same schema guard.
type guardedPages struct {
	*pages.Handlers
	ok *atomic.Bool
}

// Register adds the pages behind the guard, which answers a page (not the
// API's JSON) while the schema is not ready.
func (g guardedPages) Register(grp *echo.Group) {
	sub := grp.Group("", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !g.ok.Load() {
				c.Response().Header().Set("Retry-After", "5")
				return g.View.Render(c, http.StatusServiceUnavailable, "notice", view.Page{Title: "Not ready", Data: view.Notice{
					Heading: "Not ready yet",
					Message: "The session database is not ready (migrations pending). Try again in a few seconds.",
				}})
			}
			return next(c)
		}
	})
	g.Handlers.Register(sub)
}

// every calls fn each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// buildTree mounts the configured trees into one root.
func buildTree(cfg *config.Config, logger *slog.Logger) (tree.Node, error) {
	var mounts []tree.Mounted
	for _, t := range cfg.Trees {
		args := map[string]any{}
		var blob map[string]any
		for k, v := range t.Args {
			if k == "top_level_access_blob" {
				m, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("trees[%s].args.top_level_access_blob: expected a mapping such as {tags: [public]}", t.Path)
				}
				blob = m
				continue
			}
			args[k] = v
		}
		n, err := tree.FromSpec(t.Tree, args, logger)
		if err != nil {
			return nil, fmt.Errorf("trees[%s]: %w", t.Path, err)
		}
		if blob != nil {
			n = tree.WithAccessBlob(n, blob)
		}
		mounts = append(mounts, tree.Mounted{Path: t.Path, Node: n})
	}
	if len(mounts) == 0 {
		return nil, errors.New("no trees configured: add a trees entry, e.g. {path: /, tree: tiled.examples.generated_minimal:tree}")
	}
	return tree.Mount(mounts)
}

// openStore opens the session database named by the database block.
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (store.Store, error) {
	opts := store.DefaultOptions()
	opts.URI = cfg.Database.URI.Reveal()
	opts.PoolSize, opts.MaxOverflow = cfg.Database.PoolSize, cfg.Database.MaxOverflow
	opts.StatementTimeout = cfg.Server.DatabaseTimeout
	// The schema is checked (and, with init_if_not_exists, migrated) by the
	// caller, again and again until the database answers: a replica started
	// during a database outage comes up not ready instead of crash-looping.
	opts.Logger, opts.Lazy = logger, true
	st, err := store.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("session database: %w", err)
	}
	return st, nil
}

// secretKeys returns the token keys, or a random one (sessions then end
// with the process; Finalize has warned, and --scalable refuses it).
func secretKeys(auth *config.Authentication, logger *slog.Logger) (tokens.Keys, error) {
	if len(auth.SecretKeys) == 0 {
		return tokens.RandomKeys(), nil
	}
	ks := make([]string, len(auth.SecretKeys))
	for i, k := range auth.SecretKeys {
		ks[i] = k.Reveal()
	}
	keys, err := tokens.NewKeys(ks)
	if err != nil {
		return tokens.Keys{}, fmt.Errorf("authentication.secret_keys: %w", err)
	}
	logger.Info("token keys loaded", "count", len(ks))
	return keys, nil
}

// buildProviders makes each configured provider's authenticator.
func buildProviders(ctx context.Context, cfg *config.Config, logger *slog.Logger) ([]authapi.Provider, error) {
	var out []authapi.Provider
	for _, p := range cfg.Authentication.Providers {
		if p.Kind.Proxied() {
			// Its tokens are checked as bearer tokens (buildResourceServer);
			// it has no login routes here.
			continue
		}
		msg := p.ConfirmationMessage
		ap := authapi.Provider{Name: p.Name, Kind: p.Kind.String(), ConfirmationMessage: &msg}
		log := logger.With("provider", p.Name)
		switch p.Kind {
		case config.KindDummy:
			ap.Password = authenticator.Dummy{}
			log.Warn("the dummy authenticator accepts any username and password: for demos only")
		case config.KindDictionary:
			ap.Password = authenticator.NewDictionary(p.Dictionary.Passwords())
		case config.KindPAM:
			a, err := pam.New(pam.Config{Service: p.PAM.Service, Logger: log})
			if err != nil {
				return nil, fmt.Errorf("authentication.providers[%s]: %w", p.Name, err)
			}
			ap.Password = a
		case config.KindOIDC:
			o := p.OIDC
			op, err := oidc.New(ctx, oidc.Config{
				ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), Audience: o.Audience,
				WellKnownURI: o.WellKnownURI, TokenURI: o.TokenURI, AuthorizationEndpoint: o.AuthorizationEndpoint,
				PublicKeys: o.PublicKeys, ExtraScopes: o.ExtraScopes, UserIDClaim: o.UserIDClaim,
				TokenEndpointAuthMethod: o.TokenEndpointAuthMethod,
				RedirectOnSuccess:       o.RedirectOnSuccess, RedirectOnFailure: o.RedirectOnFailure,
			}, tracedClient(30*time.Second), log)
			if err != nil {
				return nil, fmt.Errorf("authentication.providers[%s]: %w", p.Name, err)
			}
			ap.OIDC = op
		default:
			return nil, fmt.Errorf("authentication.providers[%s]: unsupported authenticator %q", p.Name, p.Authenticator)
		}
		out = append(out, ap)
	}
	return out, nil
}

// pageProviders are the sign-in page's choices: the password and OIDC
// providers this server signs people in with (a proxied provider's people
// sign in at the provider itself).
func pageProviders(ps []authapi.Provider) []view.Provider {
	out := make([]view.Provider, 0, len(ps))
	for _, p := range ps {
		out = append(out, view.Provider{Name: p.Name, External: p.OIDC != nil, Message: p.MessageBeforeLogin()})
	}
	return out
}

func aboutProviders(ps []authapi.Provider) []api.Provider {
	out := make([]api.Provider, len(ps))
	for i, p := range ps {
		out[i] = api.Provider{Name: p.Name, External: p.OIDC != nil, ConfirmationMessage: p.ConfirmationMessage}
	}
	return out
}

// bootstrapAdmins makes sure every tiled_admins identity has a principal with
// the admin role, as Tiled does at start. Find-or-create and the role grant
// are idempotent and race-safe, so ten replicas starting at once end with
// one principal per admin.
func bootstrapAdmins(ctx context.Context, st store.Store, admins []config.Admin, rec *audit.Recorder, logger *slog.Logger) {
	ctx, span := otel.Tracer("github.com/tiledgo/server/cmd/server").Start(ctx, "bootstrap.admins")
	defer span.End()
	for _, ad := range admins {
		p, created, err := st.LoginIdentity(ctx, ad.Provider, ad.ID, []string{identity.RoleUser, identity.RoleAdmin}, time.Now().UTC())
		granted := false
		if err == nil && !created && !slices.ContainsFunc(p.Roles, func(r identity.Role) bool { return r.Name == identity.RoleAdmin }) {
			err, granted = st.GrantRole(ctx, p.ID, identity.RoleAdmin), true
		}
		if err != nil {
			logger.Error("ensure admin", "provider", ad.Provider, "id", ad.ID, "error", err)
			continue
		}
		switch {
		case created:
			rec.Record(ctx, audit.Event{Name: audit.PrincipalCreate, Outcome: audit.Success, PrincipalID: p.ID,
				Provider: ad.Provider, IdentityID: ad.ID, Detail: map[string]any{"type": string(p.Type),
					"roles": []string{identity.RoleUser, identity.RoleAdmin}, "by": "tiled_admins at start"}})
		case granted:
			rec.Record(ctx, audit.Event{Name: audit.PrincipalRoleGrant, Outcome: audit.Success, PrincipalID: p.ID,
				Provider: ad.Provider, IdentityID: ad.ID, Detail: map[string]any{"role": identity.RoleAdmin, "by": "tiled_admins at start"}})
		}
		logger.Info("ensured admin role", "provider", ad.Provider, "id", ad.ID, "principal", p.ID)
	}
}

// gcPolicy is what GC keeps: ended sessions and the revocation log for
// retain (at least gcRetain), audit events for server.audit_retention.
func gcPolicy(retain, auditRetain time.Duration) sessions.GCPolicy {
	return sessions.GCPolicy{Retain: retain, AuditRetain: auditRetain, Batch: gcBatch}
}

// collectGarbage deletes one batch of expired rows. With PostgreSQL only one
// replica collects at a time (the store takes an advisory lock).
func collectGarbage(ctx context.Context, st store.Store, policy sessions.GCPolicy, m *metrics.Metrics, logger *slog.Logger) {
	res, err := st.GC(ctx, time.Now().UTC(), policy)
	m.GCRun(err, time.Now())
	if err != nil {
		logger.Warn("garbage collection", "error", err)
		return
	}
	for kind, n := range map[string]int64{
		"sessions": res.Sessions, "pending_devices": res.PendingDevices, "auth_states": res.AuthStates,
		"login_attempts": res.LoginAttempts, "api_keys": res.APIKeys, "revocations": res.Revocations,
		"audit_events": res.AuditEvents,
	} {
		m.GCDeleted(kind, n)
	}
	logger.Debug("garbage collection", "result", res)
}

// tracedClient is the HTTP client for identity providers (discovery, JWKS,
// code exchanges): bounded by timeout, with a client span per request so a
// slow provider shows in a login's trace.
func tracedClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: otelhttp.NewTransport(http.DefaultTransport)}
}
