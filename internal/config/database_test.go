package config

import (
	"strings"
	"testing"
)

func TestDatabaseURI(t *testing.T) {
	tests := []struct {
		in       string
		driver   Driver
		uri      string
		path     string
		inMemory bool
	}{
		{"postgresql://u:p@db:5432/tiled", DriverPostgres, "postgresql://u:p@db:5432/tiled", "", false},
		{"postgres://u@db/tiled", DriverPostgres, "postgresql://u@db/tiled", "", false},
		{"postgresql+asyncpg://u:p@db/tiled?sslmode=require", DriverPostgres, "postgresql://u:p@db/tiled?sslmode=require", "", false},
		{"PostgreSQL+psycopg://db/tiled", DriverPostgres, "postgresql://db/tiled", "", false},
		{"sqlite:///auth.db", DriverSQLite, "sqlite:///auth.db", "auth.db", false},
		{"sqlite:////var/lib/tiled/auth.db", DriverSQLite, "sqlite:////var/lib/tiled/auth.db", "/var/lib/tiled/auth.db", false},
		{"sqlite+aiosqlite:///./data/auth.db", DriverSQLite, "sqlite:///./data/auth.db", "./data/auth.db", false},
		{"sqlite:///file:/tmp/a.db?uri=true", DriverSQLite, "sqlite:////tmp/a.db", "/tmp/a.db", false},
		{"sqlite://", DriverSQLite, "sqlite:///:memory:", "", true},
		{"sqlite+aiosqlite://", DriverSQLite, "sqlite:///:memory:", "", true},
		{"sqlite:///:memory:", DriverSQLite, "sqlite:///:memory:", "", true},
		{"sqlite:///file:authdb?mode=memory&cache=shared&uri=true", DriverSQLite, "sqlite:///:memory:", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var db Database
			if err := db.setURI(tt.in); err != nil {
				t.Fatal(err)
			}
			if db.Driver != tt.driver || db.URI.Reveal() != tt.uri || db.SQLitePath != tt.path || db.InMemory != tt.inMemory {
				t.Errorf("got %+v (uri %s)", db, db.URI.Reveal())
			}
		})
	}
	for _, bad := range []string{"mysql://db/tiled", "auth.db", "sqlite:auth.db", "sqlite://auth.db", "postgresql+pg8000://db/x", "postgresql://u:p%zz@db/x", ""} {
		t.Run("refuses "+bad, func(t *testing.T) {
			var db Database
			err := db.setURI(bad)
			if err == nil {
				t.Fatalf("accepted %+v", db)
			}
			if db.Driver != DriverNone {
				t.Errorf("a refused URI changed the database: %+v", db)
			}
			if strings.Contains(err.Error(), "p%zz") {
				t.Error("the URI (and its password) was echoed")
			}
		})
	}
}
