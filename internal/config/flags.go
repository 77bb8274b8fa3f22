package config

import "time"

// Flags are the command-line options that override configuration; nil
// means the flag was not given. They mirror "tiled serve" (--host, --port,
// --public, --api-key, --scalable) plus this server's logging flags.
type Flags struct {
	Host      *string
	Port      *int
	Public    *bool
	APIKey    *string
	Scalable  *bool
	LogFormat *string
	LogLevel  *string
	// Database and InitIfNotExists override the database block.
	Database        *string
	InitIfNotExists *bool
	// DrainDelay and ShutdownTimeout override the server block.
	DrainDelay      *time.Duration
	ShutdownTimeout *time.Duration
	// MetricsAddr overrides server.metrics_addr.
	MetricsAddr *string
}

// ApplyFlags overrides the configuration with the flags given; Finalize
// checks the result.
func (c *Config) ApplyFlags(f Flags) {
	applyFlag(c, f.Host, &c.Uvicorn.Host, "uvicorn.host", "--host")
	applyFlag(c, f.Port, &c.Uvicorn.Port, "uvicorn.port", "--port")
	applyFlag(c, f.Public, &c.Authentication.AllowAnonymousAccess, "authentication.allow_anonymous_access", "--public")
	applyFlag(c, f.Scalable, &c.Server.Scalable, "server.scalable", "--scalable")
	applyFlag(c, f.LogFormat, &c.Server.LogFormat, "server.log_format", "--log-format")
	applyFlag(c, f.LogLevel, &c.Server.LogLevel, "server.log_level", "--log-level")
	applyFlag(c, f.InitIfNotExists, &c.Database.InitIfNotExists, "database.init_if_not_exists", "--init-if-not-exists")
	applyFlag(c, f.DrainDelay, &c.Server.ShutdownDrainDelay, "server.shutdown_drain_delay", "--drain-delay")
	applyFlag(c, f.ShutdownTimeout, &c.Server.ShutdownTimeout, "server.shutdown_timeout", "--shutdown-timeout")
	applyFlag(c, f.MetricsAddr, &c.Server.MetricsAddr, "server.metrics_addr", "--metrics-addr")
	if f.Database != nil {
		if err := c.Database.setURI(*f.Database); err != nil {
			c.flagErrs = append(c.flagErrs, Problem{File: "flags", Path: "--database", Msg: err.Error()})
		} else {
			c.setOrigin("database.uri", origin{file: "flags", name: "--database"})
		}
	}
	if f.APIKey != nil {
		key := Secret(*f.APIKey)
		applyFlag(c, &key, &c.Authentication.SingleUserAPIKey, "authentication.single_user_api_key", "--api-key")
	}
}

// applyFlag sets *dst from a flag that was given, remembering the flag as
// where the value came from.
func applyFlag[T any](c *Config, v, dst *T, key, flag string) {
	if v != nil {
		*dst = *v
		c.setOrigin(key, origin{file: "flags", name: flag})
	}
}
