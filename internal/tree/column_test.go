package tree

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestColumnArrays(t *testing.T) {
	// Tiled: client["C"]["x"] is an ArrayAdapter of the column's values.
	n, err := Lookup(t.Context(), Demo(), []string{"C", "y"})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := n.(Array)
	if !ok || a.Family() != FamilyArray {
		t.Fatalf("C/y is %T", n)
	}
	st := a.Structure()
	if st.DType != Float64 || !reflect.DeepEqual(st.Shape, []int{100}) || !reflect.DeepEqual(st.Chunks, [][]int{{100}}) || st.Dims != nil {
		t.Errorf("structure %+v", st)
	}
	nd, err := ReadSlice(t.Context(), a, nil, 0)
	if err != nil || !reflect.DeepEqual(nd.Data[:16], Float64Bytes(2, 2)) || len(nd.Data) != 800 {
		t.Errorf("data %v %v", len(nd.Data), err)
	}
	for _, p := range [][]string{{"C", "q"}, {"C", "x", "y"}} {
		if _, err := Lookup(t.Context(), Demo(), p); !errors.Is(err, ErrNotFound) {
			t.Errorf("%v: %v, want ErrNotFound", p, err)
		}
	}

	// Columns of a served CSV, with pandas' dtypes.
	dir := t.TempDir()
	csv := "i,gap,f,b,nb,s\n1,1,0.5,True,True,a\n2,,1.5,False,,b\n"
	if err := os.WriteFile(filepath.Join(dir, "t.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := FromDirectory(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		col   string
		dtype DType
		data  []byte
	}{
		{"i", Int64, Int64Bytes(1, 2)},
		{"gap", Float64, Float64Bytes(1, math.NaN())}, // pandas: an int column with gaps is float
		{"f", Float64, Float64Bytes(0.5, 1.5)},
		{"b", Bool, BoolBytes(true, false)},
	} {
		n, err := Lookup(t.Context(), root, []string{"t", tc.col})
		if err != nil {
			t.Errorf("%s: %v", tc.col, err)
			continue
		}
		a := n.(Array)
		nd, err := ReadSlice(t.Context(), a, nil, 0)
		if err != nil || a.Structure().DType != tc.dtype || !sameBits(nd.Data, tc.data) {
			t.Errorf("%s: %v %v %v", tc.col, a.Structure().DType, nd, err)
		}
	}
	for _, col := range []string{"s", "nb"} {
		var cte *ColumnTypeError
		if _, err := Lookup(t.Context(), root, []string{"t", col}); !errors.As(err, &cte) || cte.Column != col {
			t.Errorf("%s: %v, want a ColumnTypeError", col, err)
		}
	}
}

// sameBits compares bytes, so that NaN equals NaN.
func sameBits(a, b []byte) bool { return string(a) == string(b) }
