package data

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/tiledgo/server/internal/http/httperr"
)

// queryFields are the fields of each query type Tiled registers
// (tiled/queries.py); the client sends them as
// filter[NAME][condition][FIELD]=VALUE. Parameters of other names are
// ignored, as FastAPI ignores query parameters it does not declare.
var queryFields = map[string][]string{
	"fulltext":           {"text"},
	"lookup":             {"key"},
	"keys_filter":        {"keys"},
	"regex":              {"key", "pattern", "case_sensitive"},
	"eq":                 {"key", "value"},
	"noteq":              {"key", "value"},
	"comparison":         {"operator", "key", "value"},
	"contains":           {"key", "value"},
	"in":                 {"key", "value"},
	"notin":              {"key", "value"},
	"keypresent":         {"key", "exists"},
	"like":               {"key", "pattern"},
	"specs":              {"include", "exclude"},
	"access_blob_filter": {"user_id", "tags"},
	"structure_family":   {"value"},
}

// supportedQueries are the query types decodeFilter implements, in Tiled's
// order; "like" and "access_blob_filter" are not among them (Tiled's
// in-memory trees do not support them either).
var supportedQueries = []string{"fulltext", "lookup", "keys_filter", "regex", "eq", "noteq", "comparison",
	"contains", "in", "notin", "keypresent", "specs", "structure_family"}

// Queries lists the search query types this server supports, for the about
// document.
func Queries() []string { return append([]string(nil), supportedQueries...) }

var filterParam = regexp.MustCompile(`^filter\[([^\]]+)\]\[condition\]\[([^\]]+)\]$`)

// filter keeps the children that match one query.
type filter struct {
	name  string
	match func(child) bool
	// lookup is set for the key lookup, which Tiled applies after every
	// other query.
	lookup *string
}

// parseFilters decodes the search queries of a request. Each query type
// may be given several times; the i-th value of each of its fields makes
// the i-th query, as in Tiled's apply_search.
func parseFilters(q query) ([]filter, error) {
	byName := map[string]map[string][]string{}
	var order []string
	for param, values := range q.v {
		m := filterParam.FindStringSubmatch(param)
		if m == nil || !isQueryField(m[1], m[2]) {
			continue
		}
		if byName[m[1]] == nil {
			byName[m[1]] = map[string][]string{}
			order = append(order, m[1])
		}
		byName[m[1]][m[2]] = values
	}
	sort.Strings(order) // map order is random; results do not depend on it
	var out []filter
	for _, name := range order {
		fields := byName[name]
		n := -1
		for _, vs := range fields {
			if n < 0 || len(vs) < n {
				n = len(vs)
			}
		}
		for i := 0; i < n; i++ {
			args := map[string]string{}
			for f, vs := range fields {
				args[f] = vs[i]
			}
			f, err := decodeFilter(name, args, i)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		}
	}
	return out, nil
}

func isQueryField(name, field string) bool {
	for _, f := range queryFields[name] {
		if f == field {
			return true
		}
	}
	return false
}

// queryArgs gives typed access to one query's fields, with Tiled-shaped
// errors: 422 for a boolean FastAPI would not parse, 400 for the rest.
type queryArgs struct {
	name  string
	args  map[string]string
	index int
}

func (a queryArgs) bad(format string, v ...any) error {
	return httperr.BadRequest(fmt.Sprintf("Query %q: ", a.name) + fmt.Sprintf(format, v...))
}

func (a queryArgs) str(field string) (string, error) {
	v, ok := a.args[field]
	if !ok {
		return "", a.bad("missing field %q", field)
	}
	return v, nil
}

func (a queryArgs) json(field string) (any, error) {
	raw, err := a.str(field)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, a.bad("field %q is not valid JSON: %v", field, err)
	}
	return v, nil
}

func (a queryArgs) list(field string) ([]any, error) {
	v, err := a.json(field)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]any)
	if !ok {
		return nil, a.bad("field %q must be a JSON list", field)
	}
	return l, nil
}

func (a queryArgs) boolean(field string, def bool) (bool, error) {
	raw, ok := a.args[field]
	if !ok {
		return def, nil
	}
	param := "filter[" + a.name + "][condition][" + field + "]"
	v, err := query{map[string][]string{param: {raw}}}.boolParam(param)
	if err != nil {
		return false, unprocessable(invalid{Type: "bool_parsing", Loc: loc(param, a.index), Input: raw,
			Msg: "Input should be a valid boolean, unable to interpret input"})
	}
	return v, nil
}

func decodeFilter(name string, raw map[string]string, index int) (filter, error) {
	a := queryArgs{name: name, args: raw, index: index}
	f := filter{name: name}
	// Queries on a metadata key: the key is a dotted path into metadata.
	onKey := func(test func(term any) bool) (filter, error) {
		key, err := a.str("key")
		if err != nil {
			return filter{}, err
		}
		f.match = func(c child) bool {
			term, ok := metadataAt(c.node.Metadata(), key)
			return ok && test(term)
		}
		return f, nil
	}
	switch name {
	case "fulltext":
		text, err := a.str("text")
		if err != nil {
			return filter{}, err
		}
		words := strings.Fields(strings.ToLower(text))
		f.match = func(c child) bool { return anyWord(c.node.Metadata(), words) }
		return f, nil
	case "lookup":
		key, err := a.str("key")
		if err != nil {
			return filter{}, err
		}
		f.lookup = &key
		return f, nil
	case "keys_filter":
		keys, err := a.list("keys")
		if err != nil {
			return filter{}, err
		}
		f.match = func(c child) bool { return containsValue(keys, c.key) }
		return f, nil
	case "regex":
		pattern, err := a.str("pattern")
		if err != nil {
			return filter{}, err
		}
		cs, err := a.boolean("case_sensitive", true)
		if err != nil {
			return filter{}, err
		}
		if !cs {
			pattern = "(?i)" + pattern
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return filter{}, a.bad("invalid pattern: %v", err)
		}
		return onKey(func(term any) bool { s, ok := term.(string); return ok && re.MatchString(s) })
	case "eq", "noteq", "contains":
		value, err := a.json("value")
		if err != nil {
			return filter{}, err
		}
		switch name {
		case "eq":
			return onKey(func(term any) bool { return jsonEqual(term, value) })
		case "noteq":
			return onKey(func(term any) bool { return !jsonEqual(term, value) })
		}
		return onKey(func(term any) bool { return containsTerm(term, value) })
	case "comparison":
		op, err := a.str("operator")
		if err != nil {
			return filter{}, err
		}
		value, err := a.json("value")
		if err != nil {
			return filter{}, err
		}
		want := map[string]func(int) bool{
			"lt": func(c int) bool { return c < 0 }, "le": func(c int) bool { return c <= 0 },
			"gt": func(c int) bool { return c > 0 }, "ge": func(c int) bool { return c >= 0 },
		}[op]
		if want == nil {
			return filter{}, a.bad("operator %q is not one of lt, le, gt, ge", op)
		}
		return onKey(func(term any) bool { c, ok := compareJSON(term, value); return ok && want(c) })
	case "in", "notin":
		values, err := a.list("value")
		if err != nil {
			return filter{}, err
		}
		if name == "in" {
			return onKey(func(term any) bool { return containsValue(values, term) })
		}
		if len(values) == 0 {
			f.match = func(child) bool { return true } // Tiled: NotIn([]) keeps everything
			return f, nil
		}
		return onKey(func(term any) bool { return !containsValue(values, term) })
	case "keypresent":
		key, err := a.str("key")
		if err != nil {
			return filter{}, err
		}
		exists, err := a.boolean("exists", true)
		if err != nil {
			return filter{}, err
		}
		f.match = func(c child) bool { _, ok := metadataAt(c.node.Metadata(), key); return ok == exists }
		return f, nil
	case "specs":
		include, err := a.list("include")
		if err != nil {
			return filter{}, err
		}
		exclude, err := a.list("exclude")
		if err != nil {
			return filter{}, err
		}
		f.match = func(c child) bool {
			names := []any{}
			for _, s := range c.node.Specs() {
				names = append(names, s.Name)
			}
			for _, s := range include {
				if !containsValue(names, s) {
					return false
				}
			}
			for _, s := range exclude {
				if containsValue(names, s) {
					return false
				}
			}
			return true
		}
		return f, nil
	case "structure_family":
		v, err := a.str("value")
		if err != nil {
			return filter{}, err
		}
		switch v {
		case "array", "awkward", "bytes", "container", "ragged", "sparse", "table":
		default:
			return filter{}, a.bad("%q is not a structure family", v)
		}
		f.match = func(c child) bool { return string(c.node.Family()) == v }
		return f, nil
	}
	return filter{}, httperr.BadRequest(fmt.Sprintf("Query %q is not supported by this server.", name))
}

// applyFilters narrows the children; key lookups come last, and two
// different lookups match nothing (Tiled's apply_search).
func applyFilters(kids []child, filters []filter) []child {
	lookups := map[string]bool{}
	for _, f := range filters {
		if f.lookup != nil {
			lookups[*f.lookup] = true
			continue
		}
		var kept []child
		for _, c := range kids {
			if f.match(c) {
				kept = append(kept, c)
			}
		}
		kids = kept
	}
	if len(lookups) == 0 {
		return kids
	}
	if len(lookups) > 1 {
		return nil
	}
	for _, c := range kids {
		if lookups[c.key] {
			return []child{c}
		}
	}
	return nil
}

// metadataAt follows a dotted key into metadata (Tiled's
// iter_child_metadata); ok is false when any step is missing.
func metadataAt(meta map[string]any, key string) (any, bool) {
	var term any = meta
	for _, k := range strings.Split(key, ".") {
		m, ok := term.(map[string]any)
		if !ok {
			return nil, false
		}
		if term, ok = m[k]; !ok {
			return nil, false
		}
	}
	return term, true
}

// anyWord reports whether any string in metadata (values of objects at any
// depth, and strings in lists) contains one of words, case-insensitively.
func anyWord(v any, words []string) bool {
	switch t := v.(type) {
	case string:
		for _, w := range strings.Fields(strings.ToLower(t)) {
			for _, q := range words {
				if w == q {
					return true
				}
			}
		}
	case map[string]any:
		for _, x := range t {
			if anyWord(x, words) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && anyWord(s, words) {
				return true
			}
		}
	}
	return false
}

// number converts Go's numeric types to float64.
func number(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// normalize makes metadata from Go code ([]string, int, ...) comparable
// with values decoded from JSON.
func normalize(v any) any {
	if f, ok := number(v); ok {
		return f
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if _, isBytes := v.([]byte); isBytes {
			return v
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range rv.MapKeys() {
			out[fmt.Sprint(k.Interface())] = normalize(rv.MapIndex(k).Interface())
		}
		return out
	}
	return v
}

func jsonEqual(a, b any) bool { return reflect.DeepEqual(normalize(a), normalize(b)) }

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if jsonEqual(x, v) {
			return true
		}
	}
	return false
}

// containsTerm is Python's "value in term" for a list term, or a key test
// for an object term.
func containsTerm(term, value any) bool {
	switch t := normalize(term).(type) {
	case []any:
		return containsValue(t, value)
	case map[string]any:
		s, ok := value.(string)
		_, has := t[s]
		return ok && has
	}
	return false
}

// compareJSON orders two numbers or two strings; other pairs do not
// compare (Python would raise TypeError).
func compareJSON(a, b any) (int, bool) {
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
		return 0, false
	}
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if !ok1 || !ok2 {
		return 0, false
	}
	return strings.Compare(x, y), true
}
