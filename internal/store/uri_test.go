package store

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want Location
	}{
		{"", Location{Backend: BackendMemory}},
		{"  ", Location{Backend: BackendMemory}},
		{"sqlite://", Location{Backend: BackendMemory}},
		{"sqlite:///:memory:", Location{Backend: BackendMemory}},
		{"sqlite+aiosqlite:///:memory:", Location{Backend: BackendMemory}},
		// Tiled's default when providers are configured without a database.
		{"sqlite:///file:authdb?mode=memory&cache=shared&uri=true", Location{Backend: BackendMemory}},
		{"sqlite+aiosqlite:///file:authdb?mode=memory&cache=shared&uri=true", Location{Backend: BackendMemory}},
		{"sqlite:///file:auth%20db.sqlite?uri=true", Location{Backend: BackendSQLite, Path: "auth db.sqlite"}},
		{"sqlite:///auth.db", Location{Backend: BackendSQLite, Path: "auth.db"}},
		{"sqlite:///data/auth.db", Location{Backend: BackendSQLite, Path: "data/auth.db"}},
		{"sqlite:////var/lib/tiled/auth.db", Location{Backend: BackendSQLite, Path: "/var/lib/tiled/auth.db"}},
		{"sqlite+aiosqlite:////var/lib/tiled/auth.db", Location{Backend: BackendSQLite, Path: "/var/lib/tiled/auth.db"}},
		{"SQLite:///auth.db", Location{Backend: BackendSQLite, Path: "auth.db"}},
		{"sqlite:///auth.db?timeout=5", Location{Backend: BackendSQLite, Path: "auth.db"}},
		{"/var/lib/tiled/auth.db", Location{Backend: BackendSQLite, Path: "/var/lib/tiled/auth.db"}},
		{"auth.db", Location{Backend: BackendSQLite, Path: "auth.db"}},
		{"postgresql://tiled:pw@db:5432/tiled", Location{Backend: BackendPostgres, DSN: "postgres://tiled:pw@db:5432/tiled"}},
		{"postgres://db/tiled", Location{Backend: BackendPostgres, DSN: "postgres://db/tiled"}},
		{"postgresql+asyncpg://tiled@db/tiled", Location{Backend: BackendPostgres, DSN: "postgres://tiled@db/tiled"}},
		{"postgresql+asyncpg://db/tiled?ssl=require", Location{Backend: BackendPostgres, DSN: "postgres://db/tiled?sslmode=require"}},
		{"postgresql://db/tiled?ssl=true&application_name=x", Location{Backend: BackendPostgres, DSN: "postgres://db/tiled?application_name=x&sslmode=require"}},
		{"postgresql://db/tiled?ssl=disable&sslmode=verify-full", Location{Backend: BackendPostgres, DSN: "postgres://db/tiled?sslmode=verify-full"}},
		{"postgresql://h1:5432,h2:5432/tiled", Location{Backend: BackendPostgres, DSN: "postgres://h1:5432,h2:5432/tiled"}},
	} {
		got, err := ParseURI(tc.uri)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tc.uri, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURI(%q) = %+v, want %+v", tc.uri, got, tc.want)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, tc := range []struct {
		uri, want string
	}{
		{"mysql://root:hunter2@db/tiled", `scheme "mysql" is not supported`},
		{"postgresql+psycopg2://u:hunter2@db/tiled", `scheme "postgresql+psycopg2" is not supported`},
		{"postgresql://", "needs a host or a database"},
		{"postgresql://db/tiled?ssl=maybe", "ssl="},
		{"postgresql://db/tiled?%zz", "query string"},
		{"sqlite://host/auth.db", "sqlite takes no host"},
		{"sqlite:///auth.db?%zz", "query string"},
		{"postgresql:db/tiled", `must be followed by "//"`},
		{"sqlite:auth.db", `must be followed by "//"`},
	} {
		_, err := ParseURI(tc.uri)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURI(%q) = %v, want an error containing %q", tc.uri, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURI(%q): the error repeats the password: %v", tc.uri, err)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	for _, seed := range []string{
		"", "sqlite://", "sqlite:///:memory:", "sqlite:///auth.db", "sqlite:////abs/auth.db",
		"sqlite:///file:authdb?mode=memory&cache=shared&uri=true", "sqlite:///file:x%zz?uri=true",
		"postgresql://u:p@h:5432/db?ssl=require", "postgresql+asyncpg://h/db", "postgres://h/db?%zz",
		"mysql://x", "auth.db", "/abs/auth.db", "C:\\auth.db", "x:y", "://", "sqlite://h/x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		loc, err := ParseURI(uri)
		if err != nil {
			return
		}
		switch loc.Backend {
		case BackendMemory:
			if loc.Path != "" || loc.DSN != "" {
				t.Fatalf("%q: memory with a path or DSN: %+v", uri, loc)
			}
		case BackendSQLite:
			if loc.Path == "" || loc.DSN != "" {
				t.Fatalf("%q: sqlite without a path: %+v", uri, loc)
			}
		case BackendPostgres:
			if !strings.HasPrefix(loc.DSN, "postgres://") || loc.Path != "" {
				t.Fatalf("%q: postgres DSN %q", uri, loc.DSN)
			}
		default:
			t.Fatalf("%q: backend %q", uri, loc.Backend)
		}
	})
}
