// Package httperr carries the status, detail and headers of an error that a
// client caused, so that handlers can say what went wrong while exactly one
// place (the server's HTTPErrorHandler) turns errors into responses.
//
// The body shape is FastAPI's, which the Tiled client parses: {"detail": ...}.
package httperr

import (
	"fmt"
	"net/http"
)

// Error is an error with an HTTP status. Detail is usually a string but may be
// any JSON value (Tiled answers some errors with an object or a list).
type Error struct {
	Status int
	Detail any
	// Header is added to the response (WWW-Authenticate, Retry-After, ...).
	Header http.Header
	// Err is the underlying cause, logged but never sent to the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %v: %v", e.Status, e.Detail, e.Err)
	}
	return fmt.Sprintf("%d %v", e.Status, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// WithHeader returns e with a response header added.
func (e *Error) WithHeader(key, value string) *Error {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Add(key, value)
	return e
}

// Wrap records the cause of e for the logs.
func (e *Error) Wrap(err error) *Error {
	e.Err = err
	return e
}

// New returns an error with the given status and detail.
func New(status int, detail any) *Error { return &Error{Status: status, Detail: detail} }

// BadRequest is 400.
func BadRequest(detail any) *Error { return New(http.StatusBadRequest, detail) }

// Unauthorized is 401 with WWW-Authenticate: Bearer, as Tiled sends it.
func Unauthorized(detail any) *Error {
	return New(http.StatusUnauthorized, detail).WithHeader("WWW-Authenticate", "Bearer")
}

// Forbidden is 403.
func Forbidden(detail any) *Error { return New(http.StatusForbidden, detail) }

// NotFound is 404.
func NotFound(detail any) *Error { return New(http.StatusNotFound, detail) }

// Conflict is 409.
func Conflict(detail any) *Error { return New(http.StatusConflict, detail) }

// NotAcceptable is 406, for an Accept header no serializer can satisfy.
func NotAcceptable(detail any) *Error { return New(http.StatusNotAcceptable, detail) }

// Unprocessable is 422, for a body or query that does not validate.
func Unprocessable(detail any) *Error { return New(http.StatusUnprocessableEntity, detail) }

// Unavailable is 503 with Retry-After, for a busy or unreachable dependency.
func Unavailable(detail any, retryAfterSeconds int) *Error {
	return New(http.StatusServiceUnavailable, detail).WithHeader("Retry-After", fmt.Sprint(retryAfterSeconds))
}
