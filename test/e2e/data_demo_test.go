package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

const arrowFile = "application/vnd.apache.arrow.file"

// TestDemoData reads `serve demo`: Tiled's generated_minimal tree (A
// ones(100,100), B ones(100,100,100), C a table x=1 y=2 z=3 of 100 rows in
// 3 partitions, D an xarray dataset, root metadata {"thing": "stuff"}),
// possibly followed by entries of this server's own.
func TestDemoData(t *testing.T) {
	t.Parallel()
	key := randomHex(t, 32)
	s := startServer(t, []string{"demo", "--api-key", key})
	auth := apikey(key)

	t.Run("replay", func(t *testing.T) {
		t.Parallel()
		replayAll(t, s, recordedGeneratedKey, key,
			"single-notfound.txt",
			"single-array-json.txt",
			"single-table-csv.txt",
		)
	})

	t.Run("root and search", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		root, ok := c.getObject("/api/v1/metadata/", auth)
		if !ok {
			return
		}
		attrs, _ := at(root, "data", "attributes")
		expectAt(t, attrs, "container", "structure_family")
		expectAt(t, attrs, map[string]any{"thing": "stuff"}, "metadata")
		expectAt(t, attrs, []string{}, "ancestors")
		expectAt(t, root, map[string]any{
			"self": s.base + "/api/v1/metadata/", "search": s.base + "/api/v1/search/", "full": s.base + "/api/v1/container/full/",
		}, "data", "links")

		page, ok := c.getObject("/api/v1/search/", auth)
		if !ok {
			return
		}
		got := ids(page)
		if len(got) < 4 || strings.Join(got[:4], ",") != "A,B,C,D" {
			t.Errorf("ids %v, want A, B, C, D first", got)
		}
		expectAt(t, page, len(got), "meta", "count")
		expectAt(t, attrs, len(got), "structure", "count")
		expectLinkKeys(t, page, "links", "self", "first", "last", "next", "prev")
		families := map[string]string{"A": "array", "B": "array", "C": "table", "D": "container"}
		links := map[string][]string{"array": {"self", "full", "block"}, "table": {"self", "full", "partition"}, "container": {"self", "search", "full"}}
		items, _ := page["data"].([]any)
		for _, it := range items {
			id, _ := at(it, "id")
			fam, _ := at(it, "attributes", "structure_family")
			if want, ok := families[str(id)]; ok {
				expectAt(t, it, want, "attributes", "structure_family")
			}
			if want, ok := links[str(fam)]; ok {
				expectLinkKeys(t, it, "links", want...)
			}
		}
	})

	t.Run("pagination", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		all, ok := c.getObject("/api/v1/search/", auth)
		if !ok {
			return
		}
		every := ids(all)
		if len(every) < 4 {
			t.Fatalf("ids %v, want at least A, B, C, D", every)
		}
		page, ok := c.getObject("/api/v1/search/?page[offset]=1&page[limit]=2", auth)
		if !ok {
			return
		}
		expectIDs(t, page, every[1:3]...)
		expectAt(t, page, len(every), "meta", "count")
		expectPageLink(t, page, "self", 1, 2)
		expectPageLink(t, page, "next", 3, 2)
		follow := func(rel string) map[string]any {
			t.Helper()
			l, _ := at(page, "links", rel)
			if str(l) == "" {
				t.Fatalf("links.%s = %s, want a URL", rel, compact(l))
			}
			p, ok := c.getObject(str(l), auth)
			if !ok {
				t.FailNow()
			}
			return p
		}
		expectIDs(t, follow("next"), every[3:min(5, len(every))]...)
		expectIDs(t, follow("first"), every[:2]...)
		if last := ids(follow("last")); len(last) == 0 || last[len(last)-1] != every[len(every)-1] {
			t.Errorf("the last page holds %v, want it to end with %s", last, every[len(every)-1])
		}
		if prev := ids(follow("prev")); len(prev) == 0 || prev[0] != "A" {
			t.Errorf("the previous page of offset 1 holds %v, want it to start with A", prev)
		}
		end, ok := c.getObject("/api/v1/search/?page[offset]="+strconv.Itoa(len(every)-1)+"&page[limit]=2", auth)
		if ok {
			expectIDs(t, end, every[len(every)-1])
			expectAt(t, end, nil, "links", "next")
		}
		for _, q := range []string{"page[offset]=-1", "page[limit]=-5", "page[offset]=x"} {
			r := c.get("/api/v1/search/?"+q, auth)
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
				t.Errorf("?%s: status %d, want 400 or 422: %s", q, r.Status, r)
			}
		}
	})

	t.Run("array A", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		md, ok := c.getObject("/api/v1/metadata/A", auth)
		if !ok {
			return
		}
		expectAt(t, md, "A", "data", "id")
		expectAt(t, md, "array", "data", "attributes", "structure_family")
		expectAt(t, md, []string{}, "data", "attributes", "ancestors")
		st, _ := at(md, "data", "attributes", "structure")
		expectDataType(t, st, "f", 8)
		expectAt(t, st, []int{100, 100}, "shape")
		expectAt(t, st, nil, "dims")
		expectAt(t, st, false, "resizable")
		chunks := expectChunks(t, st, []int{100, 100})
		expectAt(t, md, s.base+"/api/v1/array/full/A", "data", "links", "full")
		if l, _ := at(md, "data", "links", "block"); !strings.HasPrefix(str(l), s.base+"/api/v1/array/block/A") {
			t.Errorf("links.block = %s", compact(l))
		}

		ones := func(int) float64 { return 1 }
		if b, ok := c.getBytes("/api/v1/array/full/A?slice=0:2,0:3", auth, "application/octet-stream"); ok {
			expectFloats(t, b, 6, ones)
		}
		if len(chunks) == 2 {
			if b, ok := c.getBytes("/api/v1/array/block/A?block=0,0", auth, "application/octet-stream"); ok {
				expectFloats(t, b, chunks[0]*chunks[1], ones)
			}
		}
		if v, ok := c.getJSON("/api/v1/array/block/A?block=0,0&slice=0:1,0:2", with(auth, "Accept", "application/json")); ok {
			expectAt(t, v, [][]float64{{1, 1}})
		}
		expectDetail(t, c.get("/api/v1/array/block/A?block=0", auth), http.StatusUnprocessableEntity,
			"Block parameter must have 2 comma-separated parameters, corresponding to the dimensions of this 2-dimensional array.")
		expectStatus(t, c.get("/api/v1/array/block/A?block=99,0", auth), http.StatusUnprocessableEntity)
		if b, ok := c.getBytes("/api/v1/array/full/A?slice=0:2,0:3", auth, "text/csv"); ok {
			if rows := nonEmptyLines(string(b)); len(rows) != 2 {
				t.Errorf("CSV of a 2x3 slice has %d rows: %q", len(rows), b)
			}
		}
		expectStatus(t, c.get("/api/v1/array/full/A?slice=0:2,0:3", with(auth, "Accept", "image/x-nonsense")), http.StatusNotAcceptable)
	})

	t.Run("array B", func(t *testing.T) {
		t.Parallel()
		if md, ok := s.client(t).getObject("/api/v1/metadata/B", auth); ok {
			expectAt(t, md, []int{100, 100, 100}, "data", "attributes", "structure", "shape")
		}
	})

	t.Run("table C", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		md, ok := c.getObject("/api/v1/metadata/C", auth)
		if !ok {
			return
		}
		expectAt(t, md, "table", "data", "attributes", "structure_family")
		st, _ := at(md, "data", "attributes", "structure")
		expectAt(t, st, []string{"x", "y", "z"}, "columns")
		expectAt(t, st, 3, "npartitions")
		expectAt(t, st, false, "resizable")
		expectArrowSchema(t, st, map[string]arrow.DataType{"x": arrow.PrimitiveTypes.Float64, "y": arrow.PrimitiveTypes.Float64, "z": arrow.PrimitiveTypes.Float64})
		expectAt(t, md, s.base+"/api/v1/table/full/C", "data", "links", "full")

		if b, ok := c.getBytes("/api/v1/table/full/C", auth, "application/json"); ok {
			want := map[string][]float64{}
			for i, col := range []string{"x", "y", "z"} {
				for range 100 {
					want[col] = append(want[col], float64(i+1))
				}
			}
			expectAt(t, mustDecode(t, string(b)), want)
		}
		if b, ok := c.getBytes("/api/v1/table/full/C", auth, arrowFile); ok {
			expectArrowTable(t, b, []string{"x", "y", "z"}, 100, func(col, _ int) float64 { return float64(col + 1) })
		}

		// The partitions, in order, make up the whole table.
		rows := 0
		for p := range 3 {
			b, ok := c.getBytes("/api/v1/table/partition/C?partition="+strconv.Itoa(p), auth, "text/csv")
			if !ok {
				continue
			}
			lines := nonEmptyLines(string(b))
			if len(lines) == 0 || lines[0] != "x,y,z" {
				t.Errorf("partition %d: CSV header %q, want x,y,z", p, lines)
				continue
			}
			for _, l := range lines[1:] {
				if l != "1.0,2.0,3.0" {
					t.Errorf("partition %d: row %q, want 1.0,2.0,3.0", p, l)
					break
				}
			}
			rows += len(lines) - 1
		}
		if rows != 100 {
			t.Errorf("the 3 partitions hold %d rows, want 100", rows)
		}
		expectDetail(t, c.get("/api/v1/table/partition/C?partition=3", auth), http.StatusBadRequest, "Partition out of range")
	})

	t.Run("container D", func(t *testing.T) {
		t.Parallel()
		if md, ok := s.client(t).getObject("/api/v1/metadata/D", auth); ok {
			expectAt(t, md, "container", "data", "attributes", "structure_family")
		}
	})

	t.Run("concurrent readers", func(t *testing.T) {
		t.Parallel()
		// Many clients at once, so that the race detector in the server
		// sees shared state touched concurrently.
		paths := []string{"/api/v1/metadata/", "/api/v1/search/", "/api/v1/metadata/C",
			"/api/v1/array/full/A?slice=0:10,0:10", "/api/v1/table/full/C", "/api/v1/metadata/no/such"}
		var wg sync.WaitGroup
		results := make([]reply, 4*len(paths))
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = s.client(t).get(paths[i%len(paths)], auth)
			}()
		}
		wg.Wait()
		for i, r := range results {
			want := http.StatusOK
			if strings.HasSuffix(paths[i%len(paths)], "/no/such") {
				want = http.StatusNotFound
			}
			expectStatus(t, r, want)
		}
	})

	t.Run("wrong structure family", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		for _, path := range []string{"/api/v1/array/full/C", "/api/v1/array/block/C?block=0", "/api/v1/table/full/A", "/api/v1/table/partition/A?partition=0"} {
			expectStatus(t, c.get(path, auth), http.StatusNotFound)
		}
	})

	t.Run("about", func(t *testing.T) { t.Parallel(); checkAbout(t, s, true) })
	t.Run("probes", func(t *testing.T) { t.Parallel(); checkProbes(t, s, key) })
}

// expectDataType checks a little-endian builtin data type (Tiled also
// sends dt_units, null for these).
func expectDataType(t *testing.T, st any, kind string, itemsize int) {
	t.Helper()
	expectAt(t, st, "little", "data_type", "endianness")
	expectAt(t, st, kind, "data_type", "kind")
	expectAt(t, st, itemsize, "data_type", "itemsize")
}

func str(v any) string { s, _ := v.(string); return s }

func ids(page map[string]any) []string {
	items, _ := page["data"].([]any)
	out := make([]string, 0, len(items))
	for _, it := range items {
		id, _ := at(it, "id")
		out = append(out, str(id))
	}
	return out
}

func expectIDs(t *testing.T, page map[string]any, want ...string) {
	t.Helper()
	if got := ids(page); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ids %v, want %v", got, want)
	}
}

// expectLinkKeys checks that the object at v[field] has at least these members.
func expectLinkKeys(t *testing.T, v any, field string, keys ...string) {
	t.Helper()
	links, _ := at(v, field)
	m, ok := links.(map[string]any)
	if !ok {
		t.Errorf("%s = %s, want an object", field, compact(links))
		return
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q: %s", field, k, compact(links))
		}
	}
}

// expectPageLink checks the page[offset] and page[limit] of links.rel
// (an absent page[offset] means 0, as Tiled writes the first page).
func expectPageLink(t *testing.T, page map[string]any, rel string, offset, limit int) {
	t.Helper()
	l, _ := at(page, "links", rel)
	u, err := url.Parse(str(l))
	if err != nil || str(l) == "" {
		t.Errorf("links.%s = %s, want a URL", rel, compact(l))
		return
	}
	q := u.Query()
	gotOffset := q.Get("page[offset]")
	if gotOffset == "" {
		gotOffset = "0"
	}
	if gotOffset != strconv.Itoa(offset) || q.Get("page[limit]") != strconv.Itoa(limit) {
		t.Errorf("links.%s = %s, want page[offset]=%d and page[limit]=%d", rel, str(l), offset, limit)
	}
}

// expectChunks checks that chunks partition the shape and returns the
// size of the first chunk along each dimension.
func expectChunks(t *testing.T, st any, shape []int) []int {
	t.Helper()
	v, _ := at(st, "chunks")
	dims, ok := v.([]any)
	if !ok || len(dims) != len(shape) {
		t.Errorf("chunks = %s, want one list per dimension of %v", compact(v), shape)
		return nil
	}
	var first []int
	for i, d := range dims {
		sizes, _ := d.([]any)
		sum := 0
		for j, c := range sizes {
			n, err := strconv.Atoi(string(asNumber(c)))
			if err != nil || n <= 0 {
				t.Errorf("chunks[%d][%d] = %s", i, j, compact(c))
				return nil
			}
			if j == 0 {
				first = append(first, n)
			}
			sum += n
		}
		if sum != shape[i] {
			t.Errorf("chunks[%d] = %s do not add up to %d", i, compact(d), shape[i])
			return nil
		}
	}
	return first
}

func asNumber(v any) json.Number { n, _ := v.(json.Number); return n }

func expectMediaType(t *testing.T, r reply, want string) {
	t.Helper()
	if got := mediaType(r.Header); got != want {
		t.Errorf("Content-Type %q, want %s", r.Header.Get("Content-Type"), want)
	}
}

// expectFloats checks that b holds n little-endian float64 values.
func expectFloats(t *testing.T, b []byte, n int, want func(i int) float64) {
	t.Helper()
	if len(b) != 8*n {
		t.Errorf("%d bytes, want %d (%d float64)", len(b), 8*n, n)
		return
	}
	for i := range n {
		if got := math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])); got != want(i) {
			t.Errorf("value %d = %v, want %v", i, got, want(i))
			return
		}
	}
}

// arrowSchemaPrefix starts structure.arrow_schema in Tiled
// (tiled/structures/table.py B64_ENCODED_PREFIX): a data URL.
const arrowSchemaPrefix = "data:application/vnd.apache.arrow.file;base64,"

// expectArrowSchema decodes structure.arrow_schema (a data URL holding the
// base64 of an Arrow IPC schema message) and checks its fields.
func expectArrowSchema(t *testing.T, st any, want map[string]arrow.DataType) {
	t.Helper()
	v, _ := at(st, "arrow_schema")
	b64, ok := strings.CutPrefix(str(v), arrowSchemaPrefix)
	if !ok {
		t.Errorf("arrow_schema does not start with %q: %s", arrowSchemaPrefix, compact(v))
		return
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) == 0 {
		t.Errorf("arrow_schema is not base64 after its prefix: %s", compact(v))
		return
	}
	rd, err := ipc.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Errorf("arrow_schema is not an Arrow IPC schema: %v", err)
		return
	}
	defer rd.Release()
	fields := rd.Schema().Fields()
	if len(fields) < len(want) {
		t.Errorf("arrow_schema fields %v, want %v", rd.Schema(), want)
	}
	for _, f := range fields {
		if w, ok := want[f.Name]; ok && !arrow.TypeEqual(f.Type, w) {
			t.Errorf("arrow_schema field %s: %s, want %s", f.Name, f.Type, w)
		}
	}
	for name := range want {
		if len(rd.Schema().FieldIndices(name)) == 0 {
			t.Errorf("arrow_schema lacks field %s: %v", name, rd.Schema())
		}
	}
}

// expectArrowTable reads an Arrow IPC file and checks float64 columns.
func expectArrowTable(t *testing.T, b []byte, cols []string, rows int, want func(col, row int) float64) {
	t.Helper()
	fr, err := ipc.NewFileReader(bytes.NewReader(b))
	if err != nil {
		t.Errorf("not an Arrow IPC file: %v", err)
		return
	}
	defer fr.Close()
	seen := 0
	for i := 0; i < fr.NumRecords(); i++ {
		rec, err := fr.Record(i)
		if err != nil {
			t.Errorf("record batch %d: %v", i, err)
			return
		}
		for ci, name := range cols {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) == 0 {
				t.Errorf("Arrow table lacks column %s: %v", name, rec.Schema())
				return
			}
			col, ok := rec.Column(idx[0]).(*array.Float64)
			if !ok {
				t.Errorf("column %s is %s, want float64", name, rec.Column(idx[0]).DataType())
				return
			}
			for r := 0; r < col.Len(); r++ {
				if col.Value(r) != want(ci, seen+r) {
					t.Errorf("column %s row %d = %v, want %v", name, seen+r, col.Value(r), want(ci, seen+r))
					return
				}
			}
		}
		seen += int(rec.NumRows())
	}
	if seen != rows {
		t.Errorf("Arrow table has %d rows, want %d", seen, rows)
	}
}
