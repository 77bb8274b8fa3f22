package authapi

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/tiledgo/server/internal/http/httperr"
)

// maxBody bounds what an auth route reads: its bodies are a few hundred bytes.
const maxBody = 64 << 10

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
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "Request body too large")
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
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, httperr.BadRequest("Malformed form body")
		}
		return r.PostForm, nil
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxBody); err != nil {
			return nil, httperr.BadRequest("Malformed form body")
		}
		return r.PostForm, nil
	}
	return url.Values{}, nil
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
