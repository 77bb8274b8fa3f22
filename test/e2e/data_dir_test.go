package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDirectoryData serves a folder built here: a sub-folder, a CSV table,
// NPY arrays (float64 2-D, int32 1-D) and a text file the server skips.
func TestDirectoryData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a.csv"), []byte("id,value,flag,name\n1,1.5,true,alpha\n2,-2.25,false,beta\n3,1024.0,true,gamma\n"))
	mData := float64LE(0.5, 1.5, -2.25, 3, 4.75, 1024)
	writeFile(t, filepath.Join(dir, "m.npy"), npyBytes("<f8", []int{2, 3}, mData))
	vData := int32LE(1, -2, 3, 2147483647)
	writeFile(t, filepath.Join(dir, "sub", "v.npy"), npyBytes("<i4", []int{4}, vData))
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("not data\n"))

	key := randomHex(t, 32)
	s := startServer(t, []string{"directory", dir, "--api-key", key})
	auth := apikey(key)
	c := s.client(t)

	// Entries are named as Tiled names registered files (strip_suffixes:
	// "a.csv" is "a"); keyOf finds an entry under either name so that one
	// naming difference does not hide everything else.
	r := c.get("/api/v1/search/", auth)
	if !expectStatus(t, r, http.StatusOK) {
		t.FailNow()
	}
	root := object(t, r)
	got := ids(root)
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	if strings.Join(sorted, ",") != "a,m,sub" {
		t.Errorf("root entries %v, want a, m, sub (file names without suffixes; notes.txt skipped)", got)
	}
	expectAt(t, root, 3, "meta", "count")
	keyOf := func(stem string) string {
		for _, id := range got {
			if id == stem || strings.TrimSuffix(id, filepath.Ext(id)) == stem {
				return id
			}
		}
		t.Fatalf("no entry for %s among %v", stem, got)
		return ""
	}
	a, m, sub := keyOf("a"), keyOf("m"), keyOf("sub")
	families := map[string]string{a: "table", m: "array", sub: "container"}
	items, _ := root["data"].([]any)
	for _, it := range items {
		id, _ := at(it, "id")
		expectAt(t, it, families[str(id)], "attributes", "structure_family")
	}

	t.Run("skipped file", func(t *testing.T) {
		out := s.waitOutput(t, regexp.MustCompile(`notes\.txt`))
		if n := strings.Count(s.output(), "notes.txt"); n != 1 {
			t.Errorf("notes.txt is mentioned %d times in the output, want one log line (%v)\n%s", n, out, s.output())
		}
		for _, p := range []string{"/api/v1/metadata/notes", "/api/v1/metadata/notes.txt"} {
			expectStatus(t, c.get(p, auth), http.StatusNotFound)
		}
	})

	t.Run("csv table", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		if md, ok := c.getObject("/api/v1/metadata/"+a, auth); ok {
			st, _ := at(md, "data", "attributes", "structure")
			expectAt(t, st, []string{"id", "value", "flag", "name"}, "columns")
			expectAt(t, st, 1, "npartitions")
		}
		if v, ok := c.getJSON("/api/v1/table/full/"+a, with(auth, "Accept", "application/json")); ok {
			expectAt(t, v, map[string]any{
				"id":    []int{1, 2, 3},
				"value": []float64{1.5, -2.25, 1024},
				"flag":  []bool{true, false, true},
				"name":  []string{"alpha", "beta", "gamma"},
			})
		}
		if b, ok := c.getBytes("/api/v1/table/full/"+a, auth, "text/csv"); ok {
			if lines := nonEmptyLines(string(b)); len(lines) != 4 || lines[0] != "id,value,flag,name" {
				t.Errorf("CSV %q, want the header and 3 rows", b)
			}
		}
	})

	t.Run("float64 npy", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		if md, ok := c.getObject("/api/v1/metadata/"+m, auth); ok {
			st, _ := at(md, "data", "attributes", "structure")
			expectDataType(t, st, "f", 8)
			expectAt(t, st, []int{2, 3}, "shape")
		}
		expectArray(t, c, "/api/v1/array/full/"+m, auth, mData, [][]float64{{0.5, 1.5, -2.25}, {3, 4.75, 1024}})
		// Slices follow numpy: a range keeps the dimension, an index drops it.
		for _, tc := range []struct {
			slice string
			bytes []byte
			json  any
		}{
			{"1:2,0:2", float64LE(3, 4.75), [][]float64{{3, 4.75}}},
			{":,2", float64LE(-2.25, 1024), []float64{-2.25, 1024}},
			{"1", float64LE(3, 4.75, 1024), []float64{3, 4.75, 1024}},
			{"0,::2", float64LE(0.5, -2.25), []float64{0.5, -2.25}},
		} {
			expectArray(t, c, "/api/v1/array/full/"+m+"?slice="+tc.slice, auth, tc.bytes, tc.json)
		}
	})

	t.Run("int32 npy in a sub-folder", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		if page, ok := c.getObject("/api/v1/search/"+sub, auth); ok {
			if got := ids(page); len(got) != 1 || strings.TrimSuffix(got[0], ".npy") != "v" {
				t.Errorf("entries of sub %v, want [v]", got)
			}
		}
		v := sub + "/" + "v"
		if r := c.get("/api/v1/metadata/"+v, auth); r.Status == http.StatusNotFound {
			v = sub + "/v.npy"
		}
		if md, ok := c.getObject("/api/v1/metadata/"+v, auth); ok {
			attrs, _ := at(md, "data", "attributes")
			expectAt(t, attrs, "array", "structure_family")
			expectAt(t, attrs, []string{sub}, "ancestors")
			st, _ := at(attrs, "structure")
			expectDataType(t, st, "i", 4)
			expectAt(t, st, []int{4}, "shape")
		}
		expectArray(t, c, "/api/v1/array/full/"+v, auth, vData, []int{1, -2, 3, 2147483647})
	})
}

// expectArray reads an array as raw bytes and as JSON.
func expectArray(t *testing.T, c *client, path string, auth http.Header, raw []byte, asJSON any) {
	t.Helper()
	if b, ok := c.getBytes(path, auth, "application/octet-stream"); ok && !bytes.Equal(b, raw) {
		t.Errorf("%s: bytes %x, want %x", path, b, raw)
	}
	if v, ok := c.getJSON(path, with(auth, "Accept", "application/json")); ok {
		expectAt(t, v, asJSON)
	}
}
