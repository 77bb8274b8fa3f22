package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
)

// npyBytes encodes an NPY version 1.0 file (numpy's format: magic, version,
// little-endian header length, a Python-dict header padded with spaces to
// a multiple of 64 bytes and ending in a newline, then C-order data).
func npyBytes(descr string, shape []int, data []byte) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(shape) == 1 {
		tuple = "(" + dims[0] + ",)"
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tuple)
	const prefix = 6 + 2 + 2 // magic, version, header length
	pad := 64 - (prefix+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	header += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.Write([]byte{1, 0})
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func float64LE(vs ...float64) []byte {
	b := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

func int32LE(vs ...int32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestNPYEncoding pins the fixture writer to numpy's layout, so that a
// failure of the directory tests is the server's and not the fixture's.
func TestNPYEncoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		descr string
		shape []int
		data  []byte
		dict  string
	}{
		{"<f8", []int{2, 3}, float64LE(1, 2, 3, 4, 5, 6), "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"},
		{"<i4", []int{4}, int32LE(1, 2, 3, 4), "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }"},
	} {
		b := npyBytes(tc.descr, tc.shape, tc.data)
		if !bytes.HasPrefix(b, []byte("\x93NUMPY\x01\x00")) {
			t.Errorf("%s: bad magic", tc.descr)
		}
		hlen := int(binary.LittleEndian.Uint16(b[8:10]))
		if (10+hlen)%64 != 0 {
			t.Errorf("%s: data starts at %d, not 64-byte aligned", tc.descr, 10+hlen)
		}
		header := string(b[10 : 10+hlen])
		if !strings.HasPrefix(header, tc.dict) || !strings.HasSuffix(header, "\n") || strings.TrimSpace(header) != tc.dict {
			t.Errorf("%s: header %q", tc.descr, header)
		}
		if !bytes.Equal(b[10+hlen:], tc.data) {
			t.Errorf("%s: data not at the end", tc.descr)
		}
	}
}
