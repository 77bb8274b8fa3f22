package data

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/tiledgo/server/internal/http/httperr"
)

// invalid is one entry of a FastAPI request-validation error (pydantic's
// error shape), in pydantic's key order.
type invalid struct {
	Type  string         `json:"type"`
	Loc   []any          `json:"loc"`
	Msg   string         `json:"msg"`
	Input any            `json:"input"`
	Ctx   map[string]any `json:"ctx,omitempty"`
}

// unprocessable is FastAPI's 422: {"detail": [errors...]}.
func unprocessable(items ...invalid) error { return httperr.Unprocessable(items) }

func loc(name string, index ...int) []any {
	l := []any{"query", name}
	for _, i := range index {
		l = append(l, i)
	}
	return l
}

// query reads the query parameters of a request the way FastAPI does: a
// scalar parameter given several times takes the last value.
type query struct{ v url.Values }

func (q query) has(name string) bool { return q.v.Has(name) }

func (q query) last(name string) string {
	vs := q.v[name]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func (q query) all(name string) []string { return q.v[name] }

// intParam reads an optional integer within [lo, hi] (hi < 0: unbounded).
func (q query) intParam(name string, def, lo, hi int) (int, error) {
	if !q.has(name) {
		return def, nil
	}
	return parseInt(name, q.last(name), lo, hi)
}

func parseInt(name, raw string, lo, hi int) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return 0, unprocessable(invalid{Type: "int_parsing", Loc: loc(name), Input: raw,
			Msg: "Input should be a valid integer, unable to parse string as an integer"})
	}
	if v < lo {
		return 0, unprocessable(invalid{Type: "greater_than_equal", Loc: loc(name), Input: raw,
			Msg: fmt.Sprintf("Input should be greater than or equal to %d", lo), Ctx: map[string]any{"ge": lo}})
	}
	if hi >= 0 && v > hi {
		return 0, unprocessable(invalid{Type: "less_than_equal", Loc: loc(name), Input: raw,
			Msg: fmt.Sprintf("Input should be less than or equal to %d", hi), Ctx: map[string]any{"le": hi}})
	}
	return v, nil
}

// boolParam reads an optional boolean with pydantic's spellings.
func (q query) boolParam(name string) (bool, error) {
	if !q.has(name) {
		return false, nil
	}
	raw := q.last(name)
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "1", "on", "t", "true", "y", "yes":
		return true, nil
	case "0", "off", "f", "false", "n", "no":
		return false, nil
	}
	return false, unprocessable(invalid{Type: "bool_parsing", Loc: loc(name), Input: raw,
		Msg: "Input should be a valid boolean, unable to interpret input"})
}

// patternParam reads an optional string that must match pattern, as
// FastAPI's Query(pattern=...) checks it.
func (q query) patternParam(name string, match func(string) bool, pattern string) (string, bool, error) {
	if !q.has(name) {
		return "", false, nil
	}
	raw := q.last(name)
	if !match(raw) {
		return "", false, patternMismatch(loc(name), raw, pattern)
	}
	return raw, true, nil
}

func patternMismatch(l []any, raw, pattern string) error {
	return unprocessable(invalid{Type: "string_pattern_mismatch", Loc: l, Input: raw,
		Msg: fmt.Sprintf("String should match pattern '%s'", pattern), Ctx: map[string]any{"pattern": pattern}})
}

func missing(name string) error {
	return unprocessable(invalid{Type: "missing", Loc: loc(name), Msg: "Field required"})
}

// The patterns of Tiled's shape parameters (tiled/server/dependencies.py).
const expectedShapePattern = `^[0-9]+(,[0-9]+)*$|^scalar$`

var expectedShapeRE = regexp.MustCompile(expectedShapePattern)

// expectedShape reads ?expected_shape= ("2,3" or "scalar"), which the
// Python client sends with every data request; nil when absent.
func (q query) expectedShape() ([]int, error) {
	if !q.has("expected_shape") {
		return nil, nil
	}
	raw := q.last("expected_shape")
	if raw == "" {
		return nil, unprocessable(invalid{Type: "string_too_short", Loc: loc("expected_shape"), Input: raw,
			Msg: "String should have at least 1 character", Ctx: map[string]any{"min_length": 1}})
	}
	if !expectedShapeRE.MatchString(raw) {
		return nil, patternMismatch(loc("expected_shape"), raw, expectedShapePattern)
	}
	if raw == "scalar" {
		return []int{}, nil
	}
	parts := strings.Split(raw, ",")
	out := make([]int, len(parts))
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil {
			// Digits only, so this is an overflow: no real shape has it.
			return nil, unprocessable(invalid{Type: "int_parsing", Loc: loc("expected_shape"), Input: raw,
				Msg: "Input should be a valid integer, unable to parse string as an integer"})
		}
		out[i] = v
	}
	return out, nil
}

// entryFields are Tiled's EntryFields, in its order: what ?fields= may name.
var entryFields = []string{"metadata", "structure_family", "structure", "count", "sorting", "specs", "data_sources", "", "access_blob"}

// fieldSet is the parsed ?fields=; by default every field.
type fieldSet struct {
	list []string
	set  map[string]bool
}

func (f fieldSet) has(name string) bool { return f.set[name] }

// only reports whether the fields are exactly the one given, which Tiled
// treats specially ("" for keys only, "count" for the count only).
func (f fieldSet) only(name string) bool { return len(f.list) == 1 && f.list[0] == name }

func (q query) fields() (fieldSet, error) {
	list := entryFields
	if q.has("fields") {
		list = q.all("fields")
	}
	fs := fieldSet{list: list, set: map[string]bool{}}
	for i, v := range list {
		known := false
		for _, f := range entryFields {
			known = known || f == v
		}
		if !known {
			quoted := make([]string, len(entryFields))
			for j, f := range entryFields {
				quoted[j] = "'" + f + "'"
			}
			expected := strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
			return fieldSet{}, unprocessable(invalid{Type: "enum", Loc: loc("fields", i), Input: v,
				Msg: "Input should be " + expected, Ctx: map[string]any{"expected": expected}})
		}
		fs.set[v] = true
	}
	return fs, nil
}

// columns reads ?column= (and its deprecated spelling ?field=); nil when
// neither is given, meaning every column.
func (q query) columns(allowField bool) ([]string, error) {
	cols, fields := q.all("column"), q.all("field")
	if allowField && cols != nil && fields != nil {
		return nil, httperr.BadRequest("Cannot accept both 'column' and 'field' query parameters in the same " +
			"/table/partition request. Include these query values using only the 'column' parameter.")
	}
	if cols == nil && allowField {
		return fields, nil
	}
	return cols, nil
}
