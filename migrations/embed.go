// Package migrations holds the session database schema as goose SQL files,
// one directory per SQL dialect, embedded in the binary so that `server
// migrate` and `serve` need nothing beside the executable.
//
// The two directories describe the same schema and must move in step: a
// version added to one is added to the other, so that a store can be moved
// between backends by dumping and loading without a schema gap.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres returns the migrations for PostgreSQL, rooted at their directory.
func Postgres() fs.FS { return sub("postgres") }

// SQLite returns the migrations for SQLite, rooted at their directory.
func SQLite() fs.FS { return sub("sqlite") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and dir is a constant above.
		panic(fmt.Sprintf("migrations: %v", err))
	}
	return f
}
