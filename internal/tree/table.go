package tree

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ColumnType is the type of a table column.
type ColumnType string

// The column types this server stores; they map one to one onto Arrow
// types (float64, int64, bool, utf8).
const (
	ColFloat64 ColumnType = "float64"
	ColInt64   ColumnType = "int64"
	ColBool    ColumnType = "bool"
	ColString  ColumnType = "string"
)

// Column describes one column.
type Column struct {
	Name string
	Type ColumnType
}

// TableStructure is the shape of a table: its columns and how many
// partitions (contiguous blocks of rows) it is read in.
type TableStructure struct {
	Columns     []Column
	NPartitions int
}

// Names lists the column names in order.
func (s TableStructure) Names() []string {
	out := make([]string, len(s.Columns))
	for i, c := range s.Columns {
		out[i] = c.Name
	}
	return out
}

// Table is a node holding a table.
type Table interface {
	Node
	Structure() TableStructure
	// ReadPartition returns partition i (0 <= i < NPartitions) with every
	// column.
	ReadPartition(ctx context.Context, i int) (*Frame, error)
}

// Series is the data of one column. Exactly the slice of its type is set;
// Null, when not nil, marks missing values (Arrow nulls, empty CSV cells).
type Series struct {
	Column
	Float64 []float64
	Int64   []int64
	Bool    []bool
	String  []string
	Null    []bool
}

// Len is the number of rows.
func (s *Series) Len() int {
	switch s.Type {
	case ColFloat64:
		return len(s.Float64)
	case ColInt64:
		return len(s.Int64)
	case ColBool:
		return len(s.Bool)
	default:
		return len(s.String)
	}
}

// IsNull reports whether row i is missing.
func (s *Series) IsNull(i int) bool { return s.Null != nil && s.Null[i] }

// Frame is table data: columns of equal length.
type Frame struct {
	Columns []*Series
}

// Rows is the number of rows.
func (f *Frame) Rows() int {
	if len(f.Columns) == 0 {
		return 0
	}
	return f.Columns[0].Len()
}

// Bytes estimates the memory the frame holds, for response size limits
// (Tiled compares DataFrame.memory_usage() to its limit).
func (f *Frame) Bytes() int64 {
	var n int64
	for _, c := range f.Columns {
		switch c.Type {
		case ColBool:
			n += int64(len(c.Bool))
		case ColString:
			for _, s := range c.String {
				n += int64(len(s)) + 16
			}
		default:
			n += 8 * int64(c.Len())
		}
	}
	return n
}

// Errors of reading a table. Tiled answers both with 400: "Partition out
// of range" and "No such field {key}.".
var ErrPartitionRange = errors.New("Partition out of range")

// NoSuchColumnError names a requested column the table does not have.
type NoSuchColumnError struct{ Name string }

func (e *NoSuchColumnError) Error() string { return fmt.Sprintf("No such field %s.", e.Name) }

// ReadPartition reads partition i of t, optionally only some columns (in
// the order asked). A negative i counts from the end, as Python indexing
// does in Tiled's adapters.
func ReadPartition(ctx context.Context, t Table, i int, columns []string) (*Frame, error) {
	n := t.Structure().NPartitions
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		return nil, ErrPartitionRange
	}
	if err := checkColumns(t.Structure(), columns); err != nil {
		return nil, err
	}
	f, err := t.ReadPartition(ctx, i)
	if err != nil {
		return nil, err
	}
	return f.Select(columns)
}

// ReadTable reads every partition of t, concatenated.
func ReadTable(ctx context.Context, t Table, columns []string) (*Frame, error) {
	st := t.Structure()
	if err := checkColumns(st, columns); err != nil {
		return nil, err
	}
	var parts []*Frame
	for i := 0; i < st.NPartitions; i++ {
		f, err := t.ReadPartition(ctx, i)
		if err != nil {
			return nil, err
		}
		if f, err = f.Select(columns); err != nil {
			return nil, err
		}
		parts = append(parts, f)
	}
	return concat(st, columns, parts), nil
}

func checkColumns(st TableStructure, columns []string) error {
	have := map[string]bool{}
	for _, c := range st.Columns {
		have[c.Name] = true
	}
	for _, c := range columns {
		if !have[c] {
			return &NoSuchColumnError{Name: c}
		}
	}
	return nil
}

// Select returns the frame with only the named columns, in that order; nil
// names keep every column.
func (f *Frame) Select(names []string) (*Frame, error) {
	if names == nil {
		return f, nil
	}
	out := &Frame{}
	for _, name := range names {
		var found *Series
		for _, c := range f.Columns {
			if c.Name == name {
				found = c
				break
			}
		}
		if found == nil {
			return nil, &NoSuchColumnError{Name: name}
		}
		out.Columns = append(out.Columns, found)
	}
	return out, nil
}

func concat(st TableStructure, names []string, parts []*Frame) *Frame {
	cols := st.Columns
	if names != nil {
		cols = nil
		for _, n := range names {
			for _, c := range st.Columns {
				if c.Name == n {
					cols = append(cols, c)
					break
				}
			}
		}
	}
	out := &Frame{}
	for i, c := range cols {
		s := &Series{Column: c}
		anyNull := false
		for _, p := range parts {
			anyNull = anyNull || p.Columns[i].Null != nil
		}
		for _, p := range parts {
			src := p.Columns[i]
			s.Float64 = append(s.Float64, src.Float64...)
			s.Int64 = append(s.Int64, src.Int64...)
			s.Bool = append(s.Bool, src.Bool...)
			s.String = append(s.String, src.String...)
			if anyNull {
				if src.Null != nil {
					s.Null = append(s.Null, src.Null...)
				} else {
					s.Null = append(s.Null, make([]bool, src.Len())...)
				}
			}
		}
		out.Columns = append(out.Columns, s)
	}
	return out
}

// checkColumnNames applies Tiled's TableStructure rule: names are unique
// and do not start with "_" (reserved for Tiled's internal use).
func checkColumnNames(cols []Column) error {
	seen := map[string]bool{}
	for _, c := range cols {
		if strings.HasPrefix(c.Name, "_") {
			return fmt.Errorf("column %q: Tiled reserved column names starting with '_' for internal use", c.Name)
		}
		if seen[c.Name] {
			return fmt.Errorf("duplicate column name %q", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// MemTable is a table held in memory as a list of partitions.
type MemTable struct {
	base
	st    TableStructure
	parts []*Frame
}

// NewTable builds an in-memory table; every partition must have the
// structure's columns in order.
func NewTable(info Info, cols []Column, parts ...*Frame) (*MemTable, error) {
	if err := checkColumnNames(cols); err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, errors.New("a table needs at least one partition")
	}
	for i, p := range parts {
		if len(p.Columns) != len(cols) {
			return nil, fmt.Errorf("partition %d has %d columns, want %d", i, len(p.Columns), len(cols))
		}
		for j, s := range p.Columns {
			if s.Column != cols[j] {
				return nil, fmt.Errorf("partition %d column %d is %v, want %v", i, j, s.Column, cols[j])
			}
			if s.Len() != p.Rows() || (s.Null != nil && len(s.Null) != s.Len()) {
				return nil, fmt.Errorf("partition %d has columns of different lengths", i)
			}
		}
	}
	return &MemTable{base: base{info}, st: TableStructure{Columns: cols, NPartitions: len(parts)}, parts: parts}, nil
}

// Family implements Node.
func (t *MemTable) Family() Family { return FamilyTable }

// Structure implements Table.
func (t *MemTable) Structure() TableStructure { return t.st }

// ReadPartition implements Table.
func (t *MemTable) ReadPartition(_ context.Context, i int) (*Frame, error) {
	if i < 0 || i >= len(t.parts) {
		return nil, ErrPartitionRange
	}
	return t.parts[i], nil
}
