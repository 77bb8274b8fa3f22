package tree

// DaskDivisions returns where dask cuts nrows rows with a unique, sorted
// index (a RangeIndex, as pandas gives a frame built from columns) into
// npartitions partitions: the row offsets of the partition boundaries,
// from 0 to nrows. Tiled's TableAdapter.from_dict and from_pandas go
// through dask.dataframe.from_pandas, whose sorted_division_locations
// spreads the remainder over the first partitions (100 rows in 3 are
// 34, 33, 33) and, when there are fewer rows than partitions, makes one
// partition per row. No rows give npartitions empty partitions.
func DaskDivisions(nrows, npartitions int) []int {
	if npartitions < 1 {
		npartitions = 1
	}
	if nrows <= 0 {
		return make([]int, npartitions+1)
	}
	size, extra := nrows/npartitions, nrows%npartitions
	out := []int{0}
	for k := 0; out[len(out)-1] < nrows; k++ {
		step := size
		if k < extra {
			step++
		}
		out = append(out, min(nrows, out[len(out)-1]+max(1, step)))
	}
	return out
}
