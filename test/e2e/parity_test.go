package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/parquet-go/parquet-go"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/xuri/excelize/v2"
)

// TestTiledParity replays, against `serve demo` (Tiled's generated_minimal
// tree), the requests of issue 14 where this server answered differently
// from Tiled 0.2.16, and checks Tiled's answers, decoding every body.
func TestTiledParity(t *testing.T) {
	t.Parallel()
	key := randomHex(t, 32)
	s := startServer(t, []string{"demo", "--api-key", key})
	auth := apikey(key)

	t.Run("table columns are arrays", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		md, ok := c.getObject("/api/v1/metadata/C/x", auth)
		if !ok {
			return
		}
		expectAt(t, md, "x", "data", "id")
		expectAt(t, md, []string{"C"}, "data", "attributes", "ancestors")
		expectAt(t, md, "array", "data", "attributes", "structure_family")
		expectAt(t, md, []int{100}, "data", "attributes", "structure", "shape")
		expectAt(t, md, s.base+"/api/v1/array/full/C/x", "data", "links", "full")
		if b, ok := c.getBytes("/api/v1/array/full/C/x", auth, "application/octet-stream"); ok {
			expectFloats(t, b, 100, func(int) float64 { return 1 })
		}
		if b, ok := c.getBytes("/api/v1/array/block/C/z?block=0&slice=0:3", auth, "application/octet-stream"); ok {
			expectFloats(t, b, 3, func(int) float64 { return 3 })
		}
		expectDetail(t, c.get("/api/v1/metadata/C/nope", auth), http.StatusNotFound, "No such entry: ['C', 'nope']")
	})

	t.Run("partitions as dask divides them", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		for p, rows := range []int{34, 33, 33} {
			b, ok := c.getBytes("/api/v1/table/partition/C?partition="+string(rune('0'+p)), auth, arrowFile)
			if ok {
				expectArrowTable(t, b, []string{"x", "y", "z"}, rows, func(col, _ int) float64 { return float64(col + 1) })
			}
		}
	})

	t.Run("xarray dataset read", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		// What client["D"].read() sends: GET with the fields in the query,
		// POST with them in the body when the URL would be too long.
		get := c.get("/api/v1/container/full/D?format="+arrowFile+"&field=temperature&field=time", auth)
		post := c.do(http.MethodPost, "/api/v1/container/full/D?format="+arrowFile, with(auth, "Content-Type", "application/json"), []byte(`["temperature","time"]`))
		for _, r := range []reply{get, post} {
			if !expectStatus(t, r, http.StatusOK) {
				continue
			}
			expectMediaType(t, r, arrowFile)
			cols := readArrow(t, r.Body)
			if !reflect.DeepEqual(cols, map[string]any{"temperature": []int64{100, 99, 98}, "time": []int64{1, 2, 3}}) {
				t.Errorf("%s: columns %v", r.Method, cols)
			}
		}
		coords := c.get("/api/v1/container/full/D?format=arrow&field=time", auth)
		if expectStatus(t, coords, http.StatusOK) {
			if cols := readArrow(t, coords.Body); !reflect.DeepEqual(cols, map[string]any{"time": []int64{1, 2, 3}}) {
				t.Errorf("coordinates only: %v", cols)
			}
		}
		if v, ok := c.getJSON("/api/v1/container/full/D", with(auth, "Accept", "application/json")); ok {
			expectAt(t, v, map[string]any{"temperature": []int{100, 99, 98}})
		}
		if b, ok := c.getBytes("/api/v1/container/full/D", auth, "text/csv"); ok && string(b) != "temperature\n100\n99\n98\n" {
			t.Errorf("dataset CSV %q", b)
		}
		if b, ok := c.getBytes("/api/v1/container/full/D", auth, "text/html"); ok && !strings.Contains(string(b), "<td>99</td>") {
			t.Errorf("dataset HTML %s", b)
		}
		expectDetail(t, c.get("/api/v1/container/full/D?format=arrow&field=pressure", auth), http.StatusBadRequest, "No such field pressure.")
		r := c.do(http.MethodPost, "/api/v1/container/full/D", with(auth, "Content-Type", "application/json"), []byte(`[]`))
		expectStatus(t, r, http.StatusUnprocessableEntity)
	})

	t.Run("POST forms of the table routes", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		h := with(auth, "Content-Type", "application/json", "Accept", "application/json")
		r := c.do(http.MethodPost, "/api/v1/table/full/C", h, []byte(`["y"]`))
		if expectStatus(t, r, http.StatusOK) {
			var v map[string][]float64
			if err := json.Unmarshal(r.Body, &v); err != nil || len(v) != 1 || len(v["y"]) != 100 || v["y"][0] != 2 {
				t.Errorf("table full: %s", r)
			}
		}
		r = c.do(http.MethodPost, "/api/v1/table/partition/C?partition=2", h, []byte(`["z","x"]`))
		if expectStatus(t, r, http.StatusOK) && !strings.HasPrefix(string(r.Body), `{"z":[3.0,`) {
			t.Errorf("partition: %s", r)
		}
		expectDetail(t, c.do(http.MethodPost, "/api/v1/table/full/C", h, []byte(`["q"]`)), http.StatusBadRequest, "No such field q.")
		expectStatus(t, c.do(http.MethodPost, "/api/v1/table/full/C", h, []byte(`{"column":"x"}`)), http.StatusUnprocessableEntity)
	})

	t.Run("formats", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		if b, ok := c.getBytes("/api/v1/table/full/C?format=xlsx", auth, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"); ok {
			x, err := excelize.OpenReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("xlsx: %v", err)
			}
			rows, _ := x.GetRows("Sheet1")
			if len(rows) != 101 || !reflect.DeepEqual(rows[0], []string{"x", "y", "z"}) || !reflect.DeepEqual(rows[100], []string{"1", "2", "3"}) {
				t.Errorf("xlsx rows: %d, first %v", len(rows), rows[0])
			}
		}
		if b, ok := c.getBytes("/api/v1/table/full/C", auth, "application/x-parquet"); ok {
			pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
			if err != nil || pf.NumRows() != 100 || len(pf.Schema().Fields()) != 3 {
				t.Errorf("parquet: %v", err)
			}
		}
		if b, ok := c.getBytes("/api/v1/table/partition/C?partition=0&column=x", auth, "text/html"); ok &&
			(!strings.HasPrefix(string(b), `<table border="1" class="dataframe">`) || strings.Count(string(b), "<td>1.0</td>") != 34) {
			t.Errorf("table html: %.200s", b)
		}
		if b, ok := c.getBytes("/api/v1/array/full/A?slice=0:10,0:20", auth, "image/png"); ok {
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil || img.Bounds().Dx() != 20 || img.Bounds().Dy() != 10 {
				t.Errorf("png: %v", err)
			}
		}
		if b, ok := c.getBytes("/api/v1/array/full/A?slice=0:2,0:2&format=html", auth, "text/html"); ok && !strings.HasPrefix(string(b), `<html><body><img src="data:image/png;base64,`) {
			t.Errorf("array html: %.80s", b)
		}
		expectStatus(t, c.get("/api/v1/array/full/B?format=html", auth), http.StatusNotAcceptable)

		// The about document lists exactly what is served.
		about, ok := c.getObject("/api/v1/", nil)
		if !ok {
			return
		}
		expectAt(t, about, map[string]any{
			"table":          []string{arrowFile, "application/x-parquet", "text/csv", "text/x-comma-separated-values", "text/plain", "application/vnd.ms-excel", "text/html", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/json", "application/json-seq"},
			"container":      []string{"application/json"},
			"array":          []string{"application/octet-stream", "application/json", "text/csv", "text/x-comma-separated-values", "text/plain", "application/vnd.ms-excel", "image/png", "text/html"},
			"xarray_dataset": []string{arrowFile, "application/x-parquet", "text/csv", "text/comma-separated-values", "text/plain", "text/html", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/json"},
		}, "formats")
		expectAt(t, about, []string{"fulltext", "lookup", "keys_filter", "regex", "eq", "noteq", "comparison", "contains", "in", "notin", "keypresent", "specs", "structure_family"}, "queries")
		for _, q := range []string{"fulltext", "eq", "specs", "structure_family"} {
			expectStatus(t, c.get("/api/v1/search/?filter["+q+"][condition][x]=1", auth), http.StatusOK)
		}
	})

	t.Run("distinct", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		v, ok := c.getObject("/api/v1/distinct/?structure_families=true&specs=true&counts=true&metadata=attrs", auth)
		if !ok {
			return
		}
		expectAt(t, v, map[string]any{
			"metadata": map[string]any{"attrs": []any{map[string]any{"value": map[string]any{}, "count": 1}}},
			"structure_families": []any{
				map[string]any{"value": "array", "count": 2}, map[string]any{"value": "table", "count": 1},
				map[string]any{"value": "container", "count": 2}}, // D, and the demo's own "nested"
			"specs": []any{
				map[string]any{"value": []any{}, "count": 3},
				map[string]any{"value": []any{map[string]any{"name": "dataframe", "version": nil}}, "count": 1},
				map[string]any{"value": []any{map[string]any{"name": "xarray_dataset", "version": nil}}, "count": 1}},
		})
		v, ok = c.getObject("/api/v1/distinct/D?metadata=attrs&filter[specs][condition][include]=[\"xarray_coord\"]&filter[specs][condition][exclude]=[]", auth)
		if ok {
			expectAt(t, v, []any{map[string]any{"value": map[string]any{}, "count": nil}}, "metadata", "attrs")
		}
		expectDetail(t, c.get("/api/v1/distinct/A", auth), http.StatusMethodNotAllowed, "This node does not support distinct.")
	})

	t.Run("select_metadata is JMESPath", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		for expr, want := range map[string]any{
			"{t: thing}":     map[string]any{"t": "stuff"},
			"[thing]":        []string{"stuff"},
			"length(thing)":  5,
			"missing.nested": nil,
		} {
			v, ok := c.getObject("/api/v1/metadata/?fields=metadata&select_metadata="+urlQuery(expr), auth)
			if ok {
				expectAt(t, v, want, "data", "attributes", "metadata", "selected")
			}
		}
		r := c.get("/api/v1/metadata/?select_metadata="+urlQuery("thing["), auth)
		if expectStatus(t, r, http.StatusBadRequest) && !strings.Contains(string(r.Body), "Malformed 'select_metadata' parameter raised JMESPathError") {
			t.Errorf("bad expression: %s", r)
		}
	})

	t.Run("msgpack", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		for _, path := range []string{"/api/v1/metadata/C", "/api/v1/search/?page[limit]=2", "/api/v1/"} {
			r := c.get(path, with(auth, "Accept", "application/x-msgpack"))
			if !expectStatus(t, r, http.StatusOK) {
				continue
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/x-msgpack" {
				t.Errorf("%s: Content-Type %q", path, ct)
			}
			var v map[string]any
			if err := msgpack.Unmarshal(r.Body, &v); err != nil {
				t.Errorf("%s: not msgpack: %v", path, err)
				continue
			}
			j := c.get(path, auth)
			var w map[string]any
			_ = json.Unmarshal(j.Body, &w)
			if vj, _ := json.Marshal(v); string(vj) != string(mustJSON(w)) {
				t.Errorf("%s: msgpack and JSON differ:\n%s\n%s", path, vj, mustJSON(w))
			}
		}
	})

	t.Run("gzip", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		r := c.get("/api/v1/table/full/C", with(auth, "Accept", "text/csv", "Accept-Encoding", "gzip, deflate"))
		if !expectStatus(t, r, http.StatusOK) {
			return
		}
		if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("headers %v", r.Header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if want := loadCapture(t, "single-table-csv.txt").rbody; !bytes.Equal(plain, want) {
			t.Errorf("gunzipped body differs from Tiled's CSV")
		}
		// Below 1000 bytes, as Tiled, nothing is compressed.
		small := c.get("/api/v1/array/full/A?slice=0:2,0:3", with(auth, "Accept", "application/json", "Accept-Encoding", "gzip"))
		if small.Header.Get("Content-Encoding") != "" || string(small.Body) != "[[1.0,1.0,1.0],[1.0,1.0,1.0]]" {
			t.Errorf("small body: %v %s", small.Header, small.Body)
		}
	})

	t.Run("routing", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		r := c.do(http.MethodDelete, "/api/v1/", nil, nil)
		if expectDetail(t, r, http.StatusMethodNotAllowed, "Method Not Allowed"); r.Header.Get("Allow") != "GET" {
			t.Errorf("Allow %q", r.Header.Get("Allow"))
		}
		for from, to := range map[string]string{
			"/api/v1/metadata":           "/api/v1/metadata/",
			"/api/v1/search?page[limit]": "/api/v1/search/?page[limit]",
			"/api/v1/array/full":         "/api/v1/array/full/",
			"/api/v1/auth/whoami/":       "",
		} {
			r := c.get(from, auth)
			if to == "" {
				expectStatus(t, r, http.StatusNotFound) // single-user mode has no auth routes
				continue
			}
			if expectStatus(t, r, http.StatusTemporaryRedirect) && r.Header.Get("Location") != s.base+to {
				t.Errorf("%s: Location %q, want %s", from, r.Header.Get("Location"), s.base+to)
			}
		}
		r = c.get("/healthz", nil)
		if expectStatus(t, r, http.StatusOK) && string(r.Body) != `{"status":"ready"}` {
			t.Errorf("healthz %s", r.Body)
		}
		expectDetail(t, c.get("/api/v1/metadata/", with(auth, "User-Agent", "python-tiled/0.1.0a100")), http.StatusBadRequest,
			"Python Tiled client reports version 0.1.0a100. Version 0.1.0a104 or higher is needed to communicate with this Tiled server.")
		for _, ua := range []string{"python-tiled/0.1.0a104", "python-tiled/0.1.0.dev3", "python-tiled/0.2.16", "python-tiled/not a version"} {
			expectStatus(t, c.get("/api/v1/metadata/", with(auth, "User-Agent", ua)), http.StatusOK)
		}
		md := c.get("/api/v1/metadata/A", auth)
		etag := md.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag on metadata")
		}
		expectStatus(t, c.get("/api/v1/metadata/A", with(auth, "If-None-Match", etag)), http.StatusNotModified)
	})

	t.Run("writes to a read-only tree", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		r := c.do(http.MethodPost, "/api/v1/metadata/", hdr("Content-Type", "application/json"), []byte(`{}`))
		expectDetail(t, r, http.StatusUnauthorized, "Not enough permissions. Requires scopes ['write:metadata', 'create:node']. Request had scopes []")
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer scope="write:metadata create:node"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
		for _, tc := range []struct {
			method, path, detail string
			status               int
		}{
			{http.MethodDelete, "/api/v1/metadata/A", "This node does not support deletion.", 405},
			{http.MethodPut, "/api/v1/metadata/A", "This node does not support update of metadata.", 405},
			{http.MethodPatch, "/api/v1/metadata/D", "This node does not support update of metadata.", 405},
			{http.MethodPut, "/api/v1/array/full/A", "This node cannot accept array data.", 405},
			{http.MethodPut, "/api/v1/table/full/C", "This node does not support writing.", 405},
			{http.MethodDelete, "/api/v1/metadata/nope", "No such entry: ['nope']", 404},
		} {
			expectDetail(t, c.do(tc.method, tc.path, with(auth, "Content-Type", "application/json"), []byte(`{}`)), tc.status, tc.detail)
		}
	})
}

// TestTiledParityMultiUser: the multi-user differences of issue 14.
func TestTiledParityMultiUser(t *testing.T) {
	t.Parallel()
	s := startMU(t, muConfig(newBackend(t, "sqlite")))
	c := s.client(t)

	r := c.get("/api/v1/metadata/", apikey(strings.Repeat("ab", 36)))
	expectDetail(t, r, http.StatusUnauthorized, msgInvalidAPIKey)
	if r.Header.Get("X-Tiled-Root") != s.base+"/api/v1" || r.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("headers %v", r.Header)
	}
	for path, allow := range map[string]string{"/api/v1/": "GET", "/api/v1/auth/whoami": "GET", "/api/v1/auth/session/refresh": "POST"} {
		r := c.do(http.MethodDelete, path, nil, nil)
		if expectStatus(t, r, http.StatusMethodNotAllowed) && r.Header.Get("Allow") != allow {
			t.Errorf("%s: Allow %q, want %q", path, r.Header.Get("Allow"), allow)
		}
	}
	if r := c.get("/api/v1/metadata", nil); expectStatus(t, r, http.StatusTemporaryRedirect) && r.Header.Get("Location") != s.base+"/api/v1/metadata/" {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}

	tp := mustLogin(t, c, "alice")
	me := whoami(t, c, bearer(tp.Access))
	naive := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`)
	for _, path := range [][]any{{"identities", 0, "latest_login"}, {"sessions", 0, "expiration_time"}, {"latest_activity"}} {
		if v, _ := at(me, path...); !naive.MatchString(str(v)) {
			t.Errorf("%v = %v, want Tiled's naive ISO time", path, v)
		}
	}
	key := c.postJSON("/api/v1/auth/apikey", bearer(tp.Access), map[string]any{"scopes": []string{"read:metadata"}, "expires_in": 3600})
	if expectStatus(t, key, http.StatusOK) {
		// Tiled's create answer keeps the offset; reading the key back does not.
		if v, _ := at(object(t, key), "expiration_time"); !strings.HasSuffix(str(v), "+00:00") {
			t.Errorf("created key expiration_time %v", v)
		}
		secret, _ := at(object(t, key), "secret")
		info, ok := c.getObject("/api/v1/auth/apikey", apikey(str(secret)))
		if v, _ := at(info, "expiration_time"); ok && !naive.MatchString(str(v)) {
			t.Errorf("key info expiration_time %v", v)
		}
	}
	// Anonymous writes: the scope 401, with the API root.
	r = c.do(http.MethodPut, "/api/v1/metadata/A", hdr("Content-Type", "application/json"), []byte(`{}`))
	expectDetail(t, r, http.StatusUnauthorized, "Not enough permissions. Requires scopes ['write:metadata']. Request had scopes []")
	if r.Header.Get("WWW-Authenticate") != `Bearer scope="write:metadata"` || r.Header.Get("X-Tiled-Root") != s.base+"/api/v1" {
		t.Errorf("headers %v", r.Header)
	}
}

// readArrow reads an Arrow IPC file's int64 columns by name.
func readArrow(t *testing.T, b []byte) map[string]any {
	t.Helper()
	fr, err := ipc.NewFileReader(bytes.NewReader(b))
	if err != nil {
		t.Errorf("not an Arrow IPC file: %v", err)
		return nil
	}
	defer fr.Close()
	out := map[string]any{}
	for i := 0; i < fr.NumRecords(); i++ {
		rec, err := fr.RecordBatch(i)
		if err != nil {
			t.Errorf("record %d: %v", i, err)
			return nil
		}
		for j, col := range rec.Columns() {
			if ints, ok := col.(*array.Int64); ok {
				out[rec.ColumnName(j)] = append([]int64(nil), ints.Int64Values()...)
			} else {
				out[rec.ColumnName(j)] = col.String()
			}
		}
	}
	return out
}

func urlQuery(s string) string {
	return strings.NewReplacer("%", "%25", " ", "%20", "{", "%7B", "}", "%7D", "[", "%5B", "]", "%5D", ":", "%3A", "(", "%28", ")", "%29").Replace(s)
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
