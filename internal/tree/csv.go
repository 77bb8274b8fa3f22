package tree

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// csvSampleBytes is how much of a CSV file column types are inferred from:
// Tiled reads CSV through dask.dataframe.read_csv, which infers dtypes from
// a 256000-byte sample and applies them to the whole file.
const csvSampleBytes = 256000

// csvNA are the cells pandas.read_csv reads as missing by default.
var csvNA = map[string]bool{
	"": true, "#N/A": true, "#N/A N/A": true, "#NA": true, "-1.#IND": true, "-1.#QNAN": true,
	"-NaN": true, "-nan": true, "1.#IND": true, "1.#QNAN": true, "<NA>": true, "N/A": true,
	"NA": true, "NULL": true, "NaN": true, "None": true, "n/a": true, "nan": true, "null": true,
}

var csvBools = map[string]bool{"True": true, "TRUE": true, "true": true, "False": false, "FALSE": false, "false": false}

func newCSVReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return cr
}

// csvHeader reads the header row and names the columns as pandas does:
// a UTF-8 byte order mark is dropped, empty names become "Unnamed: i" and a
// repeated name gets ".1", ".2", ... appended.
func csvHeader(cr *csv.Reader) ([]string, error) {
	rec, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("csv: no columns to parse from file")
	}
	if err != nil {
		return nil, fmt.Errorf("csv: header: %w", err)
	}
	names := make([]string, len(rec))
	seen := map[string]int{}
	for i, name := range rec {
		if i == 0 {
			name = strings.TrimPrefix(name, "\uFEFF")
		}
		if name == "" {
			name = "Unnamed: " + strconv.Itoa(i)
		}
		if n, dup := seen[name]; dup {
			seen[name] = n + 1
			name = name + "." + strconv.Itoa(n+1)
		}
		seen[name] = 0
		names[i] = name
	}
	return names, nil
}

// readRow reads the next row and its line number. A row longer than the
// header is an error, as in pandas' C parser ("Expected N fields in line L,
// saw M"); a shorter one is padded with missing values by the caller.
func readRow(cr *csv.Reader, width int) ([]string, int, error) {
	rec, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("csv: %w", err)
	}
	line, _ := cr.FieldPos(0)
	if len(rec) > width {
		return nil, 0, fmt.Errorf("csv: expected %d fields in line %d, saw %d", width, line, len(rec))
	}
	return rec, line, nil
}

// csvColumnGuess collects what the sampled cells of one column could be.
type csvColumnGuess struct {
	values, na                  int
	allBool, allInt, allNumeric bool
}

// InferCSV reads the header and a sample of a CSV file and returns its
// columns with the types pandas would give them: bool when every cell is a
// boolean literal, int64 when every cell is an integer, float64 when every
// cell is a number or missing (an integer column with gaps becomes float, as
// in pandas), string otherwise.
func InferCSV(r io.Reader) ([]Column, error) {
	cr := newCSVReader(r)
	names, err := csvHeader(cr)
	if err != nil {
		return nil, err
	}
	guesses := make([]csvColumnGuess, len(names))
	for i := range guesses {
		guesses[i] = csvColumnGuess{allBool: true, allInt: true, allNumeric: true}
	}
	for cr.InputOffset() < csvSampleBytes {
		rec, _, err := readRow(cr, len(names))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		for i := range names {
			g := &guesses[i]
			if i >= len(rec) || csvNA[rec[i]] {
				g.na++
				continue
			}
			g.values++
			v := rec[i]
			_, isBool := csvBools[v]
			g.allBool = g.allBool && isBool
			_, intErr := parseCSVInt(v)
			g.allInt = g.allInt && intErr == nil
			_, floatErr := parseCSVFloat(v)
			g.allNumeric = g.allNumeric && floatErr == nil
		}
	}
	cols := make([]Column, len(names))
	for i, g := range guesses {
		t := ColString
		switch {
		case g.values == 0 && g.na == 0:
			t = ColString // header only: pandas gives object columns
		case g.values == 0:
			t = ColFloat64 // every cell missing: pandas gives float NaN
		case g.allBool:
			t = ColBool
		case g.allInt && g.na == 0:
			t = ColInt64
		case g.allNumeric:
			t = ColFloat64
		}
		cols[i] = Column{Name: names[i], Type: t}
	}
	if err := checkColumnNames(cols); err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	return cols, nil
}

func parseCSVInt(v string) (int64, error) {
	return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
}

// parseCSVFloat accepts decimal and exponent notation and infinities, as
// pandas' parser does, but not Go's extras (hex floats, underscores).
func parseCSVFloat(v string) (float64, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(strings.TrimLeft(v, "+-")) {
	case "inf", "infinity":
		return strconv.ParseFloat(v, 64)
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return 0, fmt.Errorf("not a number: %q", v)
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && errors.Is(err, strconv.ErrRange) {
		return f, nil // overflow to ±Inf or underflow to 0, as pandas reads them
	}
	return f, err
}

// ReadCSV reads a whole CSV file into a frame with the given column types
// (from InferCSV). A cell that does not fit its column's type is an error,
// as with dask when the sample misled its inference.
func ReadCSV(r io.Reader, cols []Column) (*Frame, error) {
	cr := newCSVReader(r)
	names, err := csvHeader(cr)
	if err != nil {
		return nil, err
	}
	if len(names) != len(cols) {
		return nil, fmt.Errorf("csv: header has %d columns, expected %d; has the file changed?", len(names), len(cols))
	}
	f := &Frame{}
	for _, c := range cols {
		f.Columns = append(f.Columns, &Series{Column: c})
	}
	for {
		rec, line, err := readRow(cr, len(cols))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		for i, s := range f.Columns {
			cell := ""
			if i < len(rec) {
				cell = rec[i]
			}
			if err := appendCell(s, cell); err != nil {
				return nil, fmt.Errorf("csv: line %d, column %q: %w (types were inferred from the first %d bytes)",
					line, s.Name, err, csvSampleBytes)
			}
		}
	}
	for _, s := range f.Columns {
		if !anyTrue(s.Null) {
			s.Null = nil
		}
	}
	return f, nil
}

func appendCell(s *Series, cell string) error {
	missing := csvNA[cell]
	s.Null = append(s.Null, missing)
	switch s.Type {
	case ColFloat64:
		v := math.NaN()
		if !missing {
			var err error
			if v, err = parseCSVFloat(cell); err != nil {
				return err
			}
		}
		s.Float64 = append(s.Float64, v)
	case ColInt64:
		if missing {
			return errors.New("missing value in an integer column")
		}
		v, err := parseCSVInt(cell)
		if err != nil {
			return fmt.Errorf("%q is not an integer", cell)
		}
		s.Int64 = append(s.Int64, v)
	case ColBool:
		v, ok := csvBools[cell]
		if !ok && !missing {
			return fmt.Errorf("%q is not a boolean", cell)
		}
		s.Bool = append(s.Bool, v)
	default:
		if missing {
			cell = ""
		}
		s.String = append(s.String, cell)
	}
	return nil
}

func anyTrue(v []bool) bool {
	for _, b := range v {
		if b {
			return true
		}
	}
	return false
}

// csvTable is a CSV file served as a one-partition table (Tiled's
// CSVAdapter over a single file). The structure is inferred when the
// directory is scanned; the rows are read from disk on each request.
type csvTable struct {
	base
	path string
	st   TableStructure
}

func openCSV(path string) (*csvTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cols, err := InferCSV(bufio.NewReader(f))
	if err != nil {
		return nil, err
	}
	return &csvTable{path: path, st: TableStructure{Columns: cols, NPartitions: 1}}, nil
}

// Family implements Node.
func (t *csvTable) Family() Family { return FamilyTable }

// Structure implements Table.
func (t *csvTable) Structure() TableStructure { return t.st }

// ReadPartition implements Table.
func (t *csvTable) ReadPartition(ctx context.Context, i int) (*Frame, error) {
	if i != 0 {
		return nil, ErrPartitionRange
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ReadCSV(bytes.NewReader(data), t.st.Columns)
}
