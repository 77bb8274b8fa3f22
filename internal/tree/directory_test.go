package tree

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// logLines decodes JSON log records.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func TestFromDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"table.csv":         []byte("a,b\n1,x\n2,y\n"),
		"image.npy":         npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", Float64Bytes(1, 2)),
		"notes.txt":         []byte("not data"),
		".hidden.csv":       []byte("a\n1\n"),
		"broken.npy":        []byte("not numpy"),
		"clash.csv":         []byte("a\n1\n"),
		"clash.npy":         npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", Float64Bytes(1)),
		"run.1.CSV":         []byte("q\n1.5\n"),
		"sub/inner.csv":     []byte("c\nTrue\n"),
		"sub/deeper/x.npy":  npyFile(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", []byte{1, 2, 3}),
		"empty/.keep":       nil,
		"reserved/_bad.csv": []byte("_a\n1\n"),
	})
	if err := os.Symlink(dir, filepath.Join(dir, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	root, err := FromDirectory(dir, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := root.Keys(), []string{"empty", "image", "reserved", "run", "sub", "table"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	sub, _ := root.Child("sub")
	if got := sub.(Container).Keys(); !reflect.DeepEqual(got, []string{"deeper", "inner"}) {
		t.Errorf("sub keys %v", got)
	}
	table, _ := root.Child("table")
	f, err := ReadTable(context.Background(), table.(Table), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Columns[1].String, []string{"x", "y"}) || !reflect.DeepEqual(f.Columns[0].Int64, []int64{1, 2}) {
		t.Errorf("table data %+v %+v", f.Columns[0], f.Columns[1])
	}
	arr, _ := Lookup(t.Context(), root, []string{"sub", "deeper", "x"})
	got, err := ReadSlice(context.Background(), arr.(Array), Slice{}, 0)
	if err != nil || !bytes.Equal(got.Data, []byte{1, 2, 3}) {
		t.Errorf("npy data %v %v", got, err)
	}

	// Every skipped file is logged once, with its path.
	logged := map[string]string{}
	for _, rec := range logLines(t, &logs) {
		p, _ := rec["path"].(string)
		logged[filepath.Base(p)] = rec["level"].(string) + " " + rec["msg"].(string)
	}
	for name, want := range map[string]string{
		"notes.txt":  "INFO skipping file: no adapter",
		"broken.npy": "WARN skipping file: cannot read",
		"clash.csv":  "WARN skipping file: several files",
		"clash.npy":  "WARN skipping file: several files",
		"_bad.csv":   "WARN skipping file: cannot read",
		"loop":       "WARN skipping directory: symbolic link loop",
	} {
		if !strings.HasPrefix(logged[name], want) {
			t.Errorf("log for %s: %q, want %q...", name, logged[name], want)
		}
	}
	if _, ok := logged[".hidden.csv"]; ok {
		t.Error("hidden files are ignored silently, as by Tiled's default filter")
	}
	if len(logged) != 6 {
		t.Errorf("logged %v", logged)
	}
}

func TestFromDirectoryErrors(t *testing.T) {
	if _, err := FromDirectory(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("missing directory accepted")
	}
	file := filepath.Join(t.TempDir(), "f.csv")
	writeFiles(t, filepath.Dir(file), map[string][]byte{"f.csv": []byte("a\n1\n")})
	if _, err := FromDirectory(file, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as directory: %v", err)
	}
}

func TestStripSuffixes(t *testing.T) {
	for in, want := range map[string]string{
		"a.csv": "a", "thing.tar.gz": "thing", "noext": "noext", "x.": "x.", "a..csv": "a", "..csv": "..csv",
	} {
		if got := stripSuffixes(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestFromSpec(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"t.csv": []byte("a\n1\n")})
	cases := []struct {
		name    string
		args    map[string]any
		keys    []string
		wantErr string
	}{
		{"tiled.examples.generated_minimal:tree", nil, []string{"A", "B", "C", "D"}, ""},
		{"demo", map[string]any{}, []string{"A", "B", "C", "D"}, ""},
		{"extended_demo", nil, []string{"A", "B", "C", "D", "nested"}, ""},
		{"extended_demo", map[string]any{"x": 1}, nil, "takes no args"},
		{"demo", map[string]any{"x": 1}, nil, "takes no args"},
		{"directory", map[string]any{"directory": dir}, []string{"t"}, ""},
		{"files", map[string]any{"path": dir, "keep_ext": true}, []string{"t.csv"}, ""},
		{"tiled.adapters.files:DirectoryAdapter.from_directory", map[string]any{"directory": dir}, []string{"t"}, ""},
		{"directory", nil, nil, "needs args.directory"},
		{"directory", map[string]any{"directory": 5}, nil, "non-empty string"},
		{"directory", map[string]any{"directory": dir, "colour": "red"}, nil, `unknown arg "colour"`},
		{"tiled.catalog:from_uri", map[string]any{"uri": "sqlite:///x"}, nil, "supported: tiled.examples.generated_minimal:tree, demo, extended_demo, directory"},
	}
	for _, tc := range cases {
		n, err := FromSpec(tc.name, tc.args, nil)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s %v: error %v, want %q", tc.name, tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := n.(Container).Keys(); !reflect.DeepEqual(got, tc.keys) {
			t.Errorf("%s: keys %v, want %v", tc.name, got, tc.keys)
		}
	}
}

func TestMount(t *testing.T) {
	leaf := func() Node { a, _ := NewArray(Info{}, Int8, []int{1}, nil, []byte{1}); return a }
	demo := ExtendedDemo()
	cases := []struct {
		name    string
		mounts  []Mounted
		paths   [][]string
		wantErr string
	}{
		{"root only", []Mounted{{"/", demo}}, [][]string{{"A"}, {"nested", "deeper", "values"}}, ""},
		{"several", []Mounted{{"/a/b", demo}, {"/a/c", leaf()}, {"x", leaf()}}, [][]string{{"a", "b", "C"}, {"a", "c"}, {"x"}}, ""},
		{"root and more", []Mounted{{"/a", leaf()}, {"/", demo}}, nil, "subpaths of each other: '/' and '/a'"},
		{"nested", []Mounted{{"/a/b", leaf()}, {"/a", demo}}, nil, "'/a' and '/a/b'"},
		{"twice", []Mounted{{"/a", leaf()}, {"/a/", demo}}, nil, "subpaths"},
		{"array at root", []Mounted{{"/", leaf()}}, nil, "must be a container"},
		{"none", nil, nil, "no trees"},
	}
	for _, tc := range cases {
		root, err := Mount(tc.mounts)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, p := range tc.paths {
			if _, err := Lookup(t.Context(), root, p); err != nil {
				t.Errorf("%s: %v: %v", tc.name, p, err)
			}
		}
	}
}

func TestWalk(t *testing.T) {
	root := ExtendedDemo()
	var visited []string
	n, err := Walk(t.Context(), root, []string{"nested", "deeper", "values"}, func(path []string, n Node) error {
		visited = append(visited, strings.Join(path, "/")+":"+string(n.Family()))
		return nil
	})
	if err != nil || n.Family() != FamilyArray {
		t.Fatal(n, err)
	}
	want := []string{":container", "nested:container", "nested/deeper:container", "nested/deeper/values:array"}
	if !reflect.DeepEqual(visited, want) {
		t.Errorf("visited %v", visited)
	}
	for _, p := range [][]string{{"nope"}, {"A", "x"}, {"nested", "nope", "x"}} {
		if _, err := Lookup(t.Context(), root, p); !errors.Is(err, ErrNotFound) {
			t.Errorf("%v: %v", p, err)
		}
	}
	stop := errors.New("stop")
	if _, err := Walk(t.Context(), root, []string{"A"}, func(path []string, _ Node) error {
		if len(path) == 1 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) {
		t.Errorf("visit error not returned: %v", err)
	}
}

// TestDemoStructures pins the structures that must match Tiled's
// generated_minimal tree.
func TestDemoStructures(t *testing.T) {
	if got := Demo().Keys(); !reflect.DeepEqual(got, []string{"A", "B", "C", "D"}) {
		t.Errorf("Demo is Tiled's tree exactly: %v", got)
	}
	root := ExtendedDemo()
	a, _ := Lookup(t.Context(), root, []string{"A"})
	js, _ := json.Marshal(a.(Array).Structure())
	want := `{"data_type":{"endianness":"little","kind":"f","itemsize":8,"dt_units":null},"chunks":[[100],[100]],"shape":[100,100],"dims":null,"resizable":false}`
	if string(js) != want {
		t.Errorf("A structure\n got %s\nwant %s", js, want)
	}
	temp, _ := Lookup(t.Context(), root, []string{"D", "temperature"})
	js, _ = json.Marshal(temp.(Array).Structure())
	want = `{"data_type":{"endianness":"little","kind":"i","itemsize":8,"dt_units":null},"chunks":[[3]],"shape":[3],"dims":["time"],"resizable":false}`
	if string(js) != want {
		t.Errorf("D/temperature structure\n got %s\nwant %s", js, want)
	}
	flags, _ := Lookup(t.Context(), root, []string{"nested", "flags"})
	if e := flags.(Array).Structure().DType.Endianness(); e != "not_applicable" {
		t.Errorf("bool endianness %s", e)
	}
	c, _ := Lookup(t.Context(), root, []string{"C"})
	tbl := c.(Table)
	if st := tbl.Structure(); st.NPartitions != 3 || !reflect.DeepEqual(st.Names(), []string{"x", "y", "z"}) {
		t.Errorf("C structure %+v", st)
	}
	f, err := ReadTable(context.Background(), tbl, []string{"z", "x"})
	if err != nil || f.Rows() != 100 || f.Columns[0].Float64[99] != 3 || f.Columns[1].Float64[0] != 1 {
		t.Errorf("C data: %v", err)
	}
	p, err := ReadPartition(context.Background(), tbl, -1, nil)
	if err != nil || p.Rows() != 33 {
		t.Errorf("last partition: %v", err)
	}
	if _, err := ReadPartition(context.Background(), tbl, 3, nil); !errors.Is(err, ErrPartitionRange) {
		t.Errorf("partition 3: %v", err)
	}
	var nsc *NoSuchColumnError
	if _, err := ReadTable(context.Background(), tbl, []string{"q"}); !errors.As(err, &nsc) || err.Error() != "No such field q." {
		t.Errorf("unknown column: %v", err)
	}
	b, _ := Lookup(t.Context(), root, []string{"B"})
	got, err := ReadSlice(context.Background(), b.(Array), Slice{}, 0)
	if err != nil || len(got.Data) != 8_000_000 || !bytes.Equal(got.Data[len(got.Data)-8:], Float64Bytes(1)) {
		t.Errorf("B: %v", err)
	}
}

func TestWithAccessBlob(t *testing.T) {
	blob := map[string]any{"tags": []any{"public"}}
	demo := Demo()
	for _, key := range []string{"A", "C", "D"} {
		n, _ := demo.Child(key)
		w := WithAccessBlob(n, blob)
		if w.Family() != n.Family() || !reflect.DeepEqual(w.AccessBlob(), blob) || n.AccessBlob() != nil {
			t.Errorf("%s: family %s blob %v", key, w.Family(), w.AccessBlob())
		}
		switch n.(type) {
		case Container:
			_, ok := w.(Container)
			if c, _ := w.(Container); !ok || len(c.Keys()) != 2 {
				t.Errorf("%s is no longer a container", key)
			}
		case Array:
			if _, ok := w.(Array); !ok {
				t.Errorf("%s is no longer an array", key)
			}
		case Table:
			if _, ok := w.(Table); !ok {
				t.Errorf("%s is no longer a table", key)
			}
		}
	}
}
