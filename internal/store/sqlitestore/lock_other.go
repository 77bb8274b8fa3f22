//go:build !unix

package sqlitestore

import (
	"errors"
	"os"
)

// lockFile: without flock(2) there is no lock that dies with its process, so
// a file-backed database is refused rather than left unguarded.
func lockFile(string) (*os.File, error) {
	return nil, errors.New("a file-backed SQLite database needs a Unix system; use an in-memory database or PostgreSQL")
}
