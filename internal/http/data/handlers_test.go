package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/access"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/tree"
)

const host = "127.0.0.1:8191"

// fakePolicy hides the listed paths and grants per-path scopes.
type fakePolicy struct {
	hidden map[string]bool
	scopes map[string]identity.ScopeSet
}

func (p fakePolicy) Visible(_ *authn.Caller, n access.Node) bool {
	return !p.hidden[strings.Join(n.Path, "/")]
}

func (p fakePolicy) AllowedScopes(_ *authn.Caller, n access.Node) identity.ScopeSet {
	if s, ok := p.scopes[strings.Join(n.Path, "/")]; ok {
		return s
	}
	return identity.NewScopeSet(identity.AllScopes()...)
}

type server struct {
	e      *echo.Echo
	caller *authn.Caller
}

// newServer mounts the handlers on /api/v1 of a fresh Echo with a minimal
// error handler in the shape of the real one: {"detail": ...}.
func newServer(t *testing.T, root tree.Node, policy access.Policy) *server {
	t.Helper()
	s := &server{e: echo.New(), caller: &authn.Caller{Kind: authn.SingleUser, Scopes: authn.SingleUserScopes()}}
	s.e.HTTPErrorHandler = func(err error, c echo.Context) {
		var he *httperr.Error
		if !errors.As(err, &he) {
			var ee *echo.HTTPError
			if errors.As(err, &ee) {
				he = httperr.New(ee.Code, http.StatusText(ee.Code))
			} else {
				t.Errorf("unexpected internal error: %v", err)
				he = httperr.New(500, "Internal server error")
			}
		}
		for k, vs := range he.Header {
			for _, v := range vs {
				c.Response().Header().Add(k, v)
			}
		}
		_ = c.JSON(he.Status, map[string]any{"detail": he.Detail})
	}
	s.e.Use(s.asCaller)
	h := &Handlers{Root: root, Policy: policy}
	h.Register(s.e.Group("/api/v1"))
	return s
}

// asCaller is the authentication middleware's part: it puts the test's
// caller in the request context.
func (s *server) asCaller(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(authn.WithCaller(r.Context(), s.caller)))
		return next(c)
	}
}

func (s *server) get(t *testing.T, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://"+host+target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.e.ServeHTTP(rec, req)
	return rec
}

// capture returns the body of a recorded Tiled exchange (copied into
// testdata from the project's tiled-captures).
func capture(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("%s: no body", name)
	}
	return strings.TrimSuffix(body, "\n") // the recorder's own newline
}

func body(rec *httptest.ResponseRecorder) string { return strings.TrimSuffix(rec.Body.String(), "\n") }

// TestCapturedResponses replays exchanges recorded from Tiled serving its
// generated_minimal tree, which Demo is.
func TestCapturedResponses(t *testing.T) {
	s := newServer(t, tree.Demo(), nil)
	cases := []struct {
		target, accept, capture, contentType string
		status                               int
	}{
		{"/api/v1/metadata/", "", "single-metadata-header-key.txt", "application/json", 200},
		{"/api/v1/array/full/A?slice=0:2,0:3", "application/json", "single-array-json.txt", "application/json", 200},
		{"/api/v1/table/full/C", "text/csv", "single-table-csv.txt", "text/csv; charset=utf-8", 200},
		{"/api/v1/metadata/no/such/thing", "", "single-notfound.txt", "application/json", 404},
	}
	for _, tc := range cases {
		var rec *httptest.ResponseRecorder
		if tc.accept != "" {
			rec = s.get(t, tc.target, "Accept", tc.accept)
		} else {
			rec = s.get(t, tc.target)
		}
		got := rec.Body.String()
		if tc.status != 200 {
			got = body(rec) // the test's error handler ends JSON with a newline
		}
		if rec.Code != tc.status || got != capture(t, tc.capture) {
			t.Errorf("%s: %d\n got %q\nwant %q", tc.target, rec.Code, got, capture(t, tc.capture))
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("%s: content type %q", tc.target, ct)
		}
		if tc.status == 200 && rec.Header().Get("ETag") == "" {
			t.Errorf("%s: no ETag", tc.target)
		}
	}
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	return v
}

// rawAt returns the JSON text at a path of object keys and list indices,
// as the server wrote it (key order and escaping kept).
func rawAt(t *testing.T, rec *httptest.ResponseRecorder, path ...any) string {
	t.Helper()
	raw := json.RawMessage(rec.Body.Bytes())
	for _, p := range path {
		switch k := p.(type) {
		case string:
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			raw = m[k]
		case int:
			var l []json.RawMessage
			if err := json.Unmarshal(raw, &l); err != nil {
				t.Fatal(err)
			}
			raw = l[k]
		}
	}
	return string(raw)
}

// at digs into decoded JSON by keys and list indices.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestMetadataResources(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	base := "http://" + host + "/api/v1"
	cases := []struct {
		target string
		checks map[string]any // JSON path (dot-separated) to expected JSON
	}{
		{"/api/v1/metadata/A", map[string]any{
			"data.id": `"A"`, "data.attributes.ancestors": `[]`, "data.attributes.structure_family": `"array"`,
			"data.attributes.specs": `[]`, "data.attributes.metadata": `{}`, "data.attributes.sorting": `null`,
			"data.attributes.structure": `{"data_type":{"endianness":"little","kind":"f","itemsize":8,"dt_units":null},"chunks":[[100],[100]],"shape":[100,100],"dims":null,"resizable":false}`,
			"data.links":                `{"self":"` + base + `/metadata/A","full":"` + base + `/array/full/A","block":"` + base + `/array/block/A?block={0},{1}"}`,
			"data.meta":                 `null`, "meta": `{}`,
		}},
		{"/api/v1/metadata/C", map[string]any{
			"data.attributes.specs":                 `[{"name":"dataframe","version":null}]`,
			"data.attributes.structure.npartitions": `3`, "data.attributes.structure.columns": `["x","y","z"]`,
			"data.attributes.structure.resizable": `false`,
			"data.links":                          `{"self":"` + base + `/metadata/C","full":"` + base + `/table/full/C","partition":"` + base + `/table/partition/C?partition={index}"}`,
		}},
		{"/api/v1/metadata/D", map[string]any{
			"data.attributes.structure.count":                                          `2`,
			"data.attributes.structure.contents.temperature.attributes.ancestors":      `["D"]`,
			"data.attributes.structure.contents.temperature.attributes.specs":          `[{"name":"xarray_data_var","version":null}]`,
			"data.attributes.structure.contents.time.attributes.structure.dims":        `["time"]`,
			"data.attributes.structure.contents.time.links.self":                       `"` + base + `/metadata/D/time"`,
			"data.attributes.metadata":                                                 `{"attrs":{}}`,
			"data.attributes.sorting":                                                  `[{"key":"_","direction":1}]`,
			"data.attributes.structure.contents.temperature.attributes.metadata.attrs": `{}`,
		}},
		{"/api/v1/metadata/D?max_depth=0", map[string]any{"data.attributes.structure": `{"contents":null,"count":2}`}},
		{"/api/v1/metadata/nested/deeper?root_path=true&omit_links=1", map[string]any{
			"data.id": `"deeper"`, "data.attributes.ancestors": `["nested"]`, "data.links": `null`,
			"data.attributes.metadata": `{"level":2,"note":"a container inside a container"}`, "meta": `{"root_path":"/"}`,
		}},
		{"/api/v1/metadata/nested?fields=metadata&select_metadata=level", map[string]any{
			"data.attributes.metadata": `{"selected":1}`, "data.attributes.structure": `null`, "data.attributes.specs": `null`,
			"data.attributes.structure_family": `"container"`,
		}},
		{"/api/v1/metadata/nested%2Fgrid", map[string]any{"data.attributes.structure.shape": `[3,4]`,
			"data.attributes.structure.data_type": `{"endianness":"little","kind":"i","itemsize":4,"dt_units":null}`}},
		{"/api/v1/metadata/nested/flags", map[string]any{
			"data.attributes.structure.data_type.endianness": `"not_applicable"`, "data.attributes.metadata": `{"unit":"boolean"}`}},
	}
	for _, tc := range cases {
		rec := s.get(t, tc.target)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", tc.target, rec.Code, rec.Body.String())
		}
		doc := decode(t, rec)
		for path, want := range tc.checks {
			var keys []any
			for _, k := range strings.Split(path, ".") {
				keys = append(keys, k)
			}
			got, _ := json.Marshal(at(doc, keys...))
			var w any
			_ = json.Unmarshal([]byte(want.(string)), &w)
			wantJSON, _ := json.Marshal(w)
			if string(got) != string(wantJSON) {
				t.Errorf("%s: %s = %s, want %s", tc.target, path, got, wantJSON)
			}
		}
	}
	// The table structure carries an Arrow schema the client can decode.
	doc := decode(t, s.get(t, "/api/v1/metadata/C"))
	schema, _ := at(doc, "data", "attributes", "structure", "arrow_schema").(string)
	if !strings.HasPrefix(schema, "data:application/vnd.apache.arrow.file;base64,") {
		t.Errorf("arrow_schema %q", schema)
	}
}

func TestSearch(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	base := "http://" + host + "/api/v1/search/"
	ids := func(doc map[string]any) string {
		var out []string
		for _, d := range at(doc, "data").([]any) {
			out = append(out, at(d, "id").(string))
		}
		return strings.Join(out, ",")
	}
	rec := s.get(t, "/api/v1/search/")
	doc := decode(t, rec)
	if ids(doc) != "A,B,C,D,nested" || at(doc, "meta", "count") != 5.0 {
		t.Fatalf("root search: %v", doc)
	}
	links := rawAt(t, rec, "links")
	if want := `{"self":"` + base + `?page[limit]=100","first":"` + base + `?page[limit]=100","last":"` + base +
		`?page[offset]=0&page[limit]=100","next":null,"prev":null}`; string(links) != want {
		t.Errorf("links\n got %s\nwant %s", links, want)
	}
	if at(doc, "error") != nil || at(doc, "data", 3, "attributes", "structure", "contents", "time") == nil {
		t.Errorf("D is inlined in search results too: %v", at(doc, "data", 3))
	}

	rec = s.get(t, "/api/v1/search/?page[offset]=1&page[limit]=2")
	doc = decode(t, rec)
	links = rawAt(t, rec, "links")
	if ids(doc) != "B,C" || !strings.Contains(string(links), `"next":"`+base+`?page[offset]=3&page[limit]=2"`) ||
		!strings.Contains(string(links), `"self":"`+base+`?page[offset]=1&page[limit]=2"`) ||
		!strings.Contains(string(links), `"prev":"`+base+`?page[offset]=0&page[limit]=2"`) ||
		!strings.Contains(string(links), `"last":"`+base+`?page[offset]=4&page[limit]=2"`) {
		t.Errorf("page 2: %s %s", ids(doc), links)
	}

	// What the Python client sends to iterate keys and to take len().
	first := rawAt(t, s.get(t, "/api/v1/search/nested?fields="), "data", 0)
	if want := `{"id":"flags","attributes":{"ancestors":["nested"],"structure_family":null,"specs":null,"metadata":null,"structure":null,"access_blob":null,"sorting":null,"data_sources":null},"links":{"self":"http://` + host + `/api/v1/metadata/nested/flags"},"meta":null}`; string(first) != want {
		t.Errorf("keys only:\n got %s\nwant %s", first, want)
	}
	doc = decode(t, s.get(t, "/api/v1/search/nested?fields=count"))
	if len(at(doc, "data").([]any)) != 0 || at(doc, "meta", "count") != 3.0 {
		t.Errorf("count only: %v", doc)
	}

	// Sorting and queries, in the encodings the client uses.
	for target, want := range map[string]string{
		"/api/v1/search/?sort=-_":                                                               "nested,D,C,B,A",
		"/api/v1/search/nested?sort=level&sort=":                                                "deeper,flags,grid",
		"/api/v1/search/nested?sort=-level":                                                     "grid,flags,deeper",
		"/api/v1/search/?filter[lookup][condition][key]=C":                                      "C",
		"/api/v1/search/?filter[lookup][condition][key]=C&filter[lookup][condition][key]=D":     "",
		`/api/v1/search/?filter[eq][condition][key]=thing&filter[eq][condition][value]="stuff"`: "",
		`/api/v1/search/nested?filter[comparison][condition][operator]=ge&filter[comparison][condition][key]=level&filter[comparison][condition][value]=2`: "deeper",
		`/api/v1/search/?filter[specs][condition][include]=["xarray_dataset"]&filter[specs][condition][exclude]=[]`:                                        "D",
		"/api/v1/search/?filter[structure_family][condition][value]=table":                                                                                 "C",
		"/api/v1/search/nested?filter[fulltext][condition][text]=CONTAINER":                                                                                "deeper",
		"/api/v1/search/nested?filter[keypresent][condition][key]=unit&filter[keypresent][condition][exists]=false":                                        "grid,deeper",
		`/api/v1/search/?filter[keys_filter][condition][keys]=["A","nested","zz"]`:                                                                         "A,nested",
		`/api/v1/search/nested?filter[regex][condition][key]=note&filter[regex][condition][pattern]=^A&filter[regex][condition][case_sensitive]=false`:     "deeper",
		`/api/v1/search/D?filter[in][condition][key]=attrs&filter[in][condition][value]=[{}]`:                                                              "temperature,time",
		"/api/v1/search/?filter[unknown][condition][x]=1":                                                                                                  "A,B,C,D,nested",
	} {
		rec := s.get(t, strings.ReplaceAll(target, `"`, "%22"))
		if rec.Code != 200 {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body.String())
			continue
		}
		got := ""
		if d := decode(t, rec); at(d, "data") != nil && len(at(d, "data").([]any)) > 0 {
			got = ids(d)
		}
		if got != want {
			t.Errorf("%s: %q, want %q", target, got, want)
		}
	}
}

func TestAccessControl(t *testing.T) {
	policy := fakePolicy{
		hidden: map[string]bool{"nested/deeper": true, "B": true},
		scopes: map[string]identity.ScopeSet{
			"A": identity.NewScopeSet(identity.ScopeReadMetadata),
			"C": identity.NewScopeSet(),
		},
	}
	s := newServer(t, tree.ExtendedDemo(), policy)
	for _, tc := range []struct {
		target string
		status int
		detail string
	}{
		{"/api/v1/metadata/nested/deeper", 404, "No such entry: ['nested', 'deeper']"},
		{"/api/v1/metadata/nested/deeper/values", 404, "No such entry: ['nested', 'deeper', 'values']"},
		{"/api/v1/array/full/B", 404, "No such entry: ['B']"},
		// Visible, but the policy grants no read:data here.
		{"/api/v1/array/full/A", 403, "Not enough permissions to perform this action on this node. Requires scopes ['read:data']. Principal had scopes ['read:metadata'] on this node."},
		// Without read:metadata a node does not exist for the caller.
		{"/api/v1/metadata/C", 404, "No such entry: ['C']"},
	} {
		rec := s.get(t, tc.target)
		if rec.Code != tc.status || at(decode(t, rec), "detail") != tc.detail {
			t.Errorf("%s: %d %s", tc.target, rec.Code, rec.Body.String())
		}
	}
	doc := decode(t, s.get(t, "/api/v1/search/nested"))
	if len(at(doc, "data").([]any)) != 2 || at(doc, "meta", "count") != 2.0 {
		t.Errorf("hidden child listed: %v", doc)
	}
	doc = decode(t, s.get(t, "/api/v1/metadata/"))
	if at(doc, "data", "attributes", "structure", "count") != 4.0 {
		t.Errorf("root count includes hidden: %v", at(doc, "data", "attributes", "structure"))
	}
	rec := s.get(t, "/api/v1/container/full/nested", "Accept", "application/json")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "deeper") {
		t.Errorf("container export shows hidden child: %s", rec.Body.String())
	}

	// Scopes of the caller come first: Tiled's 401 from check_scopes.
	s.caller = &authn.Caller{Kind: authn.Anonymous, Scopes: identity.NewScopeSet(identity.ScopeReadMetadata)}
	rec = s.get(t, "/api/v1/array/full/A")
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "Not enough permissions. Requires scopes ['read:data']") {
		t.Errorf("missing scope: %d %s", rec.Code, rec.Body.String())
	}
	s.caller = &authn.Caller{Kind: authn.Anonymous, Scopes: identity.ScopeSet{}}
	if rec := s.get(t, "/api/v1/metadata/"); rec.Code != 401 {
		t.Errorf("metadata without read:metadata: %d", rec.Code)
	}
}

func TestErrors(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	slicePattern := tree.SlicePattern
	cases := []struct {
		target, accept string
		status         int
		detail         string // JSON
	}{
		{"/api/v1/array/full/C", "", 404, `"The node at C has structure family StructureFamily.table and this endpoint is compatible with structure families {<StructureFamily.array: 'array'>, <StructureFamily.sparse: 'sparse'>}"`},
		{"/api/v1/search/A", "", 404, `"The node at A has structure family StructureFamily.array and this endpoint is compatible with structure families {<StructureFamily.container: 'container'>}"`},
		{"/api/v1/table/full/nested", "", 404, `"The node at nested has structure family StructureFamily.container and this endpoint is compatible with structure families {<StructureFamily.table: 'table'>}"`},
		{"/api/v1/array/full/A?slice=a", "", 422, `[{"type":"string_pattern_mismatch","loc":["query","slice"],"msg":"String should match pattern '` + jsonEscape(slicePattern) + `'","input":"a","ctx":{"pattern":"` + jsonEscape(slicePattern) + `"}}]`},
		{"/api/v1/array/full/A?slice=,", "", 400, `"Invalid slice part: \"\""`},
		{"/api/v1/array/full/A?slice=100", "", 400, `"Block index out of range"`},
		{"/api/v1/array/full/A?slice=1,2,3", "", 400, `"Block index out of range"`},
		{"/api/v1/array/full/A?slice=::0", "", 400, `"slice step cannot be zero"`},
		{"/api/v1/array/full/A?slice=0:2&expected_shape=2,99", "", 422, `"The shape expected from the structure (2, 99) does not match the actual data shape (2, 100)"`},
		{"/api/v1/array/full/A?expected_shape=x", "", 422, `[{"type":"string_pattern_mismatch","loc":["query","expected_shape"],"msg":"String should match pattern '^[0-9]+(,[0-9]+)*$|^scalar$'","input":"x","ctx":{"pattern":"^[0-9]+(,[0-9]+)*$|^scalar$"}}]`},
		{"/api/v1/array/full/A", "image/tiff", 406, `"None of the media types requested by the client are supported. Supported: application/octet-stream, application/json, text/csv, text/x-comma-separated-values, text/plain, application/vnd.ms-excel, image/png, text/html. Requested: image/tiff."`},
		{"/api/v1/array/full/B?format=csv", "", 406, `"The shape of this data (100, 100, 100) is incompatible with the requested format (text/csv). Slice it or choose a different format."`},
		{"/api/v1/array/block/A", "", 422, `[{"type":"missing","loc":["query","block"],"msg":"Field required","input":null}]`},
		{"/api/v1/array/block/A?block=", "", 422, `"Requested scalar but shape is (100, 100)"`},
		{"/api/v1/array/block/A?block=0", "", 422, `"Block parameter must have 2 comma-separated parameters, corresponding to the dimensions of this 2-dimensional array."`},
		{"/api/v1/array/block/A?block=0,1", "", 422, `"Block parameter does not match the chunks dimensionality. Expected 2 comma-separated integers, that index ((100,), (100,)), got (0, 1)."`},
		{"/api/v1/array/block/A?block=0,0&slice=5,5,5", "", 422, `"Slice parameter (5, 5, 5) is not valid for the shape (100, 100) that would result from the requested block."`},
		{"/api/v1/array/block/A?block=0,0&slice=0:2&expected_shape=scalar", "", 422, `"The expected shape () does not match the actual shape (2, 100) that would result from the requested block and slice."`},
		{"/api/v1/table/partition/C", "", 422, `[{"type":"missing","loc":["query","partition"],"msg":"Field required","input":null}]`},
		{"/api/v1/table/partition/C?partition=x", "", 422, `[{"type":"int_parsing","loc":["query","partition"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"x"}]`},
		{"/api/v1/table/partition/C?partition=3", "", 400, `"Partition out of range"`},
		{"/api/v1/table/partition/C?partition=0&column=x&field=y", "", 400, `"Cannot accept both 'column' and 'field' query parameters in the same /table/partition request. Include these query values using only the 'column' parameter."`},
		{"/api/v1/table/full/C?column=q", "", 400, `"No such field q."`},
		{"/api/v1/search/?page[limit]=301", "", 422, `[{"type":"less_than_equal","loc":["query","page[limit]"],"msg":"Input should be less than or equal to 300","input":"301","ctx":{"le":300}}]`},
		{"/api/v1/search/?page[offset]=-1", "", 422, `[{"type":"greater_than_equal","loc":["query","page[offset]"],"msg":"Input should be greater than or equal to 0","input":"-1","ctx":{"ge":0}}]`},
		{"/api/v1/search/?page[offset]=1&page[cursor]=1", "", 400, `"Cannot specify both page[cursor] and page[offset]"`},
		{"/api/v1/search/?fields=bogus", "", 422, `[{"type":"enum","loc":["query","fields",0],"msg":"Input should be 'metadata', 'structure_family', 'structure', 'count', 'sorting', 'specs', 'data_sources', '' or 'access_blob'","input":"bogus","ctx":{"expected":"'metadata', 'structure_family', 'structure', 'count', 'sorting', 'specs', 'data_sources', '' or 'access_blob'"}}]`},
		{"/api/v1/search/?sort=a&sort=-a", "", 400, `"Duplicate sorting key: a"`},
		{"/api/v1/search/?sort=-&sort=a", "", 400, `"Default sorting (empty string) must be the last item in the sort list"`},
		{"/api/v1/search/?sort=a%20b", "", 422, `[{"type":"string_pattern_mismatch","loc":["query","sort",0],"msg":"String should match pattern '^(?:[+-][a-zA-Z0-9_.]*|[a-zA-Z0-9_.]+)?$'","input":"a b","ctx":{"pattern":"^(?:[+-][a-zA-Z0-9_.]*|[a-zA-Z0-9_.]+)?$"}}]`},
		{"/api/v1/search/?omit_links=maybe", "", 422, `[{"type":"bool_parsing","loc":["query","omit_links"],"msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"}]`},
		{"/api/v1/search/?filter[eq][condition][key]=a&filter[eq][condition][value]={", "", 400, `"Query \"eq\": field \"value\" is not valid JSON: unexpected end of JSON input"`},
		{"/api/v1/search/?filter[like][condition][key]=a&filter[like][condition][pattern]=x", "", 400, `"Query \"like\" is not supported by this server."`},
		{"/api/v1/metadata/?select_metadata=a[", "", 400, `"Malformed 'select_metadata' parameter raised JMESPathError: SyntaxError: Expected TOKStar, received: TOKEOF"`},
		{"/api/v1/metadata/?max_depth=6", "", 422, `[{"type":"less_than_equal","loc":["query","max_depth"],"msg":"Input should be less than or equal to 5","input":"6","ctx":{"le":5}}]`},
		{"/api/v1/container/full/?field=zz", "application/json", 400, `"No such field zz."`},
	}
	for _, tc := range cases {
		target := strings.ReplaceAll(strings.ReplaceAll(tc.target, "{", "%7B"), "|", "%7C")
		var rec *httptest.ResponseRecorder
		if tc.accept != "" {
			rec = s.get(t, target, "Accept", tc.accept)
		} else {
			rec = s.get(t, target)
		}
		detail, _ := json.Marshal(at(decode(t, rec), "detail"))
		var want any
		if err := json.Unmarshal([]byte(tc.detail), &want); err != nil {
			t.Fatalf("%s: bad expectation: %v", tc.target, err)
		}
		wantJSON, _ := json.Marshal(want)
		if rec.Code != tc.status || string(detail) != string(wantJSON) {
			t.Errorf("%s: %d %s\nwant %d %s", tc.target, rec.Code, detail, tc.status, wantJSON)
		}
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func TestDataRoutes(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	rec := s.get(t, "/api/v1/array/block/A?block=0,0&slice=0:2&expected_shape=2,100")
	if rec.Code != 200 || rec.Body.Len() != 1600 || rec.Header().Get("Content-Type") != "application/octet-stream" {
		t.Errorf("block: %d %d %s", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Type"))
	}
	rec = s.get(t, "/api/v1/array/full/nested/grid?slice=::-1,1&format=json")
	if body(rec) != "[9,5,1]" {
		t.Errorf("grid json: %s", rec.Body.String())
	}
	rec = s.get(t, "/api/v1/array/full/nested/flags?expected_shape=5", "Accept", "text/csv")
	if body(rec) != "True\nFalse\nTrue\nTrue\nFalse" || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Errorf("flags csv: %q", rec.Body.String())
	}
	rec = s.get(t, "/api/v1/array/full/nested/grid?slice=1,2&expected_shape=scalar&filename=cell.bin")
	if !bytes.Equal(rec.Body.Bytes(), tree.Int32Bytes(6)) || rec.Header().Get("Content-Disposition") != `attachment; filename="cell.bin"` {
		t.Errorf("scalar: %v %v", rec.Body.Bytes(), rec.Header())
	}

	// The Python client reads partitions as Arrow files.
	rec = s.get(t, "/api/v1/table/partition/C?partition=1&column=y", "Accept", "application/vnd.apache.arrow.file")
	r, err := ipc.NewFileReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("arrow: %v (%d %s)", err, rec.Code, rec.Body.String())
	}
	batch, err := r.RecordBatch(0)
	if err != nil || batch.NumRows() != 33 || batch.NumCols() != 1 || batch.ColumnName(0) != "y" {
		t.Errorf("partition 1: %v %v", batch, err)
	}
	r.Close()
	rec = s.get(t, "/api/v1/table/full/C?format=json&column=z")
	if !strings.HasPrefix(body(rec), `{"z":[3.0,3.0,`) {
		t.Errorf("table json: %.40s", rec.Body.String())
	}
	rec = s.get(t, "/api/v1/container/full/nested/deeper")
	if body(rec) != `{"contents":{"values":{"contents":{},"metadata":{}}},"metadata":{"level":2,"note":"a container inside a container"}}` {
		t.Errorf("container full: %s", rec.Body.String())
	}

	// ETags let clients revalidate cheaply.
	rec = s.get(t, "/api/v1/metadata/A")
	etag := rec.Header().Get("ETag")
	if again := s.get(t, "/api/v1/metadata/A", "If-None-Match", etag); again.Code != 304 || again.Body.Len() != 0 {
		t.Errorf("metadata revalidation: %d", again.Code)
	}
	rec = s.get(t, "/api/v1/array/full/A?slice=0", "Accept", "application/json")
	if again := s.get(t, "/api/v1/array/full/A?slice=0", "Accept", "application/json", "If-None-Match", rec.Header().Get("ETag")); again.Code != 304 {
		t.Errorf("data revalidation: %d", again.Code)
	}
	if other := s.get(t, "/api/v1/array/full/A?slice=0", "Accept", "text/csv"); other.Header().Get("ETag") == rec.Header().Get("ETag") {
		t.Error("the ETag must depend on the media type")
	}
}

func TestResponseLimit(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	s.e = echo.New()
	h := &Handlers{Root: tree.ExtendedDemo(), MaxResponseBytes: 1000}
	s.e.Use(s.asCaller)
	h.Register(s.e.Group("/api/v1"))
	var got error
	s.e.HTTPErrorHandler = func(err error, c echo.Context) { got = err; _ = c.NoContent(400) }
	s.get(t, "/api/v1/array/full/B")
	var he *httperr.Error
	if !errors.As(got, &he) || he.Status != 400 || he.Detail != "Response would exceed 1000. Use slicing ('?slice=...') to request smaller chunks." {
		t.Errorf("limit: %v", got)
	}
	got = nil
	if rec := s.get(t, "/api/v1/array/full/B?slice=0,0,0:10"); rec.Code != 200 || got != nil {
		t.Errorf("small slice: %d %v", rec.Code, got)
	}
	s.get(t, "/api/v1/table/full/C")
	if !errors.As(got, &he) || he.Detail != "Response would exceed 1000. Select a subset of the columns to request a smaller chunks." {
		t.Errorf("table limit: %v", got)
	}
}

func TestHeadAndDataSourceFailure(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	req := httptest.NewRequest(http.MethodHead, "http://"+host+"/api/v1/array/full/A?slice=0", nil)
	rec := httptest.NewRecorder()
	s.e.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("ETag") == "" {
		t.Errorf("HEAD: %d %v", rec.Code, rec.Header())
	}

	// A served file that disappears is the server's problem: an internal
	// error for the error handler, logged here with the node's path.
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/gone.csv", []byte("a\n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := tree.FromDirectory(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir + "/gone.csv"); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := echo.New()
	var got error
	e.HTTPErrorHandler = func(err error, c echo.Context) { got = err; _ = c.NoContent(500) }
	e.Use(s.asCaller)
	h := &Handlers{Root: root, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	h.Register(e.Group("/api/v1"))
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/table/full/gone", nil))
	var he *httperr.Error
	if !errors.Is(got, os.ErrNotExist) || errors.As(got, &he) {
		t.Errorf("error %v", got)
	}
	if !strings.Contains(logs.String(), `msg="reading data failed" path=gone`) {
		t.Errorf("log %q", logs.String())
	}
}
