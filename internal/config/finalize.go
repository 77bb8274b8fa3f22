package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Build is the whole sequence for "serve config" and "check-config":
// defaults < files < environment < flags, then Finalize.
func Build(paths []string, env Env, f Flags) (*Config, error) {
	c, err := Load(paths, env)
	if err != nil {
		return nil, err
	}
	if err := c.ApplyEnv(env); err != nil {
		return nil, err
	}
	c.ApplyFlags(f)
	if err := c.Finalize(); err != nil {
		return nil, err
	}
	return c, nil
}

// Tiled refuses non-alphanumeric single-user keys at start-up, since they
// are pasted into URLs as ?api_key=.
var apiKeyRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// Finalize checks the rules that span keys and sources (run it after
// ApplyEnv and ApplyFlags) and fills in what Tiled derives: with providers
// but no database, an in-memory SQLite database. It adds to Warnings.
func (c *Config) Finalize() error {
	var probs collector
	for _, p := range c.flagErrs {
		probs.add(p)
	}
	a := &c.Authentication
	if k := a.SingleUserAPIKey.Reveal(); k != "" && !apiKeyRE.MatchString(k) {
		probs.add(c.problem("authentication.single_user_api_key", "must contain only letters and digits (it is used in URLs as ?api_key=); generate one with: openssl rand -hex 32"))
	}
	for i, k := range a.SecretKeys {
		if k.Reveal() == "" {
			probs.add(c.problem("authentication.secret_keys", "key %d is empty", i))
		}
	}
	if c.Uvicorn.Port < 0 || c.Uvicorn.Port > 65535 {
		probs.add(c.problem("uvicorn.port", "must be between 0 and 65535"))
	}
	if !contains(logFormats, strings.ToLower(c.Server.LogFormat)) {
		probs.add(c.problem("server.log_format", "must be one of %s", strings.Join(logFormats, ", ")))
	}
	if !contains(logLevels, strings.ToLower(c.Server.LogLevel)) {
		probs.add(c.problem("server.log_level", "must be one of %s", strings.Join(logLevels, ", ")))
	}
	c.checkAuth(&probs)
	if c.Server.Scalable {
		c.checkScalable(&probs)
	}
	if err := probs.err(); err != nil {
		return err
	}
	if !c.SingleUser() {
		if c.Database.Driver == DriverNone {
			// tiled/server/app.py: providers need a database, so Tiled
			// falls back to SQLite in memory.
			c.Database.setMemory()
			c.Warnings = append(c.Warnings, "database: none configured; identities, sessions and API keys are kept in memory and lost at exit")
		}
		if len(a.SecretKeys) == 0 {
			c.Warnings = append(c.Warnings, "authentication.secret_keys: none configured; a random key is used, so sessions end when the process exits")
		}
	}
	return nil
}

// checkScalable applies Tiled's --scalable rules (tiled/server/app.py,
// spec section 12): replicas must share the token keys, the database and
// the single-user key.
func (c *Config) checkScalable(probs *collector) {
	a := &c.Authentication
	if c.SingleUser() {
		if a.SingleUserAPIKey == "" {
			probs.add(Problem{Path: "authentication.single_user_api_key", Msg: scalableMsg(
				"in single-user mode a fixed API key is required",
				"authentication.single_user_api_key, TILED_SINGLE_USER_API_KEY or --api-key")})
		}
		return
	}
	if len(a.SecretKeys) == 0 {
		probs.add(Problem{Path: "authentication.secret_keys", Msg: scalableMsg(
			"with authentication providers, secret keys are required so every replica verifies the same tokens",
			"authentication.secret_keys or TILED_SECRET_KEYS")})
	}
	switch {
	case c.Database.Driver == DriverNone:
		probs.add(Problem{Path: "database.uri", Msg: scalableMsg(
			"with authentication providers, a persistent database shared by every replica is required",
			"database.uri, TILED_DATABASE_URI")})
	case c.Database.InMemory:
		probs.add(c.problem("database.uri", "%s", scalableMsg(
			"an in-memory database is not shared between replicas",
			"a postgresql:// database.uri")))
	case c.Database.Driver == DriverSQLite:
		c.Warnings = append(c.Warnings, "database.uri: SQLite under --scalable works only for replicas on one host sharing the file; use PostgreSQL")
	}
}

func scalableMsg(why, where string) string {
	return fmt.Sprintf("required under --scalable: %s (set %s)", why, where)
}
