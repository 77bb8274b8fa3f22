package tree

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"
)

// NPYHeader is what the header of a .npy file declares.
type NPYHeader struct {
	DType DType
	// BigEndian is set when the file stores elements big-endian; they are
	// swapped to little-endian when read.
	BigEndian bool
	Shape     []int
	// DataOffset is where the elements start in the file.
	DataOffset int64
}

// maxNPYHeader is numpy's own limit on header length (np.load's
// max_header_size), past which it refuses to parse a header as unsafe.
const maxNPYHeader = 10000

// ParseNPYHeader reads the header of a NumPy .npy file (format versions 1,
// 2 and 3: magic, version, header length, then a Python dict literal with
// the keys descr, fortran_order and shape). Only C-order arrays of the data
// types in this package are accepted.
func ParseNPYHeader(r io.Reader) (NPYHeader, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return NPYHeader{}, fmt.Errorf("npy: reading magic: %w", err)
	}
	if !bytes.Equal(pre[:6], []byte("\x93NUMPY")) {
		return NPYHeader{}, errors.New("npy: not a NumPy file (bad magic string)")
	}
	var hlen, offset int64
	switch major := pre[6]; major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return NPYHeader{}, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen, offset = int64(binary.LittleEndian.Uint16(b[:])), 10
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return NPYHeader{}, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen, offset = int64(binary.LittleEndian.Uint32(b[:])), 12
	default:
		return NPYHeader{}, fmt.Errorf("npy: unsupported format version %d.%d", major, pre[7])
	}
	if hlen > maxNPYHeader {
		return NPYHeader{}, fmt.Errorf("npy: header of %d bytes is longer than the %d allowed", hlen, maxNPYHeader)
	}
	text := make([]byte, hlen)
	if _, err := io.ReadFull(r, text); err != nil {
		return NPYHeader{}, fmt.Errorf("npy: reading header: %w", err)
	}
	if pre[6] == 3 && !utf8.Valid(text) {
		return NPYHeader{}, errors.New("npy: version 3 header is not UTF-8")
	}
	h, err := parseNPYDict(string(text))
	if err != nil {
		return NPYHeader{}, err
	}
	h.DataOffset = offset + hlen
	return h, nil
}

func parseNPYDict(text string) (NPYHeader, error) {
	p := &pyParser{s: text}
	v, err := p.value(0)
	if err != nil {
		return NPYHeader{}, fmt.Errorf("npy: header: %w", err)
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return NPYHeader{}, fmt.Errorf("npy: header: unexpected %q after the dictionary", p.s[p.i:])
	}
	d, ok := v.(map[string]any)
	if !ok {
		return NPYHeader{}, errors.New("npy: header is not a dictionary")
	}
	_, hasDescr := d["descr"]
	_, hasOrder := d["fortran_order"]
	_, hasShape := d["shape"]
	if len(d) != 3 || !hasDescr || !hasOrder || !hasShape {
		return NPYHeader{}, errors.New("npy: header must have exactly the keys 'descr', 'fortran_order' and 'shape'")
	}
	var h NPYHeader
	descr, ok := d["descr"].(string)
	if !ok {
		return NPYHeader{}, errors.New("npy: structured data types (descr is not a string) are not supported")
	}
	if h.DType, h.BigEndian, err = parseDescr(descr); err != nil {
		return NPYHeader{}, err
	}
	if fo, ok := d["fortran_order"].(bool); !ok {
		return NPYHeader{}, errors.New("npy: fortran_order is not a boolean")
	} else if fo {
		return NPYHeader{}, errors.New("npy: Fortran-ordered arrays are not supported; save the array in C order")
	}
	shape, ok := d["shape"].([]any)
	if !ok {
		return NPYHeader{}, errors.New("npy: shape is not a tuple")
	}
	h.Shape = make([]int, len(shape))
	for i, s := range shape {
		n, ok := s.(int64)
		if !ok || n < 0 || n > 1<<48 {
			return NPYHeader{}, fmt.Errorf("npy: shape entry %v is not a valid length", s)
		}
		h.Shape[i] = int(n)
	}
	if _, err := elementCount(h.Shape); err != nil {
		return NPYHeader{}, fmt.Errorf("npy: %w", err)
	}
	return h, nil
}

// parseDescr reads a numpy type string such as "<f8" or "|b1".
func parseDescr(descr string) (DType, bool, error) {
	bad := fmt.Errorf("npy: data type %q is not supported (supported: bool, int8-64, uint8-64, float32, float64)", descr)
	if len(descr) < 2 {
		return DType{}, false, bad
	}
	order, rest := descr[0], descr[1:]
	switch order {
	case '<', '>', '|', '=':
	default:
		order, rest = '=', descr
	}
	if rest == "?" {
		rest = "b1"
	}
	if len(rest) < 2 {
		return DType{}, false, bad
	}
	size, err := strconv.Atoi(rest[1:])
	if err != nil {
		return DType{}, false, bad
	}
	dt := DType{Kind: Kind(rest[0]), Itemsize: size}
	if !dt.Valid() {
		return DType{}, false, bad
	}
	// "=" is the writer's native order; every platform numpy writes from
	// today is little-endian, and numpy itself writes "<" or "|".
	return dt, order == '>' && size > 1, nil
}

// pyParser reads the subset of Python literals numpy writes in headers:
// dicts, tuples, lists, strings, integers, True, False and None.
type pyParser struct {
	s string
	i int
}

const maxPyDepth = 16

func (p *pyParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > maxPyDepth {
		return nil, errors.New("literal nested too deeply")
	}
	p.skipSpace()
	if p.i >= len(p.s) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.dict(depth)
	case c == '(':
		return p.sequence(depth, ')')
	case c == '[':
		return p.sequence(depth, ']')
	case c == '\'' || c == '"':
		return p.str()
	case c == '-' || c == '+' || (c >= '0' && c <= '9'):
		return p.integer()
	default:
		for word, v := range map[string]any{"True": true, "False": false, "None": nil} {
			if len(p.s)-p.i >= len(word) && p.s[p.i:p.i+len(word)] == word {
				p.i += len(word)
				return v, nil
			}
		}
		return nil, fmt.Errorf("unexpected %q at offset %d", c, p.i)
	}
}

func (p *pyParser) expect(c byte) error {
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("expected %q at offset %d", c, p.i)
	}
	p.i++
	return nil
}

// peek reports whether the next non-space character is c.
func (p *pyParser) peek(c byte) bool {
	p.skipSpace()
	return p.i < len(p.s) && p.s[p.i] == c
}

func (p *pyParser) dict(depth int) (any, error) {
	p.i++ // {
	out := map[string]any{}
	for !p.peek('}') {
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("dictionary key %v is not a string", k)
		}
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		out[key] = v
		if !p.peek(',') {
			break
		}
		p.i++
	}
	return out, p.expect('}')
}

func (p *pyParser) sequence(depth int, closer byte) (any, error) {
	p.i++ // ( or [
	out := []any{}
	for !p.peek(closer) {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if !p.peek(',') {
			break
		}
		p.i++
	}
	return out, p.expect(closer)
}

func (p *pyParser) str() (any, error) {
	q := p.s[p.i]
	p.i++
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != q {
		if p.s[p.i] == '\\' {
			return nil, errors.New("escapes in strings are not supported")
		}
		p.i++
	}
	if p.i >= len(p.s) {
		return nil, errors.New("unterminated string")
	}
	v := p.s[start:p.i]
	p.i++
	return v, nil
}

func (p *pyParser) integer() (any, error) {
	start := p.i
	if p.s[p.i] == '-' || p.s[p.i] == '+' {
		p.i++
	}
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	v, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bad integer %q", p.s[start:p.i])
	}
	// Python 2 era numpy wrote long integers with an L suffix.
	if p.i < len(p.s) && p.s[p.i] == 'L' {
		p.i++
	}
	return v, nil
}

// npyArray is an array in a .npy file, read from disk on each request.
type npyArray struct {
	base
	path string
	hdr  NPYHeader
	st   ArrayStructure
}

// openNPY validates the header and size of a .npy file without reading the
// elements.
func openNPY(path string) (*npyArray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr, err := ParseNPYHeader(f)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n, _ := elementCount(hdr.Shape)
	need := hdr.DataOffset + n*int64(hdr.DType.Itemsize)
	if fi.Size() < need {
		return nil, fmt.Errorf("npy: file is truncated: %d bytes, the header declares %d", fi.Size(), need)
	}
	// Tiled's NPYAdapter declares one chunk per axis.
	st := ArrayStructure{DType: hdr.DType, Shape: hdr.Shape, Chunks: SingleChunks(hdr.Shape)}
	return &npyArray{path: path, hdr: hdr, st: st}, nil
}

// Family implements Node.
func (a *npyArray) Family() Family { return FamilyArray }

// Structure implements Array.
func (a *npyArray) Structure() ArrayStructure { return a.st }

// Open implements Array.
func (a *npyArray) Open(context.Context) (Elements, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	return &npyElements{f: f, offset: a.hdr.DataOffset, swap: a.hdr.BigEndian, item: int64(a.hdr.DType.Itemsize)}, nil
}

type npyElements struct {
	f      *os.File
	offset int64
	swap   bool
	item   int64
}

func (e *npyElements) ReadAt(p []byte, off int64) (int, error) {
	if e.swap && (off%e.item != 0 || int64(len(p))%e.item != 0) {
		return 0, fmt.Errorf("npy: read of %d bytes at %d is not element-aligned", len(p), off)
	}
	n, err := e.f.ReadAt(p, e.offset+off)
	if e.swap {
		for i := int64(0); i+e.item <= int64(n); i += e.item {
			elem := p[i : i+e.item]
			for a, b := 0, len(elem)-1; a < b; a, b = a+1, b-1 {
				elem[a], elem[b] = elem[b], elem[a]
			}
		}
	}
	return n, err
}

func (e *npyElements) Close() error { return e.f.Close() }
