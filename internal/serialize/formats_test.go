package serialize

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/png"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/parquet-go/parquet-go"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/xuri/excelize/v2"

	"github.com/tiledgo/server/internal/tree"
)

// TestTableHTML pins pandas' to_html(index=False) layout.
func TestTableHTML(t *testing.T) {
	f := &tree.Frame{Columns: []*tree.Series{
		{Column: tree.Column{Name: "a<b", Type: tree.ColFloat64}, Float64: []float64{1, 0}, Null: []bool{false, true}},
		{Column: tree.Column{Name: "s", Type: tree.ColString}, String: []string{"x&y", "z"}},
	}}
	got, err := Table(Choice{MediaType: HTML}, f)
	if err != nil {
		t.Fatal(err)
	}
	want := `<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;">
      <th>a&lt;b</th>
      <th>s</th>
    </tr>
  </thead>
  <tbody>
    <tr>
      <td>1.0</td>
      <td>x&amp;y</td>
    </tr>
    <tr>
      <td>NaN</td>
      <td>z</td>
    </tr>
  </tbody>
</table>`
	if string(got) != want {
		t.Errorf("html:\n%s\nwant\n%s", got, want)
	}
}

// TestTableXLSX reads the workbook back with excelize.
func TestTableXLSX(t *testing.T) {
	got, err := Table(Choice{MediaType: XLSX}, mixedFrame())
	if err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if sheets := x.GetSheetList(); !reflect.DeepEqual(sheets, []string{"Sheet1"}) {
		t.Errorf("sheets %v", sheets)
	}
	rows, err := x.GetRows("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"f", "i", "b", "s,q"}, {"1.5", "1", "TRUE", `say "hi"`}, {"", "-2", "FALSE"}, {"100000000000000000000", "3", "TRUE", "a\nb"}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %q, want %q", rows, want)
	}
	// Numbers are stored as numbers (no string type), so formulas work on them.
	if typ, _ := x.GetCellType("Sheet1", "A2"); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
		t.Errorf("A2 is stored as text")
	}
}

// TestTableParquet reads the file back with parquet-go, an implementation
// independent of the Arrow library that wrote it.
func TestTableParquet(t *testing.T) {
	got, err := Table(Choice{MediaType: Parquet}, mixedFrame())
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(got), int64(len(got)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range pf.Schema().Fields() {
		names = append(names, f.Name())
	}
	if !reflect.DeepEqual(names, []string{"f", "i", "b", "s,q"}) || pf.NumRows() != 3 {
		t.Fatalf("columns %v, %d rows", names, pf.NumRows())
	}
	rows := make([]parquet.Row, 3)
	r := parquet.NewReader(pf)
	n, err := r.ReadRows(rows)
	if n != 3 || (err != nil && err != io.EOF) {
		t.Fatalf("read %d rows: %v", n, err)
	}
	if v := rows[0][0]; v.Double() != 1.5 || !rows[1][0].IsNull() || rows[2][1].Int64() != 3 || !rows[0][2].Boolean() ||
		string(rows[2][3].ByteArray()) != "a\nb" || !rows[1][3].IsNull() {
		t.Errorf("rows %v", rows)
	}
}

// TestDatasetArrow: an xarray dataset's index coordinate comes after the
// data columns in Arrow (pyarrow's preserve_index) and is left out of CSV.
func TestDatasetTable(t *testing.T) {
	d := lookup(t, "D").(tree.Container)
	data, index, err := tree.DatasetFrame(context.Background(), d, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Table(Choice{MediaType: Arrow}, data, index...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewFileReader(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.RecordBatch(0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.NumCols() != 2 || rec.ColumnName(0) != "temperature" || rec.ColumnName(1) != "time" {
		t.Fatalf("columns %v", rec.Schema())
	}
	if v := rec.Column(0).(*array.Int64).Int64Values(); !reflect.DeepEqual(v, []int64{100, 99, 98}) {
		t.Errorf("temperature %v", v)
	}
	if v := rec.Column(1).(*array.Int64).Int64Values(); !reflect.DeepEqual(v, []int64{1, 2, 3}) {
		t.Errorf("time %v", v)
	}
	for mt, want := range map[string]string{CSV: "temperature\n100\n99\n98\n", JSON: `{"temperature":[100,99,98]}`} {
		got, err := Table(Choice{MediaType: mt}, data, index...)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q %v, want %q", mt, got, err, want)
		}
	}
	// Only the coordinate: the client's coordinate fetch.
	data, index, err = tree.DatasetFrame(context.Background(), d, []string{"time"}, 0)
	if err != nil || len(data.Columns) != 0 || len(index) != 1 || index[0].Name != "time" {
		t.Errorf("time only: %v %v %v", data, index, err)
	}
}

// TestArrayImages decodes the PNG Tiled's scaling makes, and the HTML page
// that inlines it or falls back to CSV.
func TestArrayImages(t *testing.T) {
	grid := ndarray(t, lookup(t, "nested", "grid").(tree.Array), "") // int32 0..11 in 3x4
	got, err := Array(Choice{MediaType: PNG}, grid)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	gray, ok := img.(*image.Gray)
	if !ok || gray.Bounds().Dx() != 4 || gray.Bounds().Dy() != 3 {
		t.Fatalf("image %T %v", img, img.Bounds())
	}
	// percentiles 1 and 99 of 0..11 are 0.11 and 10.89; rint(255*(v-0.11)/10.78), clipped.
	want := []uint8{0, 21, 45, 68, 92, 116, 139, 163, 187, 210, 234, 255}
	if !reflect.DeepEqual(gray.Pix, want) {
		t.Errorf("pixels %v, want %v", gray.Pix, want)
	}
	page, err := Array(Choice{MediaType: HTML}, grid)
	if err != nil || !strings.HasPrefix(string(page), `<html><body><img src="data:image/png;base64,`) ||
		!strings.HasSuffix(string(page), `"/></body></html>`) {
		t.Fatalf("html %.80s %v", page, err)
	}
	b64 := strings.TrimSuffix(strings.TrimPrefix(string(page), `<html><body><img src="data:image/png;base64,`), `"/></body></html>`)
	if raw, err := base64.StdEncoding.DecodeString(b64); err != nil || !bytes.Equal(raw, got) {
		t.Errorf("inline image differs from the PNG: %v", err)
	}
	// A constant array scales 0/0: black, as numpy's NaN to uint8.
	a := ndarray(t, lookup(t, "A").(tree.Array), "0:2,0:3")
	got, err = Array(Choice{MediaType: PNG}, a)
	if err != nil {
		t.Fatal(err)
	}
	img, _ = png.Decode(bytes.NewReader(got))
	if g := img.(*image.Gray); !reflect.DeepEqual(g.Pix, make([]uint8, 6)) {
		t.Errorf("ones: %v", g.Pix)
	}
	// B is 3-D with 100 values on its last axis: no image, and no CSV either.
	b := ndarray(t, lookup(t, "B").(tree.Array), "0:2,0:2")
	if _, err := Array(Choice{MediaType: PNG}, b); err == nil || !strings.Contains(err.Error(),
		"Failed to serialize this array as png. Shape is (2, 2, 100), dtype is float32.") {
		t.Errorf("3-D png: %v", err)
	}
	if _, err := Array(Choice{MediaType: HTML}, b); err == nil || !strings.Contains(err.Error(), "The shape of this data (2, 2, 100) is incompatible with the requested format (text/html)") {
		t.Errorf("3-D html: %v", err)
	}
}

// TestMsgpackFromJSON decodes the transcoded document with the msgpack
// library: key order, integer and float kinds, nesting.
func TestMsgpackFromJSON(t *testing.T) {
	got, err := MsgpackFromJSON([]byte(`{"b":1,"a":[1.0,-2,1e20,18446744073709551615,"s",null,true],"c":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(got))
	n, err := dec.DecodeMapLen()
	if err != nil || n != 3 {
		t.Fatalf("map of %d: %v", n, err)
	}
	if k, _ := dec.DecodeString(); k != "b" {
		t.Errorf("first key %q, want b (order kept)", k)
	}
	if v, _ := dec.DecodeInterface(); v != int8(1) {
		t.Errorf("b = %T %v", v, v)
	}
	if k, _ := dec.DecodeString(); k != "a" {
		t.Errorf("second key %q", k)
	}
	list, err := dec.DecodeInterface()
	want := []any{1.0, int8(-2), 1e20, uint64(18446744073709551615), "s", nil, true}
	if err != nil || !reflect.DeepEqual(list, want) {
		t.Errorf("a = %#v, want %#v (%v)", list, want, err)
	}
	if _, err := MsgpackFromJSON([]byte(`{"a":1} x`)); err == nil {
		t.Error("trailing data accepted")
	}
}
