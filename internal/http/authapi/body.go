package authapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
)

// maxBody bounds what an auth route reads: its bodies (a login form, a
// refresh token, an API-key request) are a few hundred bytes.
const maxBody = 16 << 10

// msgTooLarge is the one answer to an oversized body, form or JSON alike.
const msgTooLarge = "Request body too large"

func tooLarge() *httperr.Error { return httperr.New(http.StatusRequestEntityTooLarge, msgTooLarge) }

// limitedBody is a request body cut at maxBody that remembers whether the
// client sent more, so that a parser's error (the form and multipart
// parsers do not all keep http.MaxBytesError) is still answered 413.
type limitedBody struct {
	io.ReadCloser
	over bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.over = true
	}
	return n, err
}

// limitBody refuses a body over n bytes: by its Content-Length before
// anything is read, else (chunked) as soon as it passes n. Passing the
// response writer to MaxBytesReader makes the server close the connection
// instead of draining the rest.
func limitBody(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > n {
				// Go's server would read up to 256 KiB of an unread body
				// before answering (to keep the connection); closing the
				// connection instead answers at once and reads nothing.
				// (Closing the body would read it too.)
				c.Response().Header().Set("Connection", "close")
				return tooLarge()
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(c.Response(), r.Body, n)}
			}
			return next(c)
		}
	}
}

// overLimit reports whether reading r's body ran past its limit.
func overLimit(r *http.Request, err error) bool {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return true
	}
	b, ok := r.Body.(*limitedBody)
	return ok && b.over
}

// missing is one entry of a FastAPI/pydantic validation error, the shape the
// Tiled client and its users already know (tiled-captures/*-json-body.txt).
func missing(loc ...string) map[string]any {
	l := make([]any, 0, len(loc)+1)
	l = append(l, "body")
	for _, s := range loc {
		l = append(l, s)
	}
	return map[string]any{"type": "missing", "loc": l, "msg": "Field required", "input": nil}
}

func invalid(msg string, loc ...string) map[string]any {
	m := missing(loc...)
	m["type"], m["msg"] = "value_error", msg
	return m
}

func unprocessable(details ...map[string]any) *httperr.Error {
	return httperr.Unprocessable(details)
}

// readJSON decodes a JSON object body into a map. An empty body is 422
// "Field required" at ["body"], as FastAPI answers.
func readJSON(r *http.Request) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if overLimit(r, err) || len(b) > maxBody {
		return nil, tooLarge()
	}
	if err != nil {
		return nil, httperr.BadRequest("Could not read the request body")
	}
	if len(b) == 0 {
		return nil, unprocessable(map[string]any{"type": "missing", "loc": []any{"body"}, "msg": "Field required", "input": nil})
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, unprocessable(map[string]any{"type": "json_invalid", "loc": []any{"body"}, "msg": "JSON decode error", "input": nil})
	}
	return m, nil
}

// readForm parses a form body (urlencoded or multipart); other content
// types yield an empty form, so required fields are reported missing.
func readForm(r *http.Request) (url.Values, error) {
	if _, ok := r.Body.(*limitedBody); !ok {
		// Not behind limitBody (a direct call): bound it here.
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(nil, r.Body, maxBody)}
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch ct {
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxBody)
	default:
		return url.Values{}, nil
	}
	switch {
	case overLimit(r, err):
		return nil, tooLarge()
	case err != nil:
		return nil, httperr.BadRequest("Malformed form body")
	}
	return r.PostForm, nil
}

// stringField reads a required string member of a JSON object.
func stringField(m map[string]json.RawMessage, name string) (string, *map[string]any) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		d := missing(name)
		return "", &d
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		d := invalid("Input should be a valid string", name)
		d["type"] = "string_type"
		return "", &d
	}
	return s, nil
}
