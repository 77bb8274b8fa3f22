package tree

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
)

// MemArray is an array held in memory.
type MemArray struct {
	base
	st   ArrayStructure
	data []byte
}

// NewArray builds an in-memory array from C-order little-endian bytes,
// chunked as Tiled's ArrayAdapter.from_array would chunk it.
func NewArray(info Info, dt DType, shape []int, dims []string, data []byte) (*MemArray, error) {
	if !dt.Valid() {
		return nil, fmt.Errorf("unsupported data type %s", dt)
	}
	n, err := elementCount(shape)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != n*int64(dt.Itemsize) {
		return nil, fmt.Errorf("shape %v of %s needs %d bytes, got %d", shape, dt, n*int64(dt.Itemsize), len(data))
	}
	if dims != nil && len(dims) != len(shape) {
		return nil, fmt.Errorf("%d dims for %d axes", len(dims), len(shape))
	}
	st := ArrayStructure{DType: dt, Shape: shape, Chunks: AutoChunks(shape, dt.Itemsize), Dims: dims}
	return &MemArray{base: base{info}, st: st, data: data}, nil
}

// Family implements Node.
func (a *MemArray) Family() Family { return FamilyArray }

// Structure implements Array.
func (a *MemArray) Structure() ArrayStructure { return a.st }

// Open implements Array.
func (a *MemArray) Open(context.Context) (Elements, error) {
	return nopCloser{bytes.NewReader(a.data)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// elementCount is the product of shape, refusing negative lengths and
// products that do not fit comfortably in memory addressing.
func elementCount(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative axis length %d", d)
		}
		if d != 0 && n > math.MaxInt64/8/int64(d) {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// FilledArray is an array whose every element is the same value, computed
// on read rather than stored: Demo's B would be 8 MB in memory otherwise.
type FilledArray struct {
	base
	st   ArrayStructure
	elem []byte
}

// NewFilledArray builds an array of shape filled with one element given as
// little-endian bytes.
func NewFilledArray(info Info, dt DType, shape []int, elem []byte) (*FilledArray, error) {
	if !dt.Valid() || len(elem) != dt.Itemsize {
		return nil, fmt.Errorf("element of %d bytes for data type %s", len(elem), dt)
	}
	if _, err := elementCount(shape); err != nil {
		return nil, err
	}
	st := ArrayStructure{DType: dt, Shape: shape, Chunks: AutoChunks(shape, dt.Itemsize)}
	return &FilledArray{base: base{info}, st: st, elem: elem}, nil
}

// Family implements Node.
func (a *FilledArray) Family() Family { return FamilyArray }

// Structure implements Array.
func (a *FilledArray) Structure() ArrayStructure { return a.st }

// Open implements Array.
func (a *FilledArray) Open(context.Context) (Elements, error) { return a, nil }

// ReadAt implements io.ReaderAt over the repeated element.
func (a *FilledArray) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(a.elem))
	for i := range p {
		p[i] = a.elem[(off+int64(i))%n]
	}
	return len(p), nil
}

// Close implements io.Closer.
func (a *FilledArray) Close() error { return nil }

// Float64Bytes encodes values as little-endian float64 elements.
func Float64Bytes(v ...float64) []byte {
	out := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(x))
	}
	return out
}

// Int64Bytes encodes values as little-endian int64 elements.
func Int64Bytes(v ...int64) []byte {
	out := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(out[8*i:], uint64(x))
	}
	return out
}

// Int32Bytes encodes values as little-endian int32 elements.
func Int32Bytes(v ...int32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], uint32(x))
	}
	return out
}

// BoolBytes encodes values as numpy bools (one byte, 0 or 1).
func BoolBytes(v ...bool) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		if x {
			out[i] = 1
		}
	}
	return out
}
