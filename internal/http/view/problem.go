package view

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
)

// Shown is the error a page may show a person: one of ours that they can
// act on (a 4xx, or a 503 to retry), with its headers (Retry-After, ...)
// already copied onto the response. ok is false for anything else, which
// goes to the server's error handler (logged, 500).
func Shown(c echo.Context, err error) (he *httperr.Error, ok bool) {
	if !errors.As(err, &he) || (he.Status >= 500 && he.Status != http.StatusServiceUnavailable) {
		return nil, false
	}
	for k, v := range he.Header {
		c.Response().Header()[k] = v
	}
	return he, true
}

// Message is an error's message for a person: its detail, or a 422's first
// problem.
func Message(he *httperr.Error) string {
	switch d := he.Detail.(type) {
	case string:
		return d
	case []map[string]any:
		if len(d) > 0 {
			return fmt.Sprint(d[0]["msg"])
		}
	}
	return http.StatusText(he.Status)
}

// WantsHTML says whether a browser, not a script, is asking: it may then be
// answered with a page rather than JSON.
func WantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}
