package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The backends a URI can name.
const (
	BackendPostgres = "postgresql"
	BackendSQLite   = "sqlite"
	BackendMemory   = "memory"
)

// Location is a parsed database URI.
type Location struct {
	// Backend is BackendPostgres, BackendSQLite or BackendMemory.
	Backend string
	// DSN is the PostgreSQL URL as pgx reads it (postgres://...).
	DSN string
	// Path is the SQLite file. A relative path is relative to the working
	// directory, as in SQLAlchemy: sqlite:///auth.db is ./auth.db and
	// sqlite:////var/lib/tiled/auth.db is /var/lib/tiled/auth.db.
	Path string
}

// ParseURI reads Tiled's database.uri (TILED_DATABASE_URI):
//
//   - "" (no database configured): an in-memory SQLite database;
//   - postgresql://, postgres:// or postgresql+asyncpg:// (Tiled's driver
//     suffix): PostgreSQL; asyncpg's ssl=... becomes libpq's sslmode=...;
//   - sqlite:///path, sqlite+aiosqlite:///path: a SQLite file, with
//     SQLAlchemy's slashes (three, then the path);
//   - sqlite://, sqlite:///:memory:, or Tiled's own default
//     sqlite:///file:authdb?mode=memory&cache=shared&uri=true: in memory;
//   - a bare file path (Tiled accepts one too): a SQLite file.
//
// Error messages name the scheme but never repeat the URI, which may hold a
// password.
func ParseURI(uri string) (Location, error) {
	uri = strings.TrimSpace(uri)
	if uri == "" {
		return Location{Backend: BackendMemory}, nil
	}
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		if looksLikeScheme(uri) {
			return Location{}, errors.New(`database uri: a scheme must be followed by "//" (postgresql://host/db, sqlite:///path)`)
		}
		return Location{Backend: BackendSQLite, Path: uri}, nil
	}
	switch strings.ToLower(scheme) {
	case "postgresql", "postgres", "postgresql+asyncpg":
		dsn, err := postgresDSN(rest)
		if err != nil {
			return Location{}, err
		}
		return Location{Backend: BackendPostgres, DSN: dsn}, nil
	case "sqlite", "sqlite+aiosqlite":
		return sqliteLocation(rest)
	default:
		return Location{}, fmt.Errorf("database uri scheme %q is not supported: use postgresql://user@host/db, "+
			"sqlite:///path/to/file.db, or no uri for an in-memory database", scheme)
	}
}

func postgresDSN(rest string) (string, error) {
	if rest == "" {
		return "", errors.New("database uri: postgresql:// needs a host or a database")
	}
	authority, query, hasQuery := strings.Cut(rest, "?")
	if !hasQuery {
		return "postgres://" + rest, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("database uri: query string: %w", err)
	}
	if ssl, ok := q["ssl"]; ok {
		q.Del("ssl")
		if _, set := q["sslmode"]; !set && len(ssl) > 0 {
			mode, err := sslMode(ssl[0])
			if err != nil {
				return "", err
			}
			q.Set("sslmode", mode)
		}
	}
	return "postgres://" + authority + "?" + q.Encode(), nil
}

// sslMode translates asyncpg's ssl parameter, which SQLAlchemy URIs written
// for Tiled carry, to libpq's sslmode.
func sslMode(ssl string) (string, error) {
	switch v := strings.ToLower(ssl); v {
	case "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
		return v, nil
	case "true":
		return "require", nil
	case "false":
		return "disable", nil
	}
	return "", fmt.Errorf("database uri: ssl=%q: want disable, allow, prefer, require, verify-ca or verify-full", ssl)
}

func sqliteLocation(rest string) (Location, error) {
	memory := Location{Backend: BackendMemory}
	if rest == "" {
		return memory, nil
	}
	if !strings.HasPrefix(rest, "/") {
		return Location{}, errors.New("database uri: sqlite takes no host: write sqlite:///relative.db or sqlite:////absolute.db")
	}
	path, query, _ := strings.Cut(rest[1:], "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return Location{}, fmt.Errorf("database uri: query string: %w", err)
	}
	if strings.EqualFold(q.Get("uri"), "true") {
		// SQLAlchemy's uri=true: the path is itself a SQLite URI filename,
		// and the query string holds SQLite's URI parameters.
		if q.Get("mode") == "memory" {
			return memory, nil
		}
		name, err := url.PathUnescape(strings.TrimPrefix(path, "file:"))
		if err != nil {
			return Location{}, fmt.Errorf("database uri: sqlite file name: %w", err)
		}
		path = name
	}
	if path == "" || path == ":memory:" {
		return memory, nil
	}
	return Location{Backend: BackendSQLite, Path: path}, nil
}

// looksLikeScheme reports a "scheme:" prefix (RFC 3986: a letter, then
// letters, digits, "+", "-" or "."), which in a URI without "//" is a typo
// rather than a file name. One letter is a Windows drive, not a scheme.
func looksLikeScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, ":")
	if !ok || len(scheme) < 2 {
		return false
	}
	for i, c := range scheme {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}
