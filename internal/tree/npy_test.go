package tree

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// npyFile builds a .npy file as numpy.save writes it: magic, version,
// header length, the header dict padded with spaces to a multiple of 64
// bytes and ended by a newline, then the data.
func npyFile(major byte, header string, data []byte) []byte {
	pre := 10
	if major > 1 {
		pre = 12
	}
	total := pre + len(header) + 1
	pad := (64 - total%64) % 64
	h := header + strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		_ = binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	} else {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(h)))
	}
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func TestParseNPYHeader(t *testing.T) {
	cases := []struct {
		name    string
		file    []byte
		want    NPYHeader
		wantErr string
	}{
		{"v1 float64 2-D", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", nil),
			NPYHeader{DType: Float64, Shape: []int{2, 3}}, ""},
		{"v2 int32 1-D", npyFile(2, "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }", nil),
			NPYHeader{DType: Int32, Shape: []int{5}}, ""},
		{"v3 bool scalar", npyFile(3, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", nil),
			NPYHeader{DType: Bool, Shape: []int{}}, ""},
		{"big-endian uint16", npyFile(1, `{"descr": ">u2", "fortran_order": False, "shape": (4,)}`, nil),
			NPYHeader{DType: Uint16, BigEndian: true, Shape: []int{4}}, ""},
		{"python 2 long", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 2L), }", nil),
			NPYHeader{DType: Float32, Shape: []int{3, 2}}, ""},
		{"bad magic", []byte("PK\x03\x04 not numpy at all"), NPYHeader{}, "bad magic"},
		{"version 9", append([]byte("\x93NUMPY\x09\x00"), 0, 0), NPYHeader{}, "unsupported format version"},
		{"truncated", []byte("\x93NUMPY\x01\x00\xff"), NPYHeader{}, "header length"},
		{"fortran", npyFile(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", nil), NPYHeader{}, "Fortran"},
		{"complex", npyFile(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", nil), NPYHeader{}, "not supported"},
		{"float16", npyFile(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", nil), NPYHeader{}, "not supported"},
		{"unicode", npyFile(1, "{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }", nil), NPYHeader{}, "not supported"},
		{"structured", npyFile(1, "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }", nil), NPYHeader{}, "structured"},
		{"missing key", npyFile(1, "{'descr': '<f8', 'shape': (2,), }", nil), NPYHeader{}, "exactly the keys"},
		{"extra key", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", nil), NPYHeader{}, "exactly the keys"},
		{"negative shape", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", nil), NPYHeader{}, "not a valid length"},
		{"huge shape", npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", nil), NPYHeader{}, "too large"},
		{"not a dict", npyFile(1, "['descr']", nil), NPYHeader{}, "not a dictionary"},
		{"garbage", npyFile(1, "{'descr': '<f8', 'fortran_order': Fals", nil), NPYHeader{}, "header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNPYHeader(bytes.NewReader(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The files hold no data, so the elements start at the end.
			tc.want.DataOffset = int64(len(tc.file))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNPYArrayReadsBothByteOrders(t *testing.T) {
	dir := t.TempDir()
	le := npyFile(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", Int32Bytes(1, 2, 3, 4))
	be := make([]byte, 16)
	for i, v := range []uint32{1, 2, 3, 4} {
		binary.BigEndian.PutUint32(be[4*i:], v)
	}
	for name, content := range map[string][]byte{
		"le.npy": le,
		"be.npy": npyFile(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (2, 2), }", be),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := openNPY(path)
		if err != nil {
			t.Fatal(err)
		}
		if a.Structure().DType.Endianness() != "little" || !reflect.DeepEqual(a.Structure().Chunks, [][]int{{2}, {2}}) {
			t.Errorf("%s: structure %+v", name, a.Structure())
		}
		s, _ := ParseSlice(":,1")
		got, err := ReadSlice(context.Background(), a, s, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, Int32Bytes(2, 4)) {
			t.Errorf("%s: data %v", name, got.Data)
		}
	}
	short := filepath.Join(dir, "short.npy")
	if err := os.WriteFile(short, le[:len(le)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openNPY(short); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated file: %v", err)
	}
}

func FuzzParseNPYHeader(f *testing.F) {
	f.Add(npyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", nil))
	f.Add(npyFile(2, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", nil))
	f.Add(npyFile(3, `{"descr": ">u8", "fortran_order": False, "shape": (1, 2, 3)}`, nil))
	f.Add(npyFile(1, "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': ((((1,),),),), }", nil))
	f.Add([]byte("\x93NUMPY\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseNPYHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		if !h.DType.Valid() || h.DataOffset > int64(len(b)) {
			t.Fatalf("accepted an invalid header: %+v", h)
		}
		if _, err := elementCount(h.Shape); err != nil {
			t.Fatalf("accepted shape %v: %v", h.Shape, err)
		}
	})
}
