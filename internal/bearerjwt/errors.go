package bearerjwt

import (
	"errors"
	"fmt"
)

// ErrUnavailable means no key set has been loaded yet (the issuer was
// unreachable at start and has not answered since): the token can be
// neither accepted nor refused, and the request should be retried.
var ErrUnavailable = errors.New("issuer signing keys not loaded")

// RFC 6750 section 3.1 error codes.
const (
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
	CodeInvalidRequest    = "invalid_request"
)

// Error is a refused token: Code is RFC 6750's error code and Description a
// message safe to show the client (it never contains the token).
type Error struct {
	Code        string
	Description string
	// Err is the underlying cause, for logs.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Err)
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Err }

func invalid(desc string, err error) *Error {
	return &Error{Code: CodeInvalidToken, Description: desc, Err: err}
}
