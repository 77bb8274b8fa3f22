package tree

import (
	"slices"
	"testing"
)

// The expectations are what dask.dataframe.from_pandas(df, npartitions=p)
// gives for a frame of n rows with a RangeIndex (its _divisions_and_locations).
func TestDaskDivisions(t *testing.T) {
	for _, tc := range []struct {
		n, p int
		want []int
	}{
		{100, 3, []int{0, 34, 67, 100}}, // Tiled's generated_minimal table C
		{100, 1, []int{0, 100}},
		{99, 3, []int{0, 33, 66, 99}},
		{101, 3, []int{0, 34, 68, 101}},
		{10, 4, []int{0, 3, 6, 8, 10}},
		{2, 3, []int{0, 1, 2}}, // fewer rows than partitions: one row each
		{1, 1, []int{0, 1}},
		{0, 3, []int{0, 0, 0, 0}},
		{5, 0, []int{0, 5}},
	} {
		if got := DaskDivisions(tc.n, tc.p); !slices.Equal(got, tc.want) {
			t.Errorf("DaskDivisions(%d, %d) = %v, want %v", tc.n, tc.p, got, tc.want)
		}
	}
}

func TestDemoTablePartitions(t *testing.T) {
	c, _ := Demo().Child("C")
	tbl := c.(Table)
	var sizes []int
	for i := range tbl.Structure().NPartitions {
		f, err := tbl.ReadPartition(t.Context(), i)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, f.Rows())
	}
	if !slices.Equal(sizes, []int{34, 33, 33}) {
		t.Errorf("partition sizes %v, want Tiled's 34, 33, 33", sizes)
	}
}
