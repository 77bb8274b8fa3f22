package config

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// section is one top-level key of Tiled's service configuration
// (tiled/config.py Config and tiled/config_schemas/service_configuration.yml).
type section struct {
	// mergeable keys may appear in several files and are concatenated,
	// as tiled.config.parse_configs does for a directory of files.
	mergeable bool
	// ignored keys are accepted (Tiled accepts them) but this server does
	// not act on them; they are reported in Config.Ignored.
	ignored bool
	decode  func(d *decoder, c *Config, n *yaml.Node, path string)
}

var sections = map[string]section{
	"authentication":          {decode: (*decoder).authentication},
	"database":                {decode: (*decoder).database},
	"access_control":          {decode: func(d *decoder, c *Config, n *yaml.Node, p string) { c.AccessControl = d.accessControl(n, p) }},
	"trees":                   {mergeable: true, decode: (*decoder).trees},
	"catalog":                 {decode: (*decoder).catalog},
	"uvicorn":                 {decode: (*decoder).uvicorn},
	"metrics":                 {decode: (*decoder).metrics},
	"allow_origins":           {mergeable: true, decode: (*decoder).allowOrigins},
	"specs":                   {mergeable: true, decode: (*decoder).specs},
	"response_bytesize_limit": {decode: func(d *decoder, c *Config, n *yaml.Node, p string) { d.topInt(n, p, 1, &c.ResponseBytesizeLimit) }},
	"exact_count_limit":       {decode: func(d *decoder, c *Config, n *yaml.Node, p string) { d.topInt(n, p, 0, &c.ExactCountLimit) }},
	"reject_undeclared_specs": {decode: func(d *decoder, c *Config, n *yaml.Node, p string) { d.topBool(n, p, &c.RejectUndeclaredSpecs) }},
	"file_extensions": {decode: func(d *decoder, c *Config, n *yaml.Node, p string) {
		if m, ok := d.strMap(n, p); ok {
			c.FileExtensions = m
		}
	}},
	"server": {decode: (*decoder).server},
	// Seed 001's resource-server blocks ([auth] and [swagger.oauth2] in its
	// TOML); Tiled has no such keys.
	"auth":    {decode: (*decoder).auth},
	"swagger": {decode: (*decoder).swagger},

	// Keys Tiled accepts that configure its Python internals, or features
	// this server does not offer: type-checked, then listed in Config.Ignored
	// so that start-up warns about each (a deliberate rule, documented in
	// docs/configuration.md).
	"media_types":                     {ignored: true, decode: (*decoder).mediaTypes},
	"routers":                         {ignored: true, decode: checkWith(checkStrList)},
	"expose_raw_assets":               {ignored: true, decode: checkWith(checkBool)},
	"create_mount_nodes_if_not_exist": {ignored: true, decode: checkWith(checkBool)},
	"catalog_pool_size":               {ignored: true, decode: checkWith(checkInt)},
	"storage_pool_size":               {ignored: true, decode: checkWith(checkInt)},
	"catalog_max_overflow":            {ignored: true, decode: checkWith(checkInt)},
	"storage_max_overflow":            {ignored: true, decode: checkWith(checkInt)},
	"streaming_cache": {ignored: true, decode: checkObject(map[string]checker{
		"uri": checkStr, "sentinels": checkStrList, "service_name": checkStr, "password": checkStr,
		"ssl": checkBool, "data_ttl": checkNumber, "seq_ttl": checkNumber, "socket_timeout": checkNumber,
		"socket_connect_timeout": checkNumber, "health_check_interval": checkNumber,
	})},
	"webhooks": {ignored: true, decode: checkObject(map[string]checker{
		"secret_keys": checkStrList, "allow_http": checkBool, "allow_private_addresses": checkBool,
	})},
	// Deprecated in Tiled itself ("no longer has any effect").
	"object_cache": {ignored: true, decode: checkObject(map[string]checker{
		"available_bytes": checkNumber, "log_level": checkStr,
	})},
}

func sectionNames() []string {
	names := make([]string, 0, len(sections))
	for k := range sections {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// checker type-checks a value that is then ignored.
type checker func(d *decoder, n *yaml.Node, path string)

func checkStr(d *decoder, n *yaml.Node, p string)     { d.str(n, p) }
func checkBool(d *decoder, n *yaml.Node, p string)    { d.boolean(n, p) }
func checkInt(d *decoder, n *yaml.Node, p string)     { d.integer(n, p) }
func checkNumber(d *decoder, n *yaml.Node, p string)  { d.number(n, p) }
func checkStrList(d *decoder, n *yaml.Node, p string) { d.strList(n, p) }
func checkAny(d *decoder, n *yaml.Node, p string)     { d.free(n, p, 0) }

func checkWith(ch checker) func(*decoder, *Config, *yaml.Node, string) {
	return func(d *decoder, _ *Config, n *yaml.Node, p string) { ch(d, n, p) }
}

func checkObject(keys map[string]checker) func(*decoder, *Config, *yaml.Node, string) {
	return func(d *decoder, _ *Config, n *yaml.Node, p string) { d.checkFields(n, p, keys) }
}

func (d *decoder) checkFields(n *yaml.Node, path string, keys map[string]checker) (fields, bool) {
	allowed := make([]string, 0, len(keys))
	for k := range keys {
		allowed = append(allowed, k)
	}
	sort.Strings(allowed)
	f, ok := d.object(n, path, allowed)
	for _, k := range allowed {
		if v, p := f.get(k); v != nil {
			keys[k](d, v, p)
		}
	}
	return f, ok
}

func (d *decoder) topInt(n *yaml.Node, path string, lo int64, dst *int64) {
	if v, ok := d.integer(n, path); ok {
		if v < lo {
			d.add(n, path, "must be at least %d", lo)
			return
		}
		*dst = v
	}
}

func (d *decoder) topBool(n *yaml.Node, path string, dst *bool) {
	if v, ok := d.boolean(n, path); ok {
		*dst = v
	}
}

var authenticationKeys = []string{
	"providers", "tiled_admins", "secret_keys", "allow_anonymous_access", "single_user_api_key",
	"access_token_max_age", "refresh_token_max_age", "session_max_age",
}

func (d *decoder) authentication(c *Config, n *yaml.Node, path string) {
	f, ok := d.object(n, path, authenticationKeys)
	if !ok {
		return
	}
	a := &c.Authentication
	if v, p := f.get("providers"); v != nil {
		a.Providers = d.providers(v, p)
	}
	if v, p := f.get("tiled_admins"); v != nil {
		a.TiledAdmins = d.admins(v, p)
	}
	if v, p := f.get("secret_keys"); v != nil {
		if keys, ok := d.strList(v, p); ok {
			a.SecretKeys = toSecrets(keys)
		}
	}
	d.setBool(f, "allow_anonymous_access", &a.AllowAnonymousAccess)
	var key string
	d.setStr(f, "single_user_api_key", &key)
	a.SingleUserAPIKey = Secret(key)
	d.setDuration(f, "access_token_max_age", false, &a.AccessTokenMaxAge)
	d.setDuration(f, "refresh_token_max_age", false, &a.RefreshTokenMaxAge)
	// An explicit null leaves the default, which is unlimited.
	d.setDuration(f, "session_max_age", false, &a.SessionMaxAge)
}

func toSecrets(ss []string) []Secret {
	out := make([]Secret, len(ss))
	for i, s := range ss {
		out[i] = Secret(s)
	}
	return out
}

func (d *decoder) database(c *Config, n *yaml.Node, path string) {
	f, ok := d.object(n, path, []string{"uri", "init_if_not_exists", "pool_pre_ping", "pool_size", "max_overflow"})
	if !ok {
		return
	}
	db := &c.Database
	if d.require(f, "uri") {
		v, p := f.get("uri")
		if s, ok := d.str(v, p); ok {
			if err := db.setURI(s); err != nil {
				d.add(v, p, "%v", err)
			}
		}
	}
	d.setBool(f, "init_if_not_exists", &db.InitIfNotExists)
	d.setBool(f, "pool_pre_ping", &db.PoolPrePing)
	d.setSmallInt(f, "pool_size", 1, 10_000, &db.PoolSize)
	d.setSmallInt(f, "max_overflow", 0, 10_000, &db.MaxOverflow)
}

// accessControl reads {access_policy, args}; a null access_policy means
// none, as in Tiled's schema.
func (d *decoder) accessControl(n *yaml.Node, path string) *AccessControl {
	f, ok := d.object(n, path, []string{"access_policy", "args"})
	if !ok {
		return nil
	}
	ac := &AccessControl{Args: map[string]any{}}
	if v, p := f.get("args"); v != nil {
		if m, ok := d.freeMap(v, p); ok {
			ac.Args = m
		}
	}
	v, p := f.get("access_policy")
	if v == nil {
		return nil
	}
	if s, ok := d.str(v, p); ok {
		ac.Policy = s
		return ac
	}
	return nil
}

func (d *decoder) trees(c *Config, n *yaml.Node, path string) {
	d.list(n, path, func(item *yaml.Node, p string, _ int) {
		f, ok := d.object(item, p, []string{"path", "tree", "args", "access_control"})
		if !ok {
			return
		}
		t := Tree{Args: map[string]any{}, at: d.origin(f.node)}
		good := d.require(f, "path", "tree")
		if v, vp := f.get("path"); v != nil {
			if s, ok := d.str(v, vp); ok {
				t.Path = normalizeTreePath(s)
			} else {
				good = false
			}
		}
		if v, vp := f.get("tree"); v != nil {
			if s, ok := d.str(v, vp); ok && s != "" {
				t.Tree = s
				if s == "catalog" {
					t.Tree = TreeCatalog
				}
			} else {
				good = false
			}
		}
		if v, vp := f.get("args"); v != nil {
			if m, ok := d.freeMap(v, vp); ok {
				t.Args = m
			}
		}
		if v, vp := f.get("access_control"); v != nil {
			t.AccessControl = d.accessControl(v, vp)
		}
		if good {
			c.Trees = append(c.Trees, t)
		}
	})
}

func normalizeTreePath(s string) string {
	return "/" + strings.Join(treeSegments(s), "/")
}

func treeSegments(s string) []string {
	var out []string
	for _, seg := range strings.Split(s, "/") {
		if seg != "" {
			out = append(out, seg)
		}
	}
	return out
}

// catalogKeys are CatalogConfig's fields in tiled/config.py.
var catalogKeys = map[string]checker{
	"uri": checkStr, "metadata": checkAny, "specs": checkAny, "writable_storage": checkAny,
	"readable_storage": checkAny, "init_if_not_exists": checkBool, "adapters_by_mimetype": checkAny,
	"top_level_access_blob": checkAny, "mount_node": checkAny, "catalog_pool_size": checkInt,
	"storage_pool_size": checkInt, "catalog_max_overflow": checkInt, "storage_max_overflow": checkInt,
}

// catalog is Tiled's recommended single-catalog form, which it turns into
// trees: [{path: /, tree: catalog, args: {...}}].
func (d *decoder) catalog(c *Config, n *yaml.Node, path string) {
	f, ok := d.checkFields(n, path, catalogKeys)
	if !ok || !d.require(f, "uri") {
		return
	}
	args, ok := d.freeMap(n, path)
	if !ok {
		return
	}
	c.Trees = append(c.Trees, Tree{Path: "/", Tree: TreeCatalog, Args: args, at: d.origin(f.node)})
}

// uvicornKeys are the parameters of uvicorn.Config, which Tiled passes the
// block to (an unknown one makes uvicorn raise TypeError).
var uvicornKeys = []string{
	"host", "port", "uds", "fd", "loop", "http", "ws", "ws_max_size", "ws_max_queue",
	"ws_ping_interval", "ws_ping_timeout", "ws_per_message_deflate", "lifespan", "env_file",
	"log_config", "log_level", "access_log", "use_colors", "interface", "reload", "reload_dirs",
	"reload_delay", "reload_includes", "reload_excludes", "workers", "proxy_headers",
	"server_header", "date_header", "forwarded_allow_ips", "root_path", "limit_concurrency",
	"limit_max_requests", "backlog", "timeout_keep_alive", "timeout_notify",
	"timeout_graceful_shutdown", "callback_notify", "ssl_keyfile", "ssl_certfile",
	"ssl_keyfile_password", "ssl_version", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ciphers",
	"headers", "factory", "h11_max_incomplete_event_size",
}

func (d *decoder) uvicorn(c *Config, n *yaml.Node, path string) {
	f, ok := d.object(n, path, uvicornKeys)
	if !ok {
		return
	}
	d.setStr(f, "host", &c.Uvicorn.Host)
	d.setSmallInt(f, "port", 0, 65535, &c.Uvicorn.Port)
	d.setStr(f, "root_path", &c.Uvicorn.RootPath)
	for _, k := range uvicornKeys {
		v, p := f.get(k)
		if v == nil || k == "host" || k == "port" || k == "root_path" {
			continue
		}
		d.free(v, p, 0)
		d.ignore(v, p)
	}
}

func (d *decoder) metrics(c *Config, n *yaml.Node, path string) {
	if f, ok := d.object(n, path, []string{"prometheus"}); ok {
		d.setBool(f, "prometheus", &c.Metrics.Prometheus)
	}
}

func (d *decoder) allowOrigins(c *Config, n *yaml.Node, path string) {
	if list, ok := d.strList(n, path); ok {
		c.AllowOrigins = append(c.AllowOrigins, list...)
	}
}

func (d *decoder) specs(c *Config, n *yaml.Node, path string) {
	d.list(n, path, func(item *yaml.Node, p string, _ int) {
		f, ok := d.object(item, p, []string{"spec", "validator"})
		if !ok || !d.require(f, "spec") {
			return
		}
		var s string
		d.setStr(f, "spec", &s)
		if v, vp := f.get("validator"); v != nil {
			// A Python function: cannot run here.
			d.str(v, vp)
			d.ignore(v, vp)
		}
		if s != "" {
			c.Specs = append(c.Specs, s)
		}
	})
}

func (d *decoder) mediaTypes(_ *Config, n *yaml.Node, path string) {
	n = d.visit(n, path)
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.expected(n, path, "a mapping")
		return
	}
	for _, p := range d.pairs(n, path, 0) {
		d.strMap(p.valNode, join(path, p.key))
	}
}

var (
	logFormats = []string{"text", "json"}
	logLevels  = []string{"debug", "info", "warn", "error"}
)

func (d *decoder) server(c *Config, n *yaml.Node, path string) {
	f, ok := d.object(n, path, []string{
		"refresh_grace_period", "log_format", "log_level", "scalable",
		"shutdown_drain_delay", "shutdown_timeout", "readiness_timeout", "database_timeout", "metrics_addr",
		"trusted_proxies", "forwarded_header", "login_failures_per_user_address", "login_failures_per_address",
		"login_failure_window", "login_failure_max_delay", "audit_retention", "request_timeout", "max_in_flight",
	})
	if !ok {
		return
	}
	s := &c.Server
	d.setDuration(f, "refresh_grace_period", true, &s.RefreshGracePeriod)
	d.setEnum(f, "log_format", logFormats, &s.LogFormat)
	d.setEnum(f, "log_level", logLevels, &s.LogLevel)
	d.setBool(f, "scalable", &s.Scalable)
	d.setDuration(f, "shutdown_drain_delay", true, &s.ShutdownDrainDelay)
	d.setDuration(f, "shutdown_timeout", false, &s.ShutdownTimeout)
	d.setDuration(f, "readiness_timeout", false, &s.ReadinessTimeout)
	d.setDuration(f, "database_timeout", false, &s.DatabaseTimeout)
	if v, p := f.get("metrics_addr"); v != nil {
		if a, ok := d.str(v, p); ok {
			if _, _, err := net.SplitHostPort(a); err != nil {
				d.add(v, p, "must be host:port (for example 0.0.0.0:9090)")
			} else {
				s.MetricsAddr = a
			}
		}
	}
	if n, p := f.get("trusted_proxies"); n != nil {
		d.list(n, p, func(item *yaml.Node, ip string, _ int) {
			if v, ok := d.str(item, ip); ok {
				pr, err := ParseProxy(v)
				if err != nil {
					d.add(item, ip, "%v", err)
					return
				}
				s.TrustedProxies = append(s.TrustedProxies, pr)
			}
		})
	}
	d.setEnum(f, "forwarded_header", forwardedHeaders, &s.ForwardedHeader)
	d.setSmallInt(f, "login_failures_per_user_address", 0, maxLoginLimit, &s.LoginFailuresPerUserAddress)
	d.setSmallInt(f, "login_failures_per_address", 0, maxLoginLimit, &s.LoginFailuresPerAddress)
	d.setDuration(f, "login_failure_window", false, &s.LoginFailureWindow)
	d.setDuration(f, "login_failure_max_delay", true, &s.LoginFailureMaxDelay)
	d.setDuration(f, "audit_retention", true, &s.AuditRetention)
	d.setDuration(f, "request_timeout", true, &s.RequestTimeout)
	d.setSmallInt(f, "max_in_flight", 0, 1_000_000, &s.MaxInFlight)
}

// maxLoginLimit bounds the login limits: a counter is an integer column.
const maxLoginLimit = 1_000_000

var forwardedHeaders = []string{"x-forwarded-for", "forwarded"}

// ParseProxy reads one trusted_proxies entry: a CIDR ("10.0.0.0/8") or a
// single address ("192.0.2.7", taken as /32 or /128). IPv4-mapped IPv6
// forms are taken as the IPv4 network they name, as clients' addresses are.
func ParseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR such as 10.0.0.0/8: %q", s)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("an IPv4-mapped CIDR needs at least 96 bits: %q", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an address or CIDR such as 10.0.0.0/8: %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (d *decoder) setEnum(f fields, key string, allowed []string, dst *string) {
	v, p := f.get(key)
	if v == nil {
		return
	}
	s, ok := d.str(v, p)
	if !ok {
		return
	}
	s = strings.ToLower(s)
	if !contains(allowed, s) {
		d.add(v, p, "must be one of %s", strings.Join(allowed, ", "))
		return
	}
	*dst = s
}
