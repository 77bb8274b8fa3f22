package serialize

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/tree"
)

// capturedBody returns the body of a recorded Tiled exchange, copied into
// testdata from the project's tiled-captures.
func capturedBody(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("capture %s: %v", name, err)
	}
	_, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("capture %s has no body", name)
	}
	// The recorder added one newline after the body.
	return strings.TrimSuffix(body, "\n")
}

func TestPyFloat(t *testing.T) {
	cases := []struct {
		v    float64
		bits int
		want string
	}{
		{1, 64, "1.0"}, {0.1, 64, "0.1"}, {-2.5, 64, "-2.5"}, {1e16, 64, "1e+16"},
		{1e15, 64, "1000000000000000.0"}, {0.0001, 64, "0.0001"}, {1e-5, 64, "1e-05"},
		{1.5e-7, 64, "1.5e-07"}, {123456789.123, 64, "123456789.123"}, {1e300, 64, "1e+300"},
		{1.2345e-100, 64, "1.2345e-100"}, {math.NaN(), 64, "nan"}, {math.Inf(1), 64, "inf"},
		{math.Inf(-1), 64, "-inf"}, {math.Copysign(0, -1), 64, "-0.0"}, {0, 64, "0.0"},
		{float64(float32(0.1)), 32, "0.1"}, {16777216, 32, "16777216.0"},
		{float64(float32(3.4028235e38)), 32, "3.4028235e+38"},
	}
	for _, tc := range cases {
		if got := PyFloat(tc.v, tc.bits); got != tc.want {
			t.Errorf("PyFloat(%v, %d) = %q, want %q", tc.v, tc.bits, got, tc.want)
		}
	}
}

func TestJSONFloat(t *testing.T) {
	cases := []struct {
		v    float64
		bits int
		want string
	}{
		{1, 64, "1.0"}, {0.1, 64, "0.1"}, {1e16, 64, "1e16"}, {1e15, 64, "1000000000000000.0"},
		{1e-5, 64, "0.00001"}, {1e-6, 64, "1e-6"}, {1.5e-7, 64, "1.5e-7"}, {-123.456, 64, "-123.456"},
		{1.5e300, 64, "1.5e300"}, {math.NaN(), 64, "null"}, {math.Inf(1), 64, "null"},
		{float64(float32(0.1)), 32, "0.1"}, {1e12, 32, "1000000000000.0"}, {1e13, 32, "1e13"},
	}
	for _, tc := range cases {
		if got := JSONFloat(tc.v, tc.bits); got != tc.want {
			t.Errorf("JSONFloat(%v, %d) = %q, want %q", tc.v, tc.bits, got, tc.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		family    tree.Family
		accept    []string
		format    string
		want      string
		wantCT    string
		wantParam string
	}{
		{tree.FamilyArray, nil, "", OctetStream, OctetStream, ""},
		{tree.FamilyArray, []string{"*/*"}, "", OctetStream, OctetStream, ""},
		{tree.FamilyTable, nil, "", Arrow, Arrow, ""},
		{tree.FamilyTable, []string{"text/csv"}, "", CSV, "text/csv; charset=utf-8", ""},
		{tree.FamilyTable, []string{"text/csv;header=absent"}, "", CSV, "text/csv;header=absent; charset=utf-8", "absent"},
		{tree.FamilyArray, []string{"image/tiff, application/json;q=0.9"}, "", JSON, "application/json;q=0.9", ""},
		{tree.FamilyArray, []string{"image/tiff,*/*"}, "", OctetStream, OctetStream, ""},
		{tree.FamilyArray, []string{"image/*"}, "", PNG, PNG, ""},
		{tree.FamilyArray, nil, "html", HTML, "text/html; charset=utf-8", ""},
		{tree.FamilyArray, []string{"text/csv"}, "json", JSON, JSON, ""},
		{tree.FamilyTable, nil, "feather", Arrow, Arrow, ""},
		{tree.FamilyTable, nil, "h5,txt", Plain, "text/plain; charset=utf-8", ""},
		{tree.FamilyTable, nil, "xlsx", XLSX, XLSX, ""},
		{tree.FamilyTable, nil, "parquet", Parquet, Parquet, ""},
		{tree.FamilyArray, nil, "application/json", JSON, JSON, ""},
		{tree.FamilyContainer, nil, "", JSON, JSON, ""},
	}
	for _, tc := range cases {
		got, err := Negotiate(tc.family, nil, tc.accept, tc.format)
		if err != nil {
			t.Errorf("%s %v %q: %v", tc.family, tc.accept, tc.format, err)
			continue
		}
		if got.MediaType != tc.want || got.ContentType != tc.wantCT || got.Params["header"] != tc.wantParam {
			t.Errorf("%s %v %q: got %+v", tc.family, tc.accept, tc.format, got)
		}
	}
	_, err := Negotiate(tree.FamilyArray, nil, []string{"image/tiff, application/x-hdf5"}, "")
	var he *httperr.Error
	if !errors.As(err, &he) || he.Status != 406 || he.Detail != "None of the media types requested by the client are supported. "+
		"Supported: application/octet-stream, application/json, text/csv, text/x-comma-separated-values, text/plain, application/vnd.ms-excel, image/png, text/html. "+
		"Requested: image/tiff, application/x-hdf5." {
		t.Errorf("406: %v", err)
	}
	if _, err := Negotiate(tree.FamilyTable, nil, nil, "h5"); !errors.As(err, &he) || !strings.HasSuffix(he.Detail.(string), "Requested: application/x-hdf5.") {
		t.Errorf("alias in 406: %v", err)
	}
}

func TestAboutFormats(t *testing.T) {
	a := Aliases()
	if got := strings.Join(a["table"][Arrow], ","); got != "arrow,feather" {
		t.Errorf("arrow aliases %q", got)
	}
	if got := strings.Join(a["array"][Excel], ","); got != "xls,xlb,xlm,xla,xlc,xlt,xlw" {
		t.Errorf("excel aliases %q", got)
	}
	if _, ok := a["array"][OctetStream]; ok {
		t.Error("octet-stream gets no aliases in Tiled")
	}
	if got := Formats()["container"]; len(got) != 1 || got[0] != JSON {
		t.Errorf("container formats %v", got)
	}
}

func ndarray(t *testing.T, a tree.Array, slice string) *tree.NDArray {
	t.Helper()
	s, err := tree.ParseSlice(slice)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := tree.ReadSlice(context.Background(), a, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

func lookup(t *testing.T, path ...string) tree.Node {
	t.Helper()
	n, err := tree.Lookup(context.Background(), tree.ExtendedDemo(), path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestArrayEncodings(t *testing.T) {
	a := lookup(t, "A").(tree.Array)
	grid := lookup(t, "nested", "grid").(tree.Array)
	flags := lookup(t, "nested", "flags").(tree.Array)
	values := lookup(t, "nested", "deeper", "values").(tree.Array)
	b := lookup(t, "B").(tree.Array)
	u8, _ := tree.NewArray(tree.Info{}, tree.Uint64, []int{1}, nil, []byte{255, 255, 255, 255, 255, 255, 255, 255})
	f32, _ := tree.NewArray(tree.Info{}, tree.Float32, []int{2}, nil, []byte{0xcd, 0xcc, 0xcc, 0x3d, 0, 0, 0x80, 0x7f})
	cases := []struct {
		name  string
		arr   tree.Array
		slice string
		mt    string
		want  string
	}{
		{"captured json", a, "0:2,0:3", JSON, capturedBody(t, "single-array-json.txt")},
		{"json ints 2-D", grid, "0:2", JSON, "[[0,1,2,3],[4,5,6,7]]"},
		{"json bools", flags, "", JSON, "[true,false,true,true,false]"},
		{"json scalar", grid, "1,2", JSON, "6"},
		{"json floats", values, "", JSON, "[0.5,1.25,-3.0,1e-7]"},
		{"json uint64", u8, "", JSON, "[18446744073709551615]"},
		{"json float32 and inf", f32, "", JSON, "[0.1,null]"},
		{"csv 2-D", grid, "1:", CSV, "4,5,6,7\n8,9,10,11\n"},
		{"csv 1-D", flags, "0:2", CSV, "True\nFalse\n"},
		{"csv floats", values, "", Plain, "0.5\n1.25\n-3.0\n1e-07\n"},
		{"csv float32", f32, "", CSV, "0.1\ninf\n"},
		{"octet", grid, "0,0:2", OctetStream, string(tree.Int32Bytes(0, 1))},
	}
	for _, tc := range cases {
		got, err := Array(Choice{MediaType: tc.mt}, ndarray(t, tc.arr, tc.slice))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	var he *httperr.Error
	if _, err := Array(Choice{MediaType: CSV}, ndarray(t, b, "0:2")); !errors.As(err, &he) || he.Status != 406 ||
		he.Detail != "The shape of this data (2, 100, 100) is incompatible with the requested format (text/csv). Slice it or choose a different format." {
		t.Errorf("3-D csv: %v", err)
	}
	if _, err := Array(Choice{MediaType: CSV}, ndarray(t, grid, "0,0")); !errors.As(err, &he) || he.Status != 406 {
		t.Errorf("0-D csv: %v", err)
	}
}

func demoTable(t *testing.T) *tree.Frame {
	t.Helper()
	f, err := tree.ReadTable(context.Background(), lookup(t, "C").(tree.Table), nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mixedFrame() *tree.Frame {
	return &tree.Frame{Columns: []*tree.Series{
		{Column: tree.Column{Name: "f", Type: tree.ColFloat64}, Float64: []float64{1.5, math.NaN(), 1e20}, Null: []bool{false, true, false}},
		{Column: tree.Column{Name: "i", Type: tree.ColInt64}, Int64: []int64{1, -2, 3}},
		{Column: tree.Column{Name: "b", Type: tree.ColBool}, Bool: []bool{true, false, true}},
		{Column: tree.Column{Name: "s,q", Type: tree.ColString}, String: []string{`say "hi"`, "", "a\nb"}, Null: []bool{false, true, false}},
	}}
}

func TestTableEncodings(t *testing.T) {
	got, err := Table(Choice{MediaType: CSV}, demoTable(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := capturedBody(t, "single-table-csv.txt"); string(got) != want {
		t.Errorf("table csv differs from Tiled's capture:\n%q\n%q", got[:40], want[:40])
	}
	cases := []struct {
		mt, header, want string
	}{
		{CSV, "", "f,i,b,\"s,q\"\n1.5,1,True,\"say \"\"hi\"\"\"\n,-2,False,\n1e+20,3,True,\"a\nb\"\n"},
		{CSV, "absent", "1.5,1,True,\"say \"\"hi\"\"\"\n,-2,False,\n1e+20,3,True,\"a\nb\"\n"},
		{JSON, "", `{"f":[1.5,null,1e20],"i":[1,-2,3],"b":[true,false,true],"s,q":["say \"hi\"",null,"a\nb"]}`},
		{JSONSeq, "", `{"f":1.5,"i":1,"b":true,"s,q":"say \"hi\""}` + "\n" + `{"f":null,"i":-2,"b":false,"s,q":null}` + "\n" + `{"f":1e20,"i":3,"b":true,"s,q":"a\nb"}`},
	}
	for _, tc := range cases {
		got, err := Table(Choice{MediaType: tc.mt, Params: map[string]string{"header": tc.header}}, mixedFrame())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s header=%q:\n got %q\nwant %q", tc.mt, tc.header, got, tc.want)
		}
	}
	one := &tree.Frame{Columns: []*tree.Series{{Column: tree.Column{Name: "a", Type: tree.ColString}, String: []string{""}, Null: []bool{true}}}}
	if got, _ := Table(Choice{MediaType: CSV}, one); string(got) != "a\n\"\"\n" {
		t.Errorf("single empty cell: %q", got)
	}
}

func TestArrowFile(t *testing.T) {
	data, err := Table(Choice{MediaType: Arrow}, mixedFrame())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewFileReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumRecords() != 1 {
		t.Fatalf("%d record batches", r.NumRecords())
	}
	rec, err := r.RecordBatch(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Schema().String(); !strings.Contains(got, "f: type=float64, nullable") || !strings.Contains(got, "s,q: type=utf8, nullable") {
		t.Errorf("schema %s", got)
	}
	f := rec.Column(0).(*array.Float64)
	s := rec.Column(3).(*array.String)
	if f.Value(0) != 1.5 || !f.IsNull(1) || !s.IsNull(1) || s.Value(2) != "a\nb" || rec.Column(1).(*array.Int64).Value(1) != -2 || !rec.Column(2).(*array.Boolean).Value(2) {
		t.Errorf("values differ: %v", rec)
	}
}

func TestArrowSchema(t *testing.T) {
	got, err := ArrowSchema([]tree.Column{{Name: "x", Type: tree.ColFloat64}, {Name: "n", Type: tree.ColInt64}})
	if err != nil {
		t.Fatal(err)
	}
	b64, ok := strings.CutPrefix(got, "data:application/vnd.apache.arrow.file;base64,")
	if !ok {
		t.Fatalf("prefix: %s", got)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte{0xff, 0xff, 0xff, 0xff}) || len(raw)%8 != 0 {
		t.Errorf("not an encapsulated IPC message: % x", raw[:8])
	}
	r, err := ipc.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if s := r.Schema(); s.NumFields() != 2 || s.Field(0).Name != "x" || s.Field(1).Type.Name() != "int64" {
		t.Errorf("schema %v", s)
	}
}

func TestContainerJSON(t *testing.T) {
	all := func([]string, tree.Node) bool { return true }
	d := lookup(t, "D").(tree.Container)
	got, err := Container(Choice{MediaType: JSON}, d, all)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"contents":{"temperature":{"contents":{},"metadata":{"attrs":{}}},"time":{"contents":{},"metadata":{"attrs":{}}}},"metadata":{"attrs":{}}}`
	if string(got) != want {
		t.Errorf("D:\n got %s\nwant %s", got, want)
	}
	noNested := func(p []string, _ tree.Node) bool { return p[0] != "nested" && p[0] != "B" }
	got, err = Container(Choice{MediaType: JSON}, tree.ExtendedDemo(), noNested)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"contents":{"A":{"contents":{},"metadata":{}},"C":{"contents":{"x":{"contents":{},"metadata":{}},"y":{"contents":{},"metadata":{}},"z":{"contents":{},"metadata":{}}},"metadata":{}},` +
		`"D":{"contents":{"temperature":{"contents":{},"metadata":{"attrs":{}}},"time":{"contents":{},"metadata":{"attrs":{}}}},"metadata":{"attrs":{}}}},"metadata":{"thing":"stuff"}}`
	if string(got) != want {
		t.Errorf("root:\n got %s\nwant %s", got, want)
	}
	empty, _ := tree.NewMap(tree.Info{}, tree.Entry{Key: "e", Node: mustMap(t)})
	if got, _ := Container(Choice{MediaType: JSON}, empty, all); string(got) != `{"contents":{},"metadata":{}}` {
		t.Errorf("empty containers are left out: %s", got)
	}
}

func mustMap(t *testing.T) *tree.Map {
	m, err := tree.NewMap(tree.Info{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/csv;header=absent", "image/png, application/json;q=0.9", ";;;", "text/csv;=;a=b=c", ","} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Add("", "csv,json")
	f.Fuzz(func(t *testing.T, accept, format string) {
		for _, fam := range []tree.Family{tree.FamilyArray, tree.FamilyTable, tree.FamilyContainer} {
			var specs []string
			if fam == tree.FamilyContainer {
				specs = []string{SpecXarrayDataset}
			}
			c, err := Negotiate(fam, specs, []string{accept}, format)
			var he *httperr.Error
			if err != nil {
				if !errors.As(err, &he) || he.Status != 406 {
					t.Fatalf("%q %q: %v", accept, format, err)
				}
				continue
			}
			found := false
			for _, mt := range Formats()[c.Kind] {
				found = found || mt == c.MediaType
			}
			if !found {
				t.Fatalf("%q %q: chose %q, not offered for %s", accept, format, c.MediaType, fam)
			}
		}
	})
}
