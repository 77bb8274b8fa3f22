package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Config is the whole service configuration after defaults, files,
// environment and flags. The yaml tags name Tiled's keys (used by Redacted).
type Config struct {
	Authentication Authentication `yaml:"authentication"`
	// Database is the authentication database (identities, sessions, API
	// keys). Driver is DriverNone when none is configured; Finalize fills
	// in Tiled's in-memory SQLite when providers need one.
	Database Database `yaml:"database"`
	// AccessControl is nil when the config has none.
	AccessControl *AccessControl `yaml:"access_control"`
	// Trees are served merged into one root; `catalog:` is turned into a
	// tree at "/" as Tiled does.
	Trees   []Tree  `yaml:"trees"`
	Uvicorn Uvicorn `yaml:"uvicorn"`
	Metrics Metrics `yaml:"metrics"`

	AllowOrigins          []string `yaml:"allow_origins"`
	ResponseBytesizeLimit int64    `yaml:"response_bytesize_limit"`
	ExactCountLimit       int64    `yaml:"exact_count_limit"`
	RejectUndeclaredSpecs bool     `yaml:"reject_undeclared_specs"`
	// Specs are the declared specs (their Python validators are ignored).
	Specs []string `yaml:"specs"`
	// FileExtensions maps "?format=ext" aliases to media types.
	FileExtensions map[string]string `yaml:"file_extensions"`

	// Server is this server's own block, absent from Tiled's schema.
	Server Server `yaml:"server"`
	// Auth is seed 001's resource-server block; Swagger its Swagger UI
	// sign-in. Neither is in Tiled's schema.
	Auth    Auth    `yaml:"auth"`
	Swagger Swagger `yaml:"swagger"`

	// Sources are the files read, in order.
	Sources []string `yaml:"-"`
	// Ignored lists keys Tiled accepts that this server does not act on,
	// as "file:line: key.path", for the caller to log at warn level.
	Ignored []string `yaml:"-"`
	// Warnings are accepted values that are likely mistakes, same form.
	Warnings []string `yaml:"-"`

	// flagErrs are problems with flag values, reported by Finalize.
	flagErrs []Problem

	// origins says where each top-level setting came from, for messages
	// about rules that span keys and sources.
	origins map[string]origin
}

// origin is where a value was given: a file and line, or an environment
// variable or flag (name then replaces the key path in messages).
type origin struct {
	file string
	line int
	name string
}

// problem builds a Problem about key, located where its value came from.
func (c *Config) problem(key, format string, args ...any) Problem {
	o := c.origins[key]
	p := Problem{File: o.file, Line: o.line, Path: key, Msg: fmt.Sprintf(format, args...)}
	if o.name != "" {
		p.Path = o.name
	}
	return p
}

func (c *Config) setOrigin(key string, o origin) {
	if c.origins == nil {
		c.origins = map[string]origin{}
	}
	c.origins[key] = o
}

// Authentication is Tiled's authentication block.
type Authentication struct {
	Providers   []Provider `yaml:"providers"`
	TiledAdmins []Admin    `yaml:"tiled_admins"`
	// SecretKeys sign access tokens with the first and verify with all.
	// Empty means none configured (a random key per process, as Tiled).
	SecretKeys           []Secret `yaml:"secret_keys"`
	AllowAnonymousAccess bool     `yaml:"allow_anonymous_access"`
	// SingleUserAPIKey is "" when not set (then one is generated at start).
	SingleUserAPIKey   Secret        `yaml:"single_user_api_key"`
	AccessTokenMaxAge  time.Duration `yaml:"access_token_max_age"`
	RefreshTokenMaxAge time.Duration `yaml:"refresh_token_max_age"`
	// SessionMaxAge is 0 for unlimited (seed 000's default; Tiled 0.2.16
	// defaults to 365 days).
	SessionMaxAge time.Duration `yaml:"session_max_age" dump:"unlimited"`
}

// SingleUser reports whether no provider is configured: one API key, as in
// Tiled's single-user (and public) modes. Config.SingleUser also considers
// the resource-server block.
func (a *Authentication) SingleUser() bool { return len(a.Providers) == 0 }

// SingleUser reports whether the server runs in Tiled's single-user mode:
// no provider and no external issuer whose bearer tokens name principals.
func (c *Config) SingleUser() bool { return c.Authentication.SingleUser() && !c.Auth.Enabled }

// AnonymousReads reports whether callers without credentials may read:
// Tiled's allow_anonymous_access, or seed 001's anonymous_read.
func (c *Config) AnonymousReads() bool {
	return c.Authentication.AllowAnonymousAccess || (c.Auth.Enabled && c.Auth.AnonymousRead)
}

// Provider returns the provider named name.
func (a *Authentication) Provider(name string) (*Provider, bool) {
	for i := range a.Providers {
		if a.Providers[i].Name == name {
			return &a.Providers[i], true
		}
	}
	return nil, false
}

// Admin is one tiled_admins entry: this identity gets the admin role.
type Admin struct {
	Provider string `yaml:"provider"`
	ID       string `yaml:"id"`

	at origin
}

// Database is the authentication database.
type Database struct {
	// URI is normalised: postgresql://..., sqlite:///PATH or
	// sqlite:///:memory:.
	URI    DSN    `yaml:"uri"`
	Driver Driver `yaml:"driver"`
	// SQLitePath is the database file for DriverSQLite, "" when InMemory.
	SQLitePath      string `yaml:"sqlite_path,omitempty"`
	InMemory        bool   `yaml:"in_memory,omitempty"`
	InitIfNotExists bool   `yaml:"init_if_not_exists"`
	PoolSize        int    `yaml:"pool_size"`
	PoolPrePing     bool   `yaml:"pool_pre_ping"`
	MaxOverflow     int    `yaml:"max_overflow"`
}

// Driver is the kind of database.
type Driver string

// Drivers.
const (
	DriverNone     Driver = ""
	DriverPostgres Driver = "postgres"
	DriverSQLite   Driver = "sqlite"
)

// AccessControl names a Tiled access policy and its arguments, which the
// access package interprets (TagBasedAccessPolicy, SimpleAccessPolicy...).
type AccessControl struct {
	Policy string         `yaml:"access_policy"`
	Args   map[string]any `yaml:"args"`
}

// Tree is one trees entry.
type Tree struct {
	// Path is where the tree is mounted, normalised to "/a/b" ("/" for root).
	Path string `yaml:"path"`
	// Tree is the import path as written, with Tiled's alias "catalog"
	// expanded to "tiled.catalog:from_uri".
	Tree string         `yaml:"tree"`
	Args map[string]any `yaml:"args"`
	// AccessControl is the per-tree policy of older Tiled releases.
	AccessControl *AccessControl `yaml:"access_control,omitempty"`

	at origin
}

// Uvicorn holds the listener settings this server uses from Tiled's
// uvicorn block; the others are accepted and reported in Config.Ignored.
type Uvicorn struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	RootPath string `yaml:"root_path"`
}

// Metrics is Tiled's metrics block.
type Metrics struct {
	Prometheus bool `yaml:"prometheus"`
}

// Server is this server's own block (top-level key "server", which Tiled
// does not have, so Tiled keys can never collide with it).
type Server struct {
	// RefreshGracePeriod is how long a just-rotated refresh token still
	// answers a racing client with the same session (0 disables).
	RefreshGracePeriod time.Duration `yaml:"refresh_grace_period"`
	LogFormat          string        `yaml:"log_format"`
	LogLevel           string        `yaml:"log_level"`
	// Scalable applies Tiled's --scalable checks (several replicas).
	Scalable bool `yaml:"scalable"`
	// ShutdownDrainDelay is how long /readyz reports not ready before the
	// listener stops, so load balancers stop sending traffic first.
	ShutdownDrainDelay time.Duration `yaml:"shutdown_drain_delay"`
	// ShutdownTimeout bounds the graceful shutdown after the drain delay.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadinessTimeout bounds each dependency check behind /readyz.
	ReadinessTimeout time.Duration `yaml:"readiness_timeout"`
	// DatabaseTimeout bounds the session-database time of one request,
	// summed over its calls; past it the request answers 503 with
	// Retry-After instead of waiting.
	DatabaseTimeout time.Duration `yaml:"database_timeout"`
	// MetricsAddr, when set, serves Prometheus metrics at /metrics on a
	// listener of its own, without authentication ("" serves none).
	MetricsAddr string `yaml:"metrics_addr,omitempty"`

	// TrustedProxies are the networks whose forwarding headers name the
	// client (address and scheme); empty: the connection's peer is the
	// client and no such header is believed.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
	// ForwardedHeader is the header the trusted proxies set:
	// "x-forwarded-for" (with X-Forwarded-Proto) or "forwarded" (RFC 7239).
	ForwardedHeader string `yaml:"forwarded_header"`

	// LoginFailuresPerUserAddress: failed password logins for one username
	// from one client address within LoginFailureWindow, after which that
	// pair answers 429 until the window ends (0 disables).
	LoginFailuresPerUserAddress int `yaml:"login_failures_per_user_address"`
	// LoginFailuresPerAddress: failed (or unfinished) password logins from
	// one client address, over all usernames, within the window (0 disables).
	LoginFailuresPerAddress int           `yaml:"login_failures_per_address"`
	LoginFailureWindow      time.Duration `yaml:"login_failure_window"`
	// LoginFailureMaxDelay caps the growing delay before a pair's password
	// is checked after repeated failures (0 disables the delay).
	LoginFailureMaxDelay time.Duration `yaml:"login_failure_max_delay"`

	// AuditRetention is how long audit events are kept (0: for ever).
	AuditRetention time.Duration `yaml:"audit_retention"`
	// RequestTimeout is each request's deadline (0: none).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxInFlight caps the requests served at once; beyond it requests
	// answer 503 with Retry-After (0: no cap). Probes are exempt.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Default values. Token lifetimes are Tiled's (tiled/server/settings.py);
// the session limit is seed 000's "unlimited".
const (
	DefaultAccessTokenMaxAge     = 15 * time.Minute
	DefaultRefreshTokenMaxAge    = 7 * 24 * time.Hour
	DefaultHost                  = "127.0.0.1"
	DefaultPort                  = 8000
	DefaultPoolSize              = 5
	DefaultMaxOverflow           = 5
	DefaultResponseBytesizeLimit = 300_000_000
	DefaultExactCountLimit       = 100
	DefaultRefreshGracePeriod    = 10 * time.Second
	DefaultShutdownDrainDelay    = 0
	DefaultShutdownTimeout       = 20 * time.Second
	DefaultReadinessTimeout      = 2 * time.Second
	DefaultDatabaseTimeout       = 5 * time.Second
	// Login limits (issue 19): a username under attack slows down and then
	// stops for the addresses that fail, never for the one that knows the
	// password; one address failing over many usernames stops on its own.
	DefaultLoginFailuresPerUserAddress = 10
	DefaultLoginFailuresPerAddress     = 100
	DefaultLoginFailureWindow          = 15 * time.Minute
	DefaultLoginFailureMaxDelay        = 5 * time.Second
	DefaultAuditRetention              = 90 * 24 * time.Hour
	DefaultRequestTimeout              = 60 * time.Second
	DefaultMaxInFlight                 = 1000
	DefaultForwardedHeader             = "x-forwarded-for"
	// TreeCatalog is what Tiled's tree alias "catalog" stands for.
	TreeCatalog = "tiled.catalog:from_uri"
)

// Default returns the configuration used when no file is given (serve demo,
// serve directory): single-user, no trees; the caller adds its tree.
func Default() *Config {
	return &Config{
		Authentication: Authentication{
			AccessTokenMaxAge:  DefaultAccessTokenMaxAge,
			RefreshTokenMaxAge: DefaultRefreshTokenMaxAge,
		},
		Database: Database{
			PoolSize:    DefaultPoolSize,
			PoolPrePing: true,
			MaxOverflow: DefaultMaxOverflow,
		},
		Uvicorn:               Uvicorn{Host: DefaultHost, Port: DefaultPort},
		Auth:                  defaultAuth(),
		Metrics:               Metrics{Prometheus: true},
		ResponseBytesizeLimit: DefaultResponseBytesizeLimit,
		ExactCountLimit:       DefaultExactCountLimit,
		Server: Server{
			RefreshGracePeriod: DefaultRefreshGracePeriod,
			LogFormat:          "text",
			LogLevel:           "info",
			ShutdownDrainDelay: DefaultShutdownDrainDelay,
			ShutdownTimeout:    DefaultShutdownTimeout,
			ReadinessTimeout:   DefaultReadinessTimeout,
			DatabaseTimeout:    DefaultDatabaseTimeout,

			ForwardedHeader:             DefaultForwardedHeader,
			LoginFailuresPerUserAddress: DefaultLoginFailuresPerUserAddress,
			LoginFailuresPerAddress:     DefaultLoginFailuresPerAddress,
			LoginFailureWindow:          DefaultLoginFailureWindow,
			LoginFailureMaxDelay:        DefaultLoginFailureMaxDelay,
			AuditRetention:              DefaultAuditRetention,
			RequestTimeout:              DefaultRequestTimeout,
			MaxInFlight:                 DefaultMaxInFlight,
		},
	}
}
