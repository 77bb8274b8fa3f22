package serialize

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/xuri/excelize/v2"

	"github.com/tiledgo/server/internal/tree"
)

// Table encodes table data in the chosen media type:
//   - application/vnd.apache.arrow.file: an Arrow IPC file, what the Python
//     client asks for;
//   - application/x-parquet: a Parquet file of the same Arrow schema;
//   - text/csv and its aliases: pandas' to_csv(index=False), with a header
//     row unless the media type says header=absent;
//   - text/html: pandas' to_html(index=False);
//   - the XLSX type: a workbook of one sheet, as pandas' to_excel(index=False);
//   - application/json: {"column": [values, ...], ...} as Tiled writes it
//     with orjson, missing values as null;
//   - application/json-seq: one JSON object per row, newline-separated.
//
// index are index columns (an xarray dataset's dimension coordinates):
// Arrow and Parquet carry them after the data columns, as pyarrow's
// from_pandas(preserve_index=True) does; the other formats leave them out,
// as Tiled's index=False and its JSON of the data columns do.
func Table(c Choice, f *tree.Frame, index ...*tree.Series) ([]byte, error) {
	withIndex := &tree.Frame{Columns: append(append([]*tree.Series(nil), f.Columns...), index...)}
	switch c.MediaType {
	case Arrow:
		return arrowFile(withIndex)
	case Parquet:
		return parquetFile(withIndex)
	case CSV, CSVAlt, CSVOld, Plain, Excel:
		return tableCSV(f, c.Params["header"] != "absent"), nil
	case HTML:
		return tableHTML(f), nil
	case XLSX:
		return tableXLSX(f)
	case JSON:
		return tableJSON(f), nil
	case JSONSeq:
		return tableJSONSeq(f), nil
	}
	return nil, fmt.Errorf("serialize: no table encoder for %s", c.MediaType)
}

func arrowType(t tree.ColumnType) arrow.DataType {
	switch t {
	case tree.ColFloat64:
		return arrow.PrimitiveTypes.Float64
	case tree.ColInt64:
		return arrow.PrimitiveTypes.Int64
	case tree.ColBool:
		return arrow.FixedWidthTypes.Boolean
	default:
		return arrow.BinaryTypes.String
	}
}

// arrowSchema is the schema pyarrow.Table.from_pandas would give: nullable
// fields of the columns' types. (pyarrow also stores pandas' index
// metadata in the schema; the client does not need it.)
func arrowSchema(cols []tree.Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Type), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// arrowSchemaPrefix marks TableStructure.arrow_schema as a data URI
// (tiled/structures/table.py B64_ENCODED_PREFIX).
const arrowSchemaPrefix = "data:application/vnd.apache.arrow.file;base64,"

// ArrowSchema is TableStructure.arrow_schema: the Arrow IPC schema message
// (what pyarrow's Schema.serialize() writes), base64-encoded behind a data
// URI prefix. The client decodes it with pyarrow.ipc.read_schema.
func ArrowSchema(cols []tree.Column) (string, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(arrowSchema(cols)))
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("serialize: arrow schema: %w", err)
	}
	// The stream ends with an end-of-stream marker (continuation token and
	// zero length), which Schema.serialize() does not write.
	msg := bytes.TrimSuffix(buf.Bytes(), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	return arrowSchemaPrefix + base64.StdEncoding.EncodeToString(msg), nil
}

// valid is Arrow's validity: not missing, and for floats not NaN (pyarrow
// turns pandas' NaN into null).
func valid(s *tree.Series) []bool {
	out := make([]bool, s.Len())
	for i := range out {
		out[i] = !s.IsNull(i) && !(s.Type == tree.ColFloat64 && math.IsNaN(s.Float64[i]))
	}
	return out
}

// arrowRecord builds one record batch of the frame.
func arrowRecord(f *tree.Frame) (*arrow.Schema, arrow.RecordBatch) {
	cols := make([]tree.Column, len(f.Columns))
	for i, s := range f.Columns {
		cols[i] = s.Column
	}
	schema := arrowSchema(cols)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, s := range f.Columns {
		switch fb := b.Field(i).(type) {
		case *array.Float64Builder:
			fb.AppendValues(s.Float64, valid(s))
		case *array.Int64Builder:
			fb.AppendValues(s.Int64, valid(s))
		case *array.BooleanBuilder:
			fb.AppendValues(s.Bool, valid(s))
		case *array.StringBuilder:
			fb.AppendValues(s.String, valid(s))
		}
	}
	return schema, b.NewRecordBatch()
}

func arrowFile(f *tree.Frame) ([]byte, error) {
	schema, rec := arrowRecord(f)
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
	if err != nil {
		return nil, fmt.Errorf("serialize: arrow file: %w", err)
	}
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("serialize: arrow file: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("serialize: arrow file: %w", err)
	}
	return buf.Bytes(), nil
}

// parquetFile writes the frame as pyarrow's ParquetWriter does: one row
// group, the Arrow schema stored in the file's metadata so that readers
// get the same column types back.
func parquetFile(f *tree.Frame) ([]byte, error) {
	schema, rec := arrowRecord(f)
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("serialize: parquet: %w", err)
	}
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("serialize: parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("serialize: parquet: %w", err)
	}
	return buf.Bytes(), nil
}

// tableHTML writes what pandas' DataFrame.to_html(index=False) writes. Cells
// are Python's str of each value (pandas aligns the digits of a float
// column to a common precision, which this does not), missing values NaN.
func tableHTML(f *tree.Frame) []byte {
	var b bytes.Buffer
	b.WriteString("<table border=\"1\" class=\"dataframe\">\n  <thead>\n    <tr style=\"text-align: right;\">\n")
	for _, s := range f.Columns {
		b.WriteString("      <th>" + html.EscapeString(s.Name) + "</th>\n")
	}
	b.WriteString("    </tr>\n  </thead>\n  <tbody>\n")
	for r := 0; r < f.Rows(); r++ {
		b.WriteString("    <tr>\n")
		for _, s := range f.Columns {
			v, ok := cell(s, r, true)
			if !ok {
				v = "NaN"
			}
			b.WriteString("      <td>" + html.EscapeString(v) + "</td>\n")
		}
		b.WriteString("    </tr>\n")
	}
	b.WriteString("  </tbody>\n</table>")
	return b.Bytes()
}

// tableXLSX writes a workbook with one sheet, "Sheet1", as pandas'
// to_excel(index=False): a header row of the column names, then a row per
// record; numbers and booleans as such, missing values as empty cells.
func tableXLSX(f *tree.Frame) ([]byte, error) {
	x := excelize.NewFile()
	defer x.Close()
	const sheet = "Sheet1"
	sw, err := x.NewStreamWriter(sheet)
	if err != nil {
		return nil, fmt.Errorf("serialize: xlsx: %w", err)
	}
	row := make([]any, len(f.Columns))
	for i, s := range f.Columns {
		row[i] = excelize.Cell{Value: s.Name}
	}
	if err := sw.SetRow("A1", row); err != nil {
		return nil, fmt.Errorf("serialize: xlsx: %w", err)
	}
	for r := 0; r < f.Rows(); r++ {
		for i, s := range f.Columns {
			row[i] = xlsxValue(s, r)
		}
		axis, _ := excelize.CoordinatesToCellName(1, r+2)
		if err := sw.SetRow(axis, row); err != nil {
			return nil, fmt.Errorf("serialize: xlsx: %w", err)
		}
	}
	if err := sw.Flush(); err != nil {
		return nil, fmt.Errorf("serialize: xlsx: %w", err)
	}
	var buf bytes.Buffer
	if err := x.Write(&buf); err != nil {
		return nil, fmt.Errorf("serialize: xlsx: %w", err)
	}
	return buf.Bytes(), nil
}

func xlsxValue(s *tree.Series, r int) any {
	if s.IsNull(r) {
		return nil
	}
	switch s.Type {
	case tree.ColFloat64:
		v := s.Float64[r]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil // pandas writes NaN as na_rep "" and refuses inf
		}
		return v
	case tree.ColInt64:
		return s.Int64[r]
	case tree.ColBool:
		return s.Bool[r]
	}
	return s.String[r]
}

// cell formats row i of s; py selects pandas' CSV spelling, else JSON's.
// ok is false for a missing value.
func cell(s *tree.Series, i int, py bool) (string, bool) {
	if s.IsNull(i) {
		return "", false
	}
	switch s.Type {
	case tree.ColFloat64:
		v := s.Float64[i]
		if math.IsNaN(v) {
			return "", false
		}
		if py {
			return PyFloat(v, 64), true
		}
		return JSONFloat(v, 64), true
	case tree.ColInt64:
		return strconv.FormatInt(s.Int64[i], 10), true
	case tree.ColBool:
		if !py {
			return strconv.FormatBool(s.Bool[i]), true
		}
		if s.Bool[i] {
			return "True", true
		}
		return "False", true
	default:
		if py {
			return s.String[i], true
		}
		return jsonString(s.String[i]), true
	}
}

// tableCSV writes what pandas' to_csv(index=False) writes: missing values
// as empty cells, Python's csv quoting (QUOTE_MINIMAL) and "\n" line ends.
func tableCSV(f *tree.Frame, header bool) []byte {
	var b bytes.Buffer
	row := make([]string, len(f.Columns))
	if header {
		for i, s := range f.Columns {
			row[i] = s.Name
		}
		writeCSVRow(&b, row)
	}
	for r := 0; r < f.Rows(); r++ {
		for i, s := range f.Columns {
			row[i], _ = cell(s, r, true)
		}
		writeCSVRow(&b, row)
	}
	return b.Bytes()
}

// writeCSVRow quotes a field when it holds the delimiter, a quote or a line
// break, doubling quotes inside; a row that is one empty field is written
// as "" so that it is not a blank line (Python's csv module does both).
func writeCSVRow(b *bytes.Buffer, fields []string) {
	if len(fields) == 1 && fields[0] == "" {
		b.WriteString("\"\"\n")
		return
	}
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		if strings.ContainsAny(f, ",\"\r\n") {
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(f, `"`, `""`))
			b.WriteByte('"')
		} else {
			b.WriteString(f)
		}
	}
	b.WriteByte('\n')
}

func tableJSON(f *tree.Frame) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, s := range f.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(s.Name))
		b.WriteString(":[")
		for r := 0; r < s.Len(); r++ {
			if r > 0 {
				b.WriteByte(',')
			}
			writeJSONCell(&b, s, r)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes()
}

func tableJSONSeq(f *tree.Frame) []byte {
	var b bytes.Buffer
	for r := 0; r < f.Rows(); r++ {
		if r > 0 {
			b.WriteByte('\n')
		}
		b.WriteByte('{')
		for i, s := range f.Columns {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(s.Name))
			b.WriteByte(':')
			writeJSONCell(&b, s, r)
		}
		b.WriteByte('}')
	}
	return b.Bytes()
}

func writeJSONCell(b *bytes.Buffer, s *tree.Series, r int) {
	if v, ok := cell(s, r, false); ok {
		b.WriteString(v)
	} else {
		b.WriteString("null")
	}
}
