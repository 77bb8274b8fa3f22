// Package config owns the service configuration: it reads Tiled
// service-config YAML files (the same files "tiled serve config" takes),
// expands ${VAR} references, merges several files, decodes them strictly
// into typed structs with defaults, overlays Tiled's TILED_* environment
// variables and the command-line flags, and checks the rules that span
// keys. Every problem is reported at once, with file, line and key path,
// as *Errors. Secrets are typed (Secret, DSN) so that logs and dumps show
// REDACTED.
//
// Order of precedence: defaults < files < environment < flags
// (Load, ApplyEnv, ApplyFlags, Finalize; Build does all four).
//
// # Behaviour matched to Tiled 0.2.16 (tiled/config.py, tiled/utils.py)
//
//   - A path may be a directory: every *.yml / *.yaml directly in it is
//     read (sorted by name here; Tiled takes the OS order).
//   - Merging: trees, specs and allow_origins may appear in several files
//     and are concatenated; any other top-level key in two files is an error.
//   - Interpolation is os.path.expandvars over string values (not keys):
//     $NAME and ${NAME}; substituted text is not expanded again; there is
//     no escape ("$$" stays "$$"). Difference: Tiled leaves a reference to
//     an unset variable in place (so a forgotten ${ALICE_PASSWORD} becomes
//     that literal password); here an unset ${NAME} is an error naming the
//     variable and key path. An unset bare $NAME is kept, as in Tiled,
//     because "$word" is common inside passwords.
//   - An expanded value is a string; where a number, boolean or duration is
//     expected it is converted (Tiled's pydantic models do the same).
//   - Unknown keys are errors at every level (Tiled's schema has
//     additionalProperties: false); explicit null means "not set".
//   - `catalog:` becomes trees: [{path: /, tree: tiled.catalog:from_uri}];
//     the tree alias "catalog" is expanded the same way; trees may not be
//     mounted inside one another; one of catalog or trees is required.
//   - Keys Tiled accepts but this server does not act on (media_types,
//     routers, streaming_cache, webhooks, object_cache, catalog and storage
//     pool sizes, expose_raw_assets, create_mount_nodes_if_not_exist, spec
//     validators, uvicorn keys other than host, port and root_path) are
//     type-checked and listed in Config.Ignored for a warning.
//   - Durations are seconds (integers or numbers) as in Tiled; Go durations
//     ("15m", "168h") and ISO 8601 ("PT15M") are accepted too.
//     session_max_age defaults to unlimited (seed 000; Tiled 0.2.16 uses
//     365 days); null means unlimited.
//   - Authenticators: tiled.authenticators:{Dictionary,PAM,OIDC,Dummy}Authenticator
//     or dictionary, pam, oidc, dummy; arguments are checked per kind.
//     OIDC takes well_known_uri (Tiled 0.2) or token_uri +
//     authorization_endpoint + public_keys (seed 000); audience defaults to
//     client_id.
//   - tiled_admins and access_control args.provider must name a configured
//     provider (Tiled does not check; a typo would silently grant nothing).
//
// # Environment variables (ApplyEnv)
//
//	TILED_SINGLE_USER_API_KEY         authentication.single_user_api_key
//	TILED_SECRET_KEYS                 authentication.secret_keys: JSON list, or ";"-separated
//	TILED_ALLOW_ANONYMOUS_ACCESS      authentication.allow_anonymous_access
//	TILED_ACCESS_TOKEN_MAX_AGE        authentication.access_token_max_age (seconds or duration)
//	TILED_REFRESH_TOKEN_MAX_AGE       authentication.refresh_token_max_age
//	TILED_SESSION_MAX_AGE             authentication.session_max_age ("none" = unlimited)
//	TILED_ALLOW_ORIGINS               allow_origins: JSON list, or ","-separated
//	TILED_RESPONSE_BYTESIZE_LIMIT     response_bytesize_limit
//	TILED_EXACT_COUNT_LIMIT           exact_count_limit
//	TILED_REJECT_UNDECLARED_SPECS     reject_undeclared_specs
//	TILED_DATABASE                    database: JSON object {uri, pool_size, ...}, or a URI
//	TILED_DATABASE_URI                database.uri
//	TILED_DATABASE_POOL_SIZE          database.pool_size
//	TILED_DATABASE_MAX_OVERFLOW       database.max_overflow
//	TILED_DATABASE_POOL_PRE_PING      database.pool_pre_ping
//	TILED_DATABASE_INIT_IF_NOT_EXISTS database.init_if_not_exists
//	TILED_CONFIG                      the config path when none is given (DefaultPaths)
//
// Tiled reads these through pydantic settings and then lets the config
// file override them (tiled/server/app.py override_get_settings); here the
// environment overrides the file, the usual order for deployments.
//
// # This server's own block
//
//	server:
//	  refresh_grace_period: 10s   # racing refreshes of a rotated token (0 disables)
//	  log_format: text            # text | json
//	  log_level: info             # debug | info | warn | error
//	  scalable: false             # Tiled's --scalable checks
//	  shutdown_drain_delay: 0s    # not ready this long before the listener stops (5s behind a load balancer)
//	  shutdown_timeout: 20s       # graceful shutdown deadline
//	  readiness_timeout: 2s       # per dependency check behind /readyz
//	  database_timeout: 5s        # session-database time of one request, all its calls together (then 503)
//	  metrics_addr: ""            # host:port of an unauthenticated /metrics listener (--metrics-addr)
//	  trusted_proxies: []         # CIDRs of proxies whose forwarding headers name the client
//	  forwarded_header: x-forwarded-for  # or forwarded (RFC 7239): the header those proxies set
//	  login_failures_per_user_address: 10  # failed logins of one username from one address, then 429 (0 off)
//	  login_failures_per_address: 100      # failed or unfinished logins from one address, any username (0 off)
//	  login_failure_window: 15m   # the window both limits count in
//	  login_failure_max_delay: 5s # cap of the growing delay after a pair's 2nd failure (0 off)
//	  audit_retention: 2160h      # audit events are kept 90 days (0: for ever)
//	  request_timeout: 60s        # each request's deadline (0: none)
//	  max_in_flight: 1000         # requests served at once, then 503 + Retry-After (0: no cap; probes exempt)
package config
