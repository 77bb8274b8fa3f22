package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
)

// maxListBody bounds the body of the POST forms of the data routes: a list
// of column or field names, sent in the body because it would not fit in a
// URL (the Python client switches to POST past 2,000 characters).
const maxListBody = 8 << 20

// bodyList reads the body of a POST data request as FastAPI reads Tiled's
// Body(None, min_length=1) list of names: no body or JSON null means none
// given; otherwise a JSON list of one or more strings. Mistakes are 422s in
// pydantic's shape, located at ["body"].
func bodyList(c echo.Context) ([]string, error) {
	r := c.Request()
	raw, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxListBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, httperr.New(http.StatusRequestEntityTooLarge, "Request body too large: the list of names may take at most 8 MiB.")
	}
	if err != nil {
		return nil, httperr.BadRequest("Could not read the request body: " + err.Error())
	}
	return parseBodyList(r.Header.Get("Content-Type"), raw)
}

// parseBodyList is bodyList's parser, apart for fuzzing.
func parseBodyList(contentType string, raw []byte) ([]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	// FastAPI decodes the body as JSON when there is no Content-Type or a
	// JSON one; any other body is validated as the raw text it is.
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			return nil, unprocessable(invalid{Type: "list_type", Loc: []any{"body"}, Msg: "Input should be a valid list", Input: string(raw)})
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("Extra data")
		}
	}
	if err != nil {
		return nil, unprocessable(invalid{Type: "json_invalid", Loc: []any{"body", dec.InputOffset()}, Msg: "JSON decode error",
			Input: map[string]any{}, Ctx: map[string]any{"error": err.Error()}})
	}
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, unprocessable(invalid{Type: "list_type", Loc: []any{"body"}, Msg: "Input should be a valid list", Input: v})
	}
	var bad []invalid
	out := make([]string, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			bad = append(bad, invalid{Type: "string_type", Loc: []any{"body", i}, Msg: "Input should be a valid string", Input: x})
			continue
		}
		out[i] = s
	}
	if bad != nil {
		return nil, unprocessable(bad...)
	}
	if len(out) == 0 {
		return nil, unprocessable(invalid{Type: "too_short", Loc: []any{"body"}, Input: []any{},
			Msg: "List should have at least 1 item after validation, not 0",
			Ctx: map[string]any{"field_type": "List", "min_length": 1, "actual_length": 0}})
	}
	return out, nil
}
