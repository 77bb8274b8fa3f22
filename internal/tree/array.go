package tree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// ArrayStructure is Tiled's ArrayStructure.
type ArrayStructure struct {
	DType DType
	Shape []int
	// Chunks lists the chunk lengths along each axis (Tiled's chunks).
	Chunks [][]int
	// Dims names the axes (xarray); nil when unnamed.
	Dims []string
}

// MarshalJSON writes the structure as Tiled does (dataclasses.asdict of
// ArrayStructure, in field order).
func (s ArrayStructure) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		DataType  DType    `json:"data_type"`
		Chunks    [][]int  `json:"chunks"`
		Shape     []int    `json:"shape"`
		Dims      []string `json:"dims"`
		Resizable bool     `json:"resizable"`
	}{s.DType, nonNilChunks(s.Chunks), nonNil(s.Shape), s.Dims, false})
}

func nonNil(v []int) []int {
	if v == nil {
		return []int{}
	}
	return v
}

func nonNilChunks(v [][]int) [][]int {
	if v == nil {
		return [][]int{}
	}
	return v
}

// Elements is a source of array data: the elements in C order, little
// endian, addressed by byte offset. Readers of this package only ask for
// whole elements (offsets and lengths are multiples of the item size).
type Elements interface {
	io.ReaderAt
	io.Closer
}

// Array is a node holding an N-dimensional array.
type Array interface {
	Node
	Structure() ArrayStructure
	// Open gives access to the elements; the caller closes it.
	Open(ctx context.Context) (Elements, error)
}

// NDArray is data read from an array: C-order little-endian elements.
type NDArray struct {
	DType DType
	Shape []int
	Data  []byte
}

// ErrTooLarge is returned when a read would exceed the caller's limit.
var ErrTooLarge = errors.New("response too large")

// ReadSlice reads the part of a that s selects. Reading stops before any
// I/O if the result would be larger than limit bytes (limit <= 0: no limit).
func ReadSlice(ctx context.Context, a Array, s Slice, limit int64) (*NDArray, error) {
	st := a.Structure()
	axes, err := s.resolve(st.Shape)
	if err != nil {
		return nil, err
	}
	return gather(ctx, a, st, axes, limit)
}

// BlockError is a block index that does not fit the chunks.
type BlockError struct{ Msg string }

func (e *BlockError) Error() string { return e.Msg }

// BlockShape is the shape of the chunk at block, or a *BlockError when
// block does not index the chunks.
func BlockShape(st ArrayStructure, block []int64) ([]int, error) {
	if len(block) != len(st.Chunks) {
		return nil, &BlockError{fmt.Sprintf("block has %d indices for %d dimensions", len(block), len(st.Chunks))}
	}
	out := make([]int, len(block))
	for i, b := range block {
		if b < 0 || b >= int64(len(st.Chunks[i])) {
			return nil, &BlockError{fmt.Sprintf("block index %d out of range along axis %d", b, i)}
		}
		out[i] = st.Chunks[i][b]
	}
	return out, nil
}

// ReadBlock reads the chunk at block, then the part of it that s selects
// (Tiled's /array/block with ?slice=).
func ReadBlock(ctx context.Context, a Array, block []int64, s Slice, limit int64) (*NDArray, error) {
	st := a.Structure()
	shape, err := BlockShape(st, block)
	if err != nil {
		return nil, err
	}
	inner, err := s.resolve(shape)
	if err != nil {
		return nil, err
	}
	for i, b := range block {
		var origin int64
		for _, c := range st.Chunks[i][:b] {
			origin += int64(c)
		}
		inner[i].start += origin
	}
	return gather(ctx, a, st, inner, limit)
}

// gather copies the selected elements in C order, coalescing contiguous
// runs so that reading a whole array, or whole rows, is one ReadAt per run.
func gather(ctx context.Context, a Array, st ArrayStructure, axes []axis, limit int64) (*NDArray, error) {
	item := int64(st.DType.Itemsize)
	total := item
	for _, ax := range axes {
		hi, lo := bits.Mul64(uint64(total), uint64(ax.n))
		if hi != 0 || lo > 1<<62 {
			return nil, fmt.Errorf("%w: selection overflows", ErrTooLarge)
		}
		total = int64(lo)
	}
	out := &NDArray{DType: st.DType, Shape: keptShape(axes)}
	if limit > 0 && total > limit {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, total)
	}
	out.Data = make([]byte, total)
	if total == 0 {
		return out, nil
	}
	src, err := a.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer src.Close()

	// Byte strides of the source, C order.
	strides := make([]int64, len(st.Shape))
	acc := item
	for i := len(st.Shape) - 1; i >= 0; i-- {
		strides[i] = acc
		acc *= int64(st.Shape[i])
	}
	r := runReader{src: src, dst: out.Data}
	if len(axes) == 0 {
		if err := r.add(0, item); err != nil {
			return nil, err
		}
		return out, r.flush()
	}
	last := len(axes) - 1
	idx := make([]int64, last) // odometer over all axes but the last
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var off int64
		for i := 0; i < last; i++ {
			off += (axes[i].start + idx[i]*axes[i].step) * strides[i]
		}
		la := axes[last]
		off += la.start * strides[last]
		if la.step == 1 {
			if err := r.add(off, la.n*item); err != nil {
				return nil, err
			}
		} else {
			for j := int64(0); j < la.n; j++ {
				if err := r.add(off+j*la.step*strides[last], item); err != nil {
					return nil, err
				}
			}
		}
		i := last - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < axes[i].n {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			break
		}
	}
	return out, r.flush()
}

// runReader fills dst from src, merging requests for adjacent source bytes.
type runReader struct {
	src        io.ReaderAt
	dst        []byte
	written    int64
	start, len int64
}

func (r *runReader) add(off, n int64) error {
	if r.len > 0 && r.start+r.len == off {
		r.len += n
		return nil
	}
	if err := r.flush(); err != nil {
		return err
	}
	r.start, r.len = off, n
	return nil
}

func (r *runReader) flush() error {
	if r.len == 0 {
		return nil
	}
	buf := r.dst[r.written : r.written+r.len]
	// io.ReaderAt may report io.EOF along with a full read at the end.
	if n, err := r.src.ReadAt(buf, r.start); n < len(buf) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read array data at byte %d: %w", r.start, err)
	}
	r.written += r.len
	r.len = 0
	return nil
}

// AutoChunks splits shape the way dask's normalize_chunks("auto") does for
// an array without chunks of its own (Tiled's ArrayStructure.from_array):
// arrays up to 128 MiB are one chunk; larger ones get chunks of about
// 128 MiB, as even as dask makes them.
func AutoChunks(shape []int, itemsize int) [][]int {
	const limit = 128 << 20
	size := make([]int, len(shape))
	auto := []int{}
	for i := range shape {
		auto = append(auto, i)
	}
	largest := 1.0
	for len(auto) > 0 {
		target := math.Pow(float64(limit)/float64(itemsize)/largest, 1/float64(len(auto)))
		small := []int{}
		for _, i := range auto {
			if float64(shape[i]) < target {
				small = append(small, i)
			}
		}
		if len(small) == 0 {
			for _, i := range auto {
				size[i] = roundTo(target, shape[i])
			}
			break
		}
		for _, i := range small {
			size[i] = shape[i]
			largest *= float64(max(shape[i], 1))
		}
		auto = without(auto, small)
	}
	chunks := make([][]int, len(shape))
	for i, n := range shape {
		chunks[i] = splitEven(n, size[i])
	}
	return chunks
}

// roundTo is dask's round_to: a chunk length no larger than the target.
func roundTo(c float64, s int) int {
	if c <= float64(s) {
		return max(1, int(c))
	}
	return int(c) / s * s
}

func splitEven(n, size int) []int {
	if n == 0 || size <= 0 {
		return []int{n}
	}
	out := []int{}
	for left := n; left > 0; left -= size {
		out = append(out, min(size, left))
	}
	return out
}

func without(all, drop []int) []int {
	out := []int{}
	for _, v := range all {
		keep := true
		for _, d := range drop {
			keep = keep && v != d
		}
		if keep {
			out = append(out, v)
		}
	}
	return out
}

// SingleChunks is one chunk per axis, as Tiled's NPY adapter declares.
func SingleChunks(shape []int) [][]int {
	chunks := make([][]int, len(shape))
	for i, n := range shape {
		chunks[i] = []int{n}
	}
	return chunks
}
