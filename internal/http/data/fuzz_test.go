package data

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/tree"
)

// FuzzRoutes sends arbitrary paths, query strings and Accept headers to
// every route: whatever a client sends, the answer is a client error or a
// success, never a panic or an internal error (the test server's error
// handler fails the test on those).
func FuzzRoutes(f *testing.F) {
	seeds := []struct {
		route            uint8
		path, query, acc string
	}{
		{0, "D", "fields=&select_metadata=attrs.x[0]", ""},
		{1, "", "page[offset]=9223372036854775807&page[limit]=300&sort=-_", ""},
		{1, "nested", "filter[comparison][condition][operator]=lt&filter[comparison][condition][key]=level&filter[comparison][condition][value]=2", ""},
		{1, "", "filter[regex][condition][key]=a&filter[regex][condition][pattern]=(&filter[in][condition][value]=[", ""},
		{2, "A", "slice=-1:-5:-2,99999999999999999999&expected_shape=scalar", "text/csv;header=absent"},
		{3, "nested/grid", "block=0,0&slice=::-1&format=json,csv", ""},
		{4, "C", "column=x&column=x&format=json-seq", "application/json-seq"},
		{5, "C", "partition=-9223372036854775808&field=y", "*/*"},
		{6, "", "field=A&field=nested", ""},
		{6, "D", "field=time&format=parquet", ""},
		{7, "", "metadata=thing&counts=1&structure_families=true&specs=yes", ""},
		{2, "C/x", "slice=0:5&format=png", "image/*"},
	}
	for _, s := range seeds {
		f.Add(s.route, s.path, s.query, s.acc)
	}
	routes := []string{"metadata", "search", "array/full", "array/block", "table/full", "table/partition", "container/full", "distinct"}
	f.Fuzz(func(t *testing.T, route uint8, path, query, accept string) {
		s := newServer(t, tree.ExtendedDemo(), nil)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = "/api/v1/" + routes[int(route)%len(routes)] + "/" + path
		req.URL.RawPath = ""
		req.URL.RawQuery = query
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		s.e.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 304, 400, 403, 404, 405, 406, 422:
		default:
			t.Fatalf("%s?%s: status %d %s", req.URL.Path, query, rec.Code, rec.Body.String())
		}
	})
}

// FuzzSelectMetadata compiles and applies arbitrary ?select_metadata=
// expressions: each either works or is Tiled's 400, never a panic.
func FuzzSelectMetadata(f *testing.F) {
	for _, s := range []string{"a", "a.b[0].c", `"odd key".x[-1]`, "{t: a, n: length(a.b)}", "[a, a.b]",
		"length(a)", "a.b[?c > `0`].c", "sort_by(a.b, &c)", "a..b", "[0]", "a[", `"`, "a.b.", "", "max(@)", "`{}`"} {
		f.Add(s)
	}
	meta := map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": 1.0}}}, "n": 3, "s": []string{"x"}}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := parseMetaSelector(s)
		if err != nil {
			expectBadRequest(t, s, err)
			return
		}
		if _, err := sel.apply(meta); err != nil {
			expectBadRequest(t, s, err)
		}
	})
}

// FuzzParseBodyList feeds arbitrary bodies to the POST forms' parser: a
// list of names, or a 4xx in FastAPI's shape, never a panic.
func FuzzParseBodyList(f *testing.F) {
	for _, s := range []string{`["x","y"]`, `null`, ``, `[]`, `[1, "a", null]`, `{"a": 1}`, `"x"`, `[`, `["a"] ]`, ` ["a"] `, "\xff"} {
		f.Add("application/json", []byte(s))
	}
	f.Add("text/plain", []byte(`["x"]`))
	f.Add("application/vnd.api+json", []byte(`["x"]`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		list, err := parseBodyList(contentType, body)
		if err != nil {
			var he *httperr.Error
			if !errors.As(err, &he) || he.Status != 422 {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		if list != nil && len(list) == 0 {
			t.Fatalf("%q: an empty list was accepted", body)
		}
	})
}

func expectBadRequest(t *testing.T, expr string, err error) {
	t.Helper()
	var he *httperr.Error
	if !errors.As(err, &he) || he.Status != 400 {
		t.Fatalf("%q: %v, want a 400", expr, err)
	}
}
