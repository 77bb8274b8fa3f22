package config

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"time"
)

// ApplyEnv overrides the configuration with the TILED_* variables that
// Tiled's server settings read (tiled/server/settings.py, a pydantic
// BaseSettings with prefix TILED_; tiled/server/app.py for the
// --scalable checks). The environment wins over files here; see the
// package documentation for how that differs from Tiled. Problems are
// returned together as *Errors.
func (c *Config) ApplyEnv(env Env) error {
	if env == nil {
		return nil
	}
	a := &c.Authentication
	e := envReader{env: env, c: c}
	if v, ok := e.get("TILED_SINGLE_USER_API_KEY", "authentication.single_user_api_key"); ok {
		if v == "" {
			// Tiled refuses this at start-up.
			e.fail("TILED_SINGLE_USER_API_KEY", "is set but empty")
		} else {
			a.SingleUserAPIKey = Secret(v)
		}
	}
	if v, ok := e.get("TILED_SECRET_KEYS", "authentication.secret_keys"); ok {
		if keys, ok := e.list("TILED_SECRET_KEYS", v, ";"); ok {
			a.SecretKeys = toSecrets(keys)
		}
	}
	e.boolean("TILED_ALLOW_ANONYMOUS_ACCESS", "authentication.allow_anonymous_access", &a.AllowAnonymousAccess)
	e.duration("TILED_ACCESS_TOKEN_MAX_AGE", "authentication.access_token_max_age", false, &a.AccessTokenMaxAge)
	e.duration("TILED_REFRESH_TOKEN_MAX_AGE", "authentication.refresh_token_max_age", false, &a.RefreshTokenMaxAge)
	e.duration("TILED_SESSION_MAX_AGE", "authentication.session_max_age", true, &a.SessionMaxAge)

	if v, ok := e.get("TILED_ALLOW_ORIGINS", "allow_origins"); ok {
		if list, ok := e.list("TILED_ALLOW_ORIGINS", v, ","); ok {
			c.AllowOrigins = list
		}
	}
	e.integer("TILED_RESPONSE_BYTESIZE_LIMIT", "response_bytesize_limit", 1, &c.ResponseBytesizeLimit)
	e.integer("TILED_EXACT_COUNT_LIMIT", "exact_count_limit", 0, &c.ExactCountLimit)
	e.boolean("TILED_REJECT_UNDECLARED_SPECS", "reject_undeclared_specs", &c.RejectUndeclaredSpecs)

	e.database()
	e.adminToken()
	return e.probs.err()
}

// adminToken reads X-Admin-Token's secret from TILED_ADMIN_TOKEN, or from
// the file TILED_ADMIN_TOKEN_FILE names (a Kubernetes or Docker secret
// mount), the usual *_FILE convention. Giving both is an error.
func (e *envReader) adminToken() {
	v, hasValue := e.get("TILED_ADMIN_TOKEN", "auth.admin_token")
	path, hasFile := e.env("TILED_ADMIN_TOKEN_FILE")
	switch {
	case hasValue && hasFile:
		e.fail("TILED_ADMIN_TOKEN_FILE", "give TILED_ADMIN_TOKEN or TILED_ADMIN_TOKEN_FILE, not both")
	case hasValue:
		if v = strings.TrimSpace(v); v == "" {
			e.fail("TILED_ADMIN_TOKEN", "is set but empty")
			return
		}
		e.c.Auth.AdminToken = Secret(v)
	case hasFile:
		e.c.setOrigin("auth.admin_token", origin{file: "environment", name: "TILED_ADMIN_TOKEN_FILE"})
		b, err := os.ReadFile(path)
		if err != nil {
			e.fail("TILED_ADMIN_TOKEN_FILE", "%s", describeFSError(err))
			return
		}
		// A trailing newline is how editors and `echo` leave files.
		t := strings.TrimRight(string(b), "\r\n")
		if t == "" {
			e.fail("TILED_ADMIN_TOKEN_FILE", "%s is empty", path)
			return
		}
		e.c.Auth.AdminToken = Secret(t)
	}
}

type envReader struct {
	env   Env
	c     *Config
	probs collector
}

// get reads a variable and records it as the origin of key.
func (e *envReader) get(name, key string) (string, bool) {
	v, ok := e.env(name)
	if ok {
		e.c.setOrigin(key, origin{file: "environment", name: name})
	}
	return v, ok
}

func (e *envReader) fail(name, format string, args ...any) {
	e.probs.addf("environment", 0, name, format, args...)
}

// list reads a JSON list (pydantic-settings' form for list fields, and
// Tiled's documented TILED_SECRET_KEYS='["NEW", "OLD"]') or, failing that,
// items separated by sep (older Tiled split TILED_SECRET_KEYS on ";").
func (e *envReader) list(name, v, sep string) ([]string, bool) {
	t := strings.TrimSpace(v)
	if strings.HasPrefix(t, "[") {
		var out []string
		if err := json.Unmarshal([]byte(t), &out); err != nil {
			e.fail(name, "expected a JSON list of strings")
			return nil, false
		}
		return out, true
	}
	var out []string
	for _, item := range strings.Split(t, sep) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	if len(out) == 0 {
		e.fail(name, "is set but empty")
		return nil, false
	}
	return out, true
}

func (e *envReader) boolean(name, key string, dst *bool) {
	if v, ok := e.get(name, key); ok {
		b, ok := parseBoolText(v)
		if !ok {
			e.fail(name, "expected a boolean (true or false)")
			return
		}
		*dst = b
	}
}

func (e *envReader) integer(name, key string, lo int64, dst *int64) {
	if v, ok := e.get(name, key); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < lo {
			e.fail(name, "expected an integer of at least %d", lo)
			return
		}
		*dst = n
	}
}

// duration reads seconds or a duration; with unlimitedOK, an empty value,
// "null", "none" or "unlimited" means no limit (0).
func (e *envReader) duration(name, key string, unlimitedOK bool, dst *time.Duration) {
	v, ok := e.get(name, key)
	if !ok {
		return
	}
	if unlimitedOK {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "", "null", "none", "unlimited":
			*dst = 0
			return
		}
	}
	d, err := parseDuration(v)
	if err != nil {
		e.fail(name, "%v", err)
		return
	}
	if d <= 0 {
		e.fail(name, "must be positive")
		return
	}
	*dst = d
}

// database reads TILED_DATABASE (pydantic's JSON object for the
// database_settings field, or simply a URI) and then the single fields
// TILED_DATABASE_URI (used by Tiled's docs and authn_database tool),
// TILED_DATABASE_POOL_SIZE, TILED_DATABASE_MAX_OVERFLOW,
// TILED_DATABASE_POOL_PRE_PING, TILED_DATABASE_INIT_IF_NOT_EXISTS.
func (e *envReader) database() {
	db := &e.c.Database
	if v, ok := e.get("TILED_DATABASE", "database.uri"); ok {
		t := strings.TrimSpace(v)
		if strings.HasPrefix(t, "{") {
			var obj struct {
				URI         *string `json:"uri"`
				PoolSize    *int    `json:"pool_size"`
				PoolPrePing *bool   `json:"pool_pre_ping"`
				MaxOverflow *int    `json:"max_overflow"`
			}
			dec := json.NewDecoder(strings.NewReader(t))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&obj); err != nil {
				e.fail("TILED_DATABASE", "expected a JSON object with uri, pool_size, pool_pre_ping, max_overflow")
			} else {
				e.dbURI("TILED_DATABASE", obj.URI)
				e.poolInt("TILED_DATABASE", obj.PoolSize, 1, &db.PoolSize)
				e.poolInt("TILED_DATABASE", obj.MaxOverflow, 0, &db.MaxOverflow)
				if obj.PoolPrePing != nil {
					db.PoolPrePing = *obj.PoolPrePing
				}
			}
		} else {
			e.dbURI("TILED_DATABASE", &t)
		}
	}
	if v, ok := e.get("TILED_DATABASE_URI", "database.uri"); ok {
		e.dbURI("TILED_DATABASE_URI", &v)
	}
	var n int64
	if _, ok := e.env("TILED_DATABASE_POOL_SIZE"); ok {
		n = int64(db.PoolSize)
		e.integer("TILED_DATABASE_POOL_SIZE", "database.pool_size", 1, &n)
		db.PoolSize = int(min(n, 10_000))
	}
	if _, ok := e.env("TILED_DATABASE_MAX_OVERFLOW"); ok {
		n = int64(db.MaxOverflow)
		e.integer("TILED_DATABASE_MAX_OVERFLOW", "database.max_overflow", 0, &n)
		db.MaxOverflow = int(min(n, 10_000))
	}
	e.boolean("TILED_DATABASE_POOL_PRE_PING", "database.pool_pre_ping", &db.PoolPrePing)
	e.boolean("TILED_DATABASE_INIT_IF_NOT_EXISTS", "database.init_if_not_exists", &db.InitIfNotExists)
}

func (e *envReader) dbURI(name string, v *string) {
	if v == nil {
		return
	}
	if err := e.c.Database.setURI(strings.TrimSpace(*v)); err != nil {
		e.fail(name, "%v", err)
	}
}

func (e *envReader) poolInt(name string, v *int, lo int, dst *int) {
	if v == nil {
		return
	}
	if *v < lo || *v > 10_000 {
		e.fail(name, "pool sizes must be between %d and 10000", lo)
		return
	}
	*dst = *v
}
