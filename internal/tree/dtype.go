package tree

import (
	"encoding/json"
	"fmt"
)

// Kind is numpy's one-letter kind of a data type, as Tiled's data_type
// carries it.
type Kind byte

// The kinds this server stores.
const (
	KindBool  Kind = 'b'
	KindInt   Kind = 'i'
	KindUint  Kind = 'u'
	KindFloat Kind = 'f'
)

// DType is the element type of an array. Elements are always held
// little-endian: sources in another byte order are swapped when read, so the
// structure a client sees and the bytes it gets agree.
type DType struct {
	Kind     Kind
	Itemsize int
}

// The data types this server supports.
var (
	Bool    = DType{KindBool, 1}
	Int8    = DType{KindInt, 1}
	Int16   = DType{KindInt, 2}
	Int32   = DType{KindInt, 4}
	Int64   = DType{KindInt, 8}
	Uint8   = DType{KindUint, 1}
	Uint16  = DType{KindUint, 2}
	Uint32  = DType{KindUint, 4}
	Uint64  = DType{KindUint, 8}
	Float32 = DType{KindFloat, 4}
	Float64 = DType{KindFloat, 8}
)

// Valid reports whether the server supports d.
func (d DType) Valid() bool {
	switch d.Kind {
	case KindBool:
		return d.Itemsize == 1
	case KindInt, KindUint:
		return d.Itemsize == 1 || d.Itemsize == 2 || d.Itemsize == 4 || d.Itemsize == 8
	case KindFloat:
		return d.Itemsize == 4 || d.Itemsize == 8
	}
	return false
}

// Endianness is what Tiled reports: numpy calls the byte order of one-byte
// types "|", which Tiled's BuiltinDtype maps to "not_applicable".
func (d DType) Endianness() string {
	if d.Itemsize == 1 {
		return "not_applicable"
	}
	return "little"
}

// String is numpy's spelling ("<f8", "|b1").
func (d DType) String() string {
	order := "<"
	if d.Itemsize == 1 {
		order = "|"
	}
	return fmt.Sprintf("%s%c%d", order, d.Kind, d.Itemsize)
}

// MarshalJSON writes Tiled's data_type object (BuiltinDtype as a dict).
func (d DType) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Endianness string  `json:"endianness"`
		Kind       string  `json:"kind"`
		Itemsize   int     `json:"itemsize"`
		DTUnits    *string `json:"dt_units"`
	}{d.Endianness(), string(d.Kind), d.Itemsize, nil})
}
