// Package storeerr holds the errors every store backend returns, so that the
// domain packages and the HTTP layer can tell "absent" from "taken" from
// "the database is not answering" without knowing which backend is in use.
package storeerr

import "errors"

var (
	// ErrNotFound: no row matched (or it matched but has expired).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule would be broken.
	ErrConflict = errors.New("conflict")
	// ErrLimit: the write would take a principal past a limit (its active
	// sessions or API keys); nothing was written.
	ErrLimit = errors.New("limit reached")
	// ErrUnavailable: the database is unreachable, busy or timed out; the
	// request may succeed if retried later (HTTP 503 with Retry-After).
	ErrUnavailable = errors.New("session database unavailable")
)
