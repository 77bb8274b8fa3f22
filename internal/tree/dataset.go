package tree

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The specs Tiled gives the children of an xarray dataset
// (DatasetAdapter.from_dataset).
const (
	SpecXarrayDataVar = "xarray_data_var"
	SpecXarrayCoord   = "xarray_coord"
)

// DatasetError is a dataset that cannot be made into a table.
type DatasetError struct{ Msg string }

func (e *DatasetError) Error() string { return e.Msg }

// DatasetFrame is the table Tiled serves for an xarray dataset: its
// as_dataset(node).to_dataframe(). Every variable runs along one shared
// dimension; the coordinate named after that dimension is the index, and
// the other variables are the columns, data variables before coordinates.
// fields, when not nil, selects the variables (Tiled's ?field=); a name
// that is not a child is a *NoSuchColumnError. index is nil when the
// dimension has no coordinate (pandas then has a RangeIndex, which pyarrow
// does not store as a column). Reads stop with ErrTooLarge beyond limit
// bytes (limit <= 0: no limit).
//
// xarray would also broadcast variables of different dimensions into the
// rows of a multi-index; such datasets are a *DatasetError here.
func DatasetFrame(ctx context.Context, c Container, fields []string, limit int64) (data *Frame, index []*Series, err error) {
	keys := c.Keys()
	if fields != nil {
		for _, f := range fields {
			if !slices.Contains(keys, f) {
				return nil, nil, &NoSuchColumnError{Name: f}
			}
		}
		keys = fields
	}
	type variable struct {
		name  string
		coord bool
		a     Array
	}
	var vars []variable
	dim, length := "", -1
	for _, k := range keys {
		n, _ := c.Child(k)
		a, ok := n.(Array)
		if !ok {
			return nil, nil, &DatasetError{"Child nodes of xarray_dataset should include spec 'xarray_coord' or 'xarray_data_var'."}
		}
		v := variable{name: k, a: a}
		switch {
		case hasSpec(n, SpecXarrayCoord):
			v.coord = true
		case !hasSpec(n, SpecXarrayDataVar):
			return nil, nil, &DatasetError{"Child nodes of xarray_dataset should include spec 'xarray_coord' or 'xarray_data_var'."}
		}
		st := a.Structure()
		d := "dim_0"
		if len(st.Dims) == 1 {
			d = st.Dims[0]
		}
		if len(st.Shape) != 1 || (dim != "" && (d != dim || st.Shape[0] != length)) {
			return nil, nil, &DatasetError{fmt.Sprintf(
				"This dataset cannot be served as a table: its variables do not all run along one dimension "+
					"(%q has dimensions %v and shape %v). Read the variables one by one as arrays.", k, st.Dims, st.Shape)}
		}
		dim, length = d, st.Shape[0]
		vars = append(vars, v)
	}
	// Data variables first, then coordinates, in the container's order.
	slices.SortStableFunc(vars, func(a, b variable) int {
		switch {
		case a.coord == b.coord:
			return 0
		case b.coord:
			return -1
		}
		return 1
	})
	data = &Frame{}
	var used int64
	for _, v := range vars {
		nd, err := ReadSlice(ctx, v.a, nil, limit)
		if limit > 0 && err == nil && used+int64(len(nd.Data)) > limit {
			err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
		}
		if err != nil {
			return nil, nil, err
		}
		used += int64(len(nd.Data))
		s := SeriesOf(v.name, nd)
		if v.coord && v.name == dim {
			index = append(index, s)
		} else {
			data.Columns = append(data.Columns, s)
		}
	}
	return data, index, nil
}

func hasSpec(n Node, name string) bool {
	for _, s := range n.Specs() {
		if s.Name == name {
			return true
		}
	}
	return false
}

// SeriesOf makes a table column of a one-dimensional array, as pandas
// holds numpy data in a DataFrame: floats as float64, integers as int64
// (unsigned ones beyond int64 as float64), booleans as bool.
func SeriesOf(name string, a *NDArray) *Series {
	n := 0
	if len(a.Shape) > 0 {
		n = a.Shape[0]
	}
	item := a.DType.Itemsize
	raw := func(i int) []byte { return a.Data[i*item : (i+1)*item] }
	s := &Series{Column: Column{Name: name}}
	switch a.DType.Kind {
	case KindBool:
		s.Type = ColBool
		for i := 0; i < n; i++ {
			s.Bool = append(s.Bool, raw(i)[0] != 0)
		}
	case KindFloat:
		s.Type = ColFloat64
		for i := 0; i < n; i++ {
			if item == 4 {
				s.Float64 = append(s.Float64, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw(i)))))
			} else {
				s.Float64 = append(s.Float64, math.Float64frombits(binary.LittleEndian.Uint64(raw(i))))
			}
		}
	case KindInt:
		s.Type = ColInt64
		for i := 0; i < n; i++ {
			s.Int64 = append(s.Int64, signed(raw(i)))
		}
	case KindUint:
		s.Type = ColInt64
		vals := make([]uint64, n)
		for i := range vals {
			vals[i] = unsigned(raw(i))
			if vals[i] > math.MaxInt64 {
				s.Type = ColFloat64
			}
		}
		for _, v := range vals {
			if s.Type == ColFloat64 {
				s.Float64 = append(s.Float64, float64(v))
			} else {
				s.Int64 = append(s.Int64, int64(v))
			}
		}
	}
	return s
}

func signed(b []byte) int64 {
	switch len(b) {
	case 1:
		return int64(int8(b[0]))
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	}
	return int64(binary.LittleEndian.Uint64(b))
}

func unsigned(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}
