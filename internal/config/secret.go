package config

import (
	"log/slog"
	"net/url"
	"strings"
)

const redacted = "REDACTED"

// Secret is a string that must never be printed: fmt, slog and JSON all see
// "REDACTED". Call Reveal where the value is really needed.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string { return redactedOrEmpty(string(s)) }

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps slog's JSON handler and any JSON dump from printing it.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

func redactedOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// DSN is a database URI whose password is hidden whenever it is printed.
type DSN string

// Reveal returns the URI with its password, for opening the database.
func (d DSN) Reveal() string { return string(d) }

func (d DSN) String() string { return redactURL(string(d)) }

// GoString keeps %#v from printing the password.
func (d DSN) GoString() string { return `config.DSN("` + d.String() + `")` }

// LogValue implements slog.LogValuer.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalJSON keeps JSON dumps from printing the password.
func (d DSN) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// redactURL hides the password of a URL with user information. Anything it
// cannot parse is hidden whole, since it may be a secret in another shape.
func redactURL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	return u.String()
}
