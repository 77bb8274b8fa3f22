package tree

// Demo returns the counterpart of Tiled's example tree
// tiled.examples.generated_minimal:tree, entry for entry, so that responses
// match Tiled's byte for byte (the root's count included):
//
//	A  ones((100, 100)) float64
//	B  ones((100, 100, 100)) float64, computed on read
//	C  a table x=1.0, y=2.0, z=3.0, 100 rows in 3 partitions of 34, 33
//	   and 33 rows, as dask divides them (spec dataframe)
//	D  an xarray dataset: data variable "temperature" [100, 99, 98] and
//	   coordinate "time" [1, 2, 3], both int64 (spec xarray_dataset)
func Demo() Container {
	return must(NewMap(Info{Metadata: map[string]any{"thing": "stuff"}}, generatedMinimal()...))
}

// ExtendedDemo is Demo plus one entry of our own, "nested": containers
// inside containers, with metadata, and bool, int32 and float64 arrays of
// one and two dimensions.
func ExtendedDemo() Container {
	return must(NewMap(Info{Metadata: map[string]any{"thing": "stuff"}},
		append(generatedMinimal(), Entry{"nested", nested()})...))
}

func generatedMinimal() []Entry {
	one := Float64Bytes(1)
	a := must(NewFilledArray(Info{}, Float64, []int{100, 100}, one))
	b := must(NewFilledArray(Info{}, Float64, []int{100, 100, 100}, one))

	// dask.dataframe.from_dict(..., npartitions=3) cuts the 100 rows at
	// 0, 34, 67, 100 (DaskDivisions).
	cols := []Column{{"x", ColFloat64}, {"y", ColFloat64}, {"z", ColFloat64}}
	var parts []*Frame
	div := DaskDivisions(100, 3)
	for p := 1; p < len(div); p++ {
		rows := div[p] - div[p-1]
		f := &Frame{}
		for i, c := range cols {
			v := make([]float64, rows)
			for r := range v {
				v[r] = float64(i + 1)
			}
			f.Columns = append(f.Columns, &Series{Column: c, Float64: v})
		}
		parts = append(parts, f)
	}
	c := must(NewTable(Info{Specs: []Spec{{Name: "dataframe"}}}, cols, parts...))

	// DatasetAdapter.from_dataset: data variables first, then coordinates;
	// every node carries xarray's attrs under "attrs".
	attrs := func() map[string]any { return map[string]any{"attrs": map[string]any{}} }
	temperature := must(NewArray(Info{Metadata: attrs(), Specs: []Spec{{Name: "xarray_data_var"}}},
		Int64, []int{3}, []string{"time"}, Int64Bytes(100, 99, 98)))
	time := must(NewArray(Info{Metadata: attrs(), Specs: []Spec{{Name: "xarray_coord"}}},
		Int64, []int{3}, []string{"time"}, Int64Bytes(1, 2, 3)))
	d := must(NewMap(Info{Metadata: attrs(), Specs: []Spec{{Name: "xarray_dataset"}}},
		Entry{"temperature", temperature}, Entry{"time", time})).WithInlineContents()
	return []Entry{{"A", a}, {"B", b}, {"C", c}, {"D", d}}
}

func nested() Node {
	flags := must(NewArray(Info{Metadata: map[string]any{"unit": "boolean"}},
		Bool, []int{5}, nil, BoolBytes(true, false, true, true, false)))
	counts := make([]int32, 12)
	for i := range counts {
		counts[i] = int32(i)
	}
	grid := must(NewArray(Info{}, Int32, []int{3, 4}, nil, Int32Bytes(counts...)))
	values := must(NewArray(Info{}, Float64, []int{4}, nil, Float64Bytes(0.5, 1.25, -3, 1e-7)))
	deeper := must(NewMap(Info{Metadata: map[string]any{"level": 2, "note": "a container inside a container"}},
		Entry{"values", values}))
	return must(NewMap(Info{Metadata: map[string]any{"level": 1, "description": "nested containers and other data types"}},
		Entry{"flags", flags}, Entry{"grid", grid}, Entry{"deeper", deeper}))
}

// must is for Demo only, whose fixed inputs cannot fail; a failure is a
// programming error in this file, caught by its tests.
func must[T any](v T, err error) T {
	if err != nil {
		panic("tree: demo construction: " + err.Error())
	}
	return v
}
