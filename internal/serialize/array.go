package serialize

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/tiledgo/server/internal/tree"
)

// Array encodes array data in the chosen media type:
//   - application/octet-stream: the raw elements, C order, little-endian
//     (what the Python client reads with numpy.frombuffer);
//   - application/json: nested lists, as orjson writes a numpy array;
//   - text/csv and its aliases: numpy.savetxt(fmt="%s", delimiter=","),
//     one line per element of a 1-D array or per row of a 2-D array;
//   - image/png: the array as an image, scaled as Tiled scales it;
//   - text/html: a page with the PNG inline, or else the CSV text.
func Array(c Choice, a *tree.NDArray) ([]byte, error) {
	switch c.MediaType {
	case OctetStream:
		return a.Data, nil
	case JSON:
		var b bytes.Buffer
		writeJSONArray(&b, a, 0, 0)
		return b.Bytes(), nil
	case CSV, CSVAlt, Plain, Excel:
		return arrayCSV(c, a)
	case PNG:
		return arrayPNG(a)
	case HTML:
		return arrayHTML(c, a)
	}
	return nil, fmt.Errorf("serialize: no array encoder for %s", c.MediaType)
}

// element decodes element i.
type element struct {
	dt   tree.DType
	data []byte
}

func (e element) raw(i int) []byte {
	n := e.dt.Itemsize
	return e.data[i*n : (i+1)*n]
}

func (e element) float(i int) float64 {
	b := e.raw(i)
	if e.dt.Itemsize == 4 {
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// float32 is numpy's astype(float32) of element i.
func (e element) float32(i int) float32 {
	switch e.dt.Kind {
	case tree.KindBool:
		if e.raw(i)[0] != 0 {
			return 1
		}
		return 0
	case tree.KindInt:
		return float32(e.int(i))
	case tree.KindUint:
		return float32(e.uint(i))
	}
	return float32(e.float(i))
}

func (e element) int(i int) int64 {
	b := e.raw(i)
	switch e.dt.Itemsize {
	case 1:
		return int64(int8(b[0]))
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	default:
		return int64(binary.LittleEndian.Uint64(b))
	}
}

func (e element) uint(i int) uint64 {
	b := e.raw(i)
	switch e.dt.Itemsize {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	default:
		return binary.LittleEndian.Uint64(b)
	}
}

// format writes element i; py selects Python's spelling (numpy str), else
// JSON's (orjson).
func (e element) format(i int, py bool) string {
	switch e.dt.Kind {
	case tree.KindBool:
		v := e.raw(i)[0] != 0
		if py {
			if v {
				return "True"
			}
			return "False"
		}
		return strconv.FormatBool(v)
	case tree.KindInt:
		return strconv.FormatInt(e.int(i), 10)
	case tree.KindUint:
		return strconv.FormatUint(e.uint(i), 10)
	default:
		if py {
			return PyFloat(e.float(i), 8*e.dt.Itemsize)
		}
		return JSONFloat(e.float(i), 8*e.dt.Itemsize)
	}
}

// writeJSONArray writes the sub-array at axis dim starting at element
// offset; a 0-d array is a bare value, as orjson writes a numpy scalar.
func writeJSONArray(b *bytes.Buffer, a *tree.NDArray, dim, offset int) {
	e := element{a.DType, a.Data}
	if dim == len(a.Shape) {
		b.WriteString(e.format(offset, false))
		return
	}
	stride := 1
	for _, n := range a.Shape[dim+1:] {
		stride *= n
	}
	b.WriteByte('[')
	for i := 0; i < a.Shape[dim]; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONArray(b, a, dim+1, offset+i*stride)
	}
	b.WriteByte(']')
}

func arrayCSV(c Choice, a *tree.NDArray) ([]byte, error) {
	// numpy.savetxt takes 1-D and 2-D arrays only.
	if len(a.Shape) == 0 || len(a.Shape) > 2 {
		return nil, unsupportedShape(a.Shape, c.MediaType)
	}
	rows, cols := a.Shape[0], 1
	if len(a.Shape) == 2 {
		cols = a.Shape[1]
	}
	e := element{a.DType, a.Data}
	var b bytes.Buffer
	for r := 0; r < rows; r++ {
		for col := 0; col < cols; col++ {
			if col > 0 {
				b.WriteByte(',')
			}
			b.WriteString(e.format(r*cols+col, true))
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
