package data

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/tree"
)

func (s *server) do(t *testing.T, method, target, contentType, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "http://"+host+target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.e.ServeHTTP(rec, req)
	return rec
}

// TestPostBodies pins FastAPI's answers to the bodies of the POST forms.
func TestPostBodies(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	for _, tc := range []struct {
		contentType, body string
		status            int
		want              string // JSON of the whole answer, or a prefix of the data
	}{
		{"application/json", `["x"]`, 200, `{"x":[1.0,`},
		{"application/json", ``, 200, `{"x":[1.0,`},
		{"application/json", `null`, 200, `{"x":[1.0,`},
		{"", `["z"]`, 200, `{"z":[3.0,`},
		{"application/json", `[]`, 422, `{"detail":[{"type":"too_short","loc":["body"],"msg":"List should have at least 1 item after validation, not 0","input":[],"ctx":{"actual_length":0,"field_type":"List","min_length":1}}]}`},
		{"application/json", `{"column":["x"]}`, 422, `{"detail":[{"type":"list_type","loc":["body"],"msg":"Input should be a valid list","input":{"column":["x"]}}]}`},
		{"application/json", `["x", 1, null]`, 422, `{"detail":[{"type":"string_type","loc":["body",1],"msg":"Input should be a valid string","input":1},{"type":"string_type","loc":["body",2],"msg":"Input should be a valid string","input":null}]}`},
		{"text/plain", `["x"]`, 422, `{"detail":[{"type":"list_type","loc":["body"],"msg":"Input should be a valid list","input":"[\"x\"]"}]}`},
		{"application/json", `["x"`, 422, `"type":"json_invalid"`},
		{"application/json", `["q"]`, 400, `{"detail":"No such field q."}`},
	} {
		rec := s.do(t, http.MethodPost, "/api/v1/table/full/C", tc.contentType, tc.body, "Accept", "application/json")
		got := body(rec)
		if rec.Code != tc.status || !(strings.HasPrefix(got, tc.want) || strings.Contains(got, tc.want)) {
			t.Errorf("%q %q: %d %.200s\nwant %d %s", tc.contentType, tc.body, rec.Code, got, tc.status, tc.want)
		}
	}
	// The partition form takes its partition from the query.
	rec := s.do(t, http.MethodPost, "/api/v1/table/partition/C?partition=1", "application/json", `["y"]`, "Accept", "application/json")
	var v map[string][]float64
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || len(v["y"]) != 33 {
		t.Errorf("partition 1: %d %s", rec.Code, rec.Body.String())
	}
}

func TestDistinctAndMsgpack(t *testing.T) {
	s := newServer(t, tree.ExtendedDemo(), nil)
	rec := s.get(t, "/api/v1/distinct/nested?metadata=level&metadata=unit&structure_families=1")
	if want := `{"metadata":{"level":[{"value":2,"count":null}],"unit":[{"value":"boolean","count":null}]},"structure_families":[{"value":"array","count":null},{"value":"container","count":null}],"specs":null}`; body(rec) != want {
		t.Errorf("distinct:\n got %s\nwant %s", rec.Body.String(), want)
	}
	rec = s.get(t, "/api/v1/metadata/nested", "Accept", "application/x-msgpack")
	if rec.Header().Get("Content-Type") != "application/x-msgpack" {
		t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
	}
	var doc map[string]any
	if err := msgpack.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if at(doc, "data", "attributes", "metadata", "level") != int8(1) || at(doc, "data", "id") != "nested" {
		t.Errorf("msgpack document %v", doc)
	}
	jsonTag := s.get(t, "/api/v1/metadata/nested").Header().Get("ETag")
	if jsonTag == rec.Header().Get("ETag") || jsonTag == "" {
		t.Error("the JSON and msgpack encodings must have different ETags")
	}
	if again := s.get(t, "/api/v1/metadata/nested", "Accept", "application/x-msgpack", "If-None-Match", rec.Header().Get("ETag")); again.Code != 304 {
		t.Errorf("msgpack revalidation: %d", again.Code)
	}
}

func TestColumnsAndWrites(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.csv"), []byte("n,s\n1,a\n2,b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := tree.FromDirectory(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, root, nil)
	if rec := s.get(t, "/api/v1/array/full/t/n", "Accept", "application/json"); body(rec) != "[1,2]" {
		t.Errorf("int column: %d %s", rec.Code, rec.Body.String())
	}
	rec := s.get(t, "/api/v1/metadata/t/s")
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `Column \"s\" holds strings`) || !strings.Contains(rec.Body.String(), "/api/v1/table/full/t?column=s") {
		t.Errorf("string column: %d %s", rec.Code, rec.Body.String())
	}

	s = newServer(t, tree.ExtendedDemo(), nil)
	for _, tc := range []struct{ method, target, want string }{
		{http.MethodDelete, "/api/v1/metadata/A", `{"detail":"This node does not support deletion."}`},
		{http.MethodPost, "/api/v1/metadata/nested", `{"detail":"This node does not support creating new nodes."}`},
		{http.MethodPut, "/api/v1/array/block/A", `{"detail":"This node cannot accept array data."}`},
		{http.MethodPut, "/api/v1/array/full/C", `{"detail":"The node at C has structure family StructureFamily.table and this endpoint is compatible with structure families {<StructureFamily.array: 'array'>, <StructureFamily.sparse: 'sparse'>}"}`},
		{http.MethodGet, "/api/v1/revisions/A", `{"detail":"This node does not support revisions."}`},
	} {
		rec := s.do(t, tc.method, tc.target, "application/json", `{}`)
		var want map[string]any
		_ = json.Unmarshal([]byte(tc.want), &want)
		if at(decode(t, rec), "detail") != want["detail"] {
			t.Errorf("%s %s: %d %s", tc.method, tc.target, rec.Code, rec.Body.String())
		}
	}
	s.caller = &authn.Caller{Kind: authn.Anonymous, Scopes: authn.PublicScopes()}
	rec = s.do(t, http.MethodPatch, "/api/v1/metadata/A", "application/json", `{}`)
	if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != `Bearer scope="write:metadata"` ||
		!bytes.Contains(rec.Body.Bytes(), []byte("Requires scopes ['write:metadata']")) {
		t.Errorf("anonymous write: %d %v %s", rec.Code, rec.Header(), rec.Body.String())
	}
}
