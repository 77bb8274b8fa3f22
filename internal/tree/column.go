package tree

import (
	"context"
	"fmt"
	"math"
)

// ColumnTypeError is a column that has no fixed-size array type: strings,
// and booleans with missing values (pandas holds both as Python objects,
// which Tiled refuses to serve as arrays unless TILED_ALLOW_OBJECT_ARRAYS
// is set, and then answers 500).
type ColumnTypeError struct {
	Column string
	Type   ColumnType
}

func (e *ColumnTypeError) Error() string {
	what := "strings"
	if e.Type == ColBool {
		what = "booleans with missing values"
	}
	return fmt.Sprintf("Column %q holds %s, which have no fixed-size array type; read it as part of the table instead", e.Column, what)
}

// ColumnArray reads one column of t as a one-dimensional array, as Tiled's
// TableAdapter.__getitem__ does (ArrayAdapter.from_array of the column's
// values): float64 columns as float64, with missing values as NaN; int64
// columns as int64, or as float64 with NaN when values are missing (what
// pandas makes of them); booleans as numpy bools. A name that is not a
// column gives ErrNotFound.
func ColumnArray(ctx context.Context, t Table, name string) (Array, error) {
	var col *Column
	for _, c := range t.Structure().Columns {
		if c.Name == name {
			col = &c
			break
		}
	}
	if col == nil {
		return nil, fmt.Errorf("%w: no column %q", ErrNotFound, name)
	}
	f, err := ReadTable(ctx, t, []string{name})
	if err != nil {
		return nil, err
	}
	s := f.Columns[0]
	nulls := s.Null != nil && anyTrue(s.Null)
	info := Info{}
	n := s.Len()
	switch {
	case s.Type == ColFloat64:
		return NewArray(info, Float64, []int{n}, nil, Float64Bytes(withNaN(s.Float64, s.Null)...))
	case s.Type == ColInt64 && nulls:
		v := make([]float64, n)
		for i, x := range s.Int64 {
			v[i] = float64(x)
		}
		return NewArray(info, Float64, []int{n}, nil, Float64Bytes(withNaN(v, s.Null)...))
	case s.Type == ColInt64:
		return NewArray(info, Int64, []int{n}, nil, Int64Bytes(s.Int64...))
	case s.Type == ColBool && !nulls:
		return NewArray(info, Bool, []int{n}, nil, BoolBytes(s.Bool...))
	}
	return nil, &ColumnTypeError{Column: name, Type: s.Type}
}

func withNaN(v []float64, null []bool) []float64 {
	if null == nil {
		return v
	}
	out := append([]float64(nil), v...)
	for i, isNull := range null {
		if isNull {
			out[i] = math.NaN()
		}
	}
	return out
}
