package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCaptureFixtures pins the capture reader to the recorded files, so
// that a failing replay is the server's difference and not the reader's.
func TestCaptureFixtures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "captures", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	for _, f := range files {
		c := loadCapture(t, filepath.Base(f))
		if !strings.HasPrefix(c.url, "http://127.0.0.1:") || c.origin() == "" {
			t.Errorf("%s: URL %q", c.name, c.url)
		}
		if c.status < 200 || c.status > 499 {
			t.Errorf("%s: status %d", c.name, c.status)
		}
		if mediaTypeOf(c.resp.Get("Content-Type")) == "application/json" && len(c.rbody) > 0 {
			if _, err := decodeBytes(c.rbody); err != nil {
				t.Errorf("%s: JSON body: %v", c.name, err)
			}
		}
	}
	c := loadCapture(t, "single-apikey-create.txt")
	if c.method != http.MethodPost || c.header.Get("Authorization") != "Apikey "+recordedGeneratedKey ||
		c.header.Get("Content-Type") != "application/json" || !json.Valid(c.body) || c.status != 404 {
		t.Errorf("single-apikey-create.txt read as %+v", c)
	}
	c = loadCapture(t, "single-table-csv.txt")
	if len(c.rbody) != 1206 || !strings.HasPrefix(string(c.rbody), "x,y,z\n1.0,2.0,3.0\n") {
		t.Errorf("single-table-csv.txt body %q", truncate(c.rbody, 40))
	}
	if c.header.Get("Accept") != "text/csv" || !strings.HasSuffix(c.url, "/api/v1/table/full/C") {
		t.Errorf("single-table-csv.txt request read as %+v", c)
	}
	if _, err := os.Stat(filepath.Join("testdata", "captures", "public-about-full.json")); err != nil {
		t.Error(err)
	}
}

// TestJSONDiff pins the comparison every body check relies on: numbers
// compare as written, members both ways, arrays by length and element.
func TestJSONDiff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		want, got string
		diffs     int
	}{
		{`{"a":[1.0,2.0],"b":null}`, `{"b":null,"a":[1.0,2.0]}`, 0},
		{`[[1.0,1.0]]`, `[[1,1]]`, 2},
		{`{"a":1}`, `{"a":1,"b":2}`, 1},
		{`{"a":1,"b":2}`, `{"a":1}`, 1},
		{`[1,2]`, `[1,2,3]`, 1},
		{`{"a":"x"}`, `{"a":["x"]}`, 1},
		{`{"a":{}}`, `{"a":null}`, 1},
	}
	for _, tc := range cases {
		w, err := decodeBytes([]byte(tc.want))
		if err != nil {
			t.Fatal(err)
		}
		g, err := decodeBytes([]byte(tc.got))
		if err != nil {
			t.Fatal(err)
		}
		if d := jsonDiff("", w, g); len(d) != tc.diffs {
			t.Errorf("jsonDiff(%s, %s) = %q, want %d differences", tc.want, tc.got, d, tc.diffs)
		}
	}
	if d := jsonDiff("", norm([][]float64{{1, 0.5}}), mustDecode(t, `[[1.0,0.5]]`)); len(d) != 0 {
		t.Errorf("norm keeps floats as Python writes them: %q", d)
	}
	if d := jsonDiff("", norm([]int{1, -2}), mustDecode(t, `[1,-2]`)); len(d) != 0 {
		t.Errorf("norm keeps integers: %q", d)
	}
}

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeBytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
