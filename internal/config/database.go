package config

import (
	"errors"
	"net/url"
	"strings"
)

// Driver suffixes SQLAlchemy URIs may carry ("postgresql+asyncpg://"); the
// driver is Python's business, the database is the same.
var (
	postgresDrivers = []string{"", "asyncpg", "psycopg", "psycopg2"}
	sqliteDrivers   = []string{"", "aiosqlite", "pysqlite"}
)

var errDatabaseScheme = errors.New("unsupported database URI: use postgresql://USER:PASSWORD@HOST/DB " +
	"(also postgres:// or Tiled's postgresql+asyncpg://), sqlite:///PATH or sqlite:///:memory:")

// setURI parses a SQLAlchemy-style URI as Tiled accepts it and stores its
// normalised form. Errors never quote the URI, which may hold a password.
func (db *Database) setURI(raw string) error {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return errDatabaseScheme
	}
	base, driver, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch {
	case (base == "postgresql" || base == "postgres") && contains(postgresDrivers, driver):
		u, err := url.Parse("postgresql://" + rest)
		if err != nil {
			return errors.New("invalid PostgreSQL URI (check that special characters in the password are percent-encoded)")
		}
		db.URI, db.Driver = DSN(u.String()), DriverPostgres
		db.SQLitePath, db.InMemory = "", false
		return nil
	case base == "sqlite" && contains(sqliteDrivers, driver):
		return db.setSQLite(rest)
	}
	return errDatabaseScheme
}

// setSQLite follows SQLAlchemy: "sqlite://" and "sqlite:///:memory:" are in
// memory, "sqlite:///rel.db" is relative, "sqlite:////abs.db" absolute, and
// a SQLite URI filename ("sqlite:///file:authdb?mode=memory&cache=shared&uri=true",
// Tiled's default) is in memory when mode=memory.
func (db *Database) setSQLite(rest string) error {
	if rest == "" {
		db.setMemory()
		return nil
	}
	if !strings.HasPrefix(rest, "/") {
		return errors.New("a SQLite URI needs three slashes: sqlite:///PATH (relative) or sqlite:////PATH (absolute)")
	}
	path, query, _ := strings.Cut(rest[1:], "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return errors.New("invalid query string in SQLite URI")
	}
	if path == "" || path == ":memory:" || q.Get("mode") == "memory" {
		db.setMemory()
		return nil
	}
	if strings.HasPrefix(path, "file:") && q.Get("uri") == "true" {
		path = strings.TrimPrefix(path, "file:")
	}
	db.Driver, db.SQLitePath, db.InMemory = DriverSQLite, path, false
	db.URI = DSN("sqlite:///" + path)
	return nil
}

func (db *Database) setMemory() {
	db.Driver, db.InMemory, db.SQLitePath = DriverSQLite, true, ""
	db.URI = "sqlite:///:memory:"
}
