package tree

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func arange(t *testing.T, shape ...int) *MemArray {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(i)
	}
	a, err := NewArray(Info{}, Int64, shape, nil, Int64Bytes(v...))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func int64s(b []byte) []int64 {
	out := make([]int64, len(b)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

// TestReadSlice checks numpy's indexing rules; the expectations are what
// numpy.arange(...)[slice] gives.
func TestReadSlice(t *testing.T) {
	cases := []struct {
		shape     []int
		slice     string
		wantShape []int
		want      []int64
		err       error
	}{
		{[]int{10}, "", []int{10}, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, nil},
		{[]int{10}, "2:5", []int{3}, []int64{2, 3, 4}, nil},
		{[]int{10}, "::-1", []int{10}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, nil},
		{[]int{10}, "-3:", []int{3}, []int64{7, 8, 9}, nil},
		{[]int{10}, "5", []int{}, []int64{5}, nil},
		{[]int{10}, "-1", []int{}, []int64{9}, nil},
		{[]int{10}, "::3", []int{4}, []int64{0, 3, 6, 9}, nil},
		{[]int{10}, "8:2:-2", []int{3}, []int64{8, 6, 4}, nil},
		{[]int{10}, ":-20", []int{0}, []int64{}, nil},
		{[]int{10}, "100:", []int{0}, []int64{}, nil},
		{[]int{10}, "-100:3", []int{3}, []int64{0, 1, 2}, nil},
		{[]int{10}, "99999999999999999999999:", []int{0}, []int64{}, nil},
		{[]int{10}, "-99999999999999999999999::-1", []int{0}, []int64{}, nil},
		{[]int{10}, "::-99999999999999999999", []int{1}, []int64{9}, nil},
		{[]int{10}, "10", nil, nil, ErrIndexOutOfRange},
		{[]int{10}, "-11", nil, nil, ErrIndexOutOfRange},
		{[]int{10}, "::0", nil, nil, ErrZeroStep},
		{[]int{10}, "1,2", nil, nil, ErrIndexOutOfRange},
		{[]int{3, 4}, "0:2,0:3", []int{2, 3}, []int64{0, 1, 2, 4, 5, 6}, nil},
		{[]int{3, 4}, "1", []int{4}, []int64{4, 5, 6, 7}, nil},
		{[]int{3, 4}, ":,1", []int{3}, []int64{1, 5, 9}, nil},
		{[]int{3, 4}, "::-1,::2", []int{3, 2}, []int64{8, 10, 4, 6, 0, 2}, nil},
		{[]int{3, 4}, "-1,-1", []int{}, []int64{11}, nil},
		{[]int{2, 3, 4}, "1,1:,::3", []int{2, 2}, []int64{16, 19, 20, 23}, nil},
		{[]int{}, "", []int{}, []int64{7}, nil},
	}
	for _, tc := range cases {
		var a Array = arange(t, tc.shape...)
		if len(tc.shape) == 0 {
			a, _ = NewArray(Info{}, Int64, []int{}, nil, Int64Bytes(7))
		}
		s, err := ParseSlice(tc.slice)
		if err != nil {
			t.Fatalf("%v %q: parse: %v", tc.shape, tc.slice, err)
		}
		got, err := ReadSlice(context.Background(), a, s, 0)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%v %q: error %v, want %v", tc.shape, tc.slice, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v %q: %v", tc.shape, tc.slice, err)
		}
		if !reflect.DeepEqual(got.Shape, tc.wantShape) || !reflect.DeepEqual(int64s(got.Data), tc.want) {
			t.Errorf("%v %q: got shape %v data %v, want %v %v", tc.shape, tc.slice, got.Shape, int64s(got.Data), tc.wantShape, tc.want)
		}
		if shape, err := s.ShapeAfter(tc.shape); err != nil || !reflect.DeepEqual(shape, tc.wantShape) {
			t.Errorf("%v %q: ShapeAfter %v %v", tc.shape, tc.slice, shape, err)
		}
	}
}

func TestParseSlice(t *testing.T) {
	cases := []struct {
		in      string
		pattern bool
		repr    string
		err     string
	}{
		{"", true, "()", ""},
		{"0:2,0:3", true, "(slice(0, 2, None), slice(0, 3, None))", ""},
		{"5", true, "(5,)", ""},
		{"-1", true, "(-1,)", ""},
		{":", true, "(slice(None, None, None),)", ""},
		{"::", true, "(slice(None, None, None),)", ""},
		{"1:", true, "(slice(1, None, None),)", ""},
		{"1::", true, "(slice(1, None, None),)", ""},
		{":5", true, "(slice(None, 5, None),)", ""},
		{":5:", true, "(slice(None, 5, None),)", ""},
		{"1:5:", true, "(slice(1, 5, None),)", ""},
		{"1:5:2", true, "(slice(1, 5, 2),)", ""},
		{":5:2", true, "(slice(None, 5, 2),)", ""},
		{"::-2", true, "(slice(None, None, -2),)", ""},
		{"1::2", true, "(slice(1, None, 2),)", ""},
		{"-3:-1:1,4", true, "(slice(-3, -1, 1), 4)", ""},
		// These pass the server's pattern but not NDSlice's parser: 400.
		{",", true, "", `Invalid slice part: ""`},
		{"1,,2", true, "", `Invalid slice part: ""`},
		// These fail the pattern: 422 from request validation.
		{"a", false, "", ""},
		{"1:2:3:4", false, "", ""},
		{"...", false, "", ""},
		{" 1", false, "", ""},
		{"1\n", false, "", ""},
	}
	for _, tc := range cases {
		if got := MatchesSlicePattern(tc.in); got != tc.pattern {
			t.Errorf("%q: pattern match %v, want %v", tc.in, got, tc.pattern)
		}
		if !tc.pattern {
			continue
		}
		s, err := ParseSlice(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if s.PyRepr() != tc.repr {
			t.Errorf("%q: repr %s, want %s", tc.in, s.PyRepr(), tc.repr)
		}
	}
}

func TestParseBlock(t *testing.T) {
	cases := []struct {
		in      string
		pattern bool
		want    []int64
		wantErr bool
	}{
		{"0,0", true, []int64{0, 0}, false},
		{"3", true, []int64{3}, false},
		{"", true, []int64{}, false},
		{",1", true, nil, true},
		{"-1", false, nil, false},
		{"0:1", false, nil, false},
	}
	for _, tc := range cases {
		if MatchesBlockPattern(tc.in) != tc.pattern {
			t.Errorf("%q: pattern mismatch", tc.in)
			continue
		}
		if !tc.pattern {
			continue
		}
		got, err := ParseBlock(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%q: got %v %v", tc.in, got, err)
		}
	}
}

func TestReadBlock(t *testing.T) {
	a := arange(t, 4, 6)
	a.st.Chunks = [][]int{{2, 2}, {3, 3}}
	ctx := context.Background()
	got, err := ReadBlock(ctx, a, []int64{1, 1}, Slice{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{15, 16, 17, 21, 22, 23}; !reflect.DeepEqual(int64s(got.Data), want) || !reflect.DeepEqual(got.Shape, []int{2, 3}) {
		t.Errorf("block (1,1): %v %v", got.Shape, int64s(got.Data))
	}
	s, _ := ParseSlice("1,::-2")
	got, err = ReadBlock(ctx, a, []int64{0, 1}, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{11, 9}; !reflect.DeepEqual(int64s(got.Data), want) {
		t.Errorf("block (0,1) slice: %v", int64s(got.Data))
	}
	var be *BlockError
	if _, err := ReadBlock(ctx, a, []int64{2, 0}, Slice{}, 0); !errors.As(err, &be) {
		t.Errorf("out-of-range block: %v", err)
	}
	if _, err := ReadBlock(ctx, a, []int64{0}, Slice{}, 0); !errors.As(err, &be) {
		t.Errorf("short block: %v", err)
	}
	if _, err := ReadSlice(ctx, a, Slice{}, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("limit: %v", err)
	}
}

func TestAutoChunks(t *testing.T) {
	cases := []struct {
		shape    []int
		itemsize int
		want     [][]int
	}{
		{[]int{100, 100}, 8, [][]int{{100}, {100}}},
		{[]int{100, 100, 100}, 8, [][]int{{100}, {100}, {100}}},
		{[]int{0}, 8, [][]int{{0}}},
		{[]int{}, 8, [][]int{}},
		// 20000 x 20000 float64 is 3.2 GB: dask makes chunks of 4096 rows
		// and columns ((128 MiB / 8) ** 0.5 = 4096).
		{[]int{20000, 20000}, 8, [][]int{{4096, 4096, 4096, 4096, 3616}, {4096, 4096, 4096, 4096, 3616}}},
		// A short axis is kept whole and the rest shares the budget.
		{[]int{2, 100_000_000}, 8, [][]int{{2}, {8388608, 8388608, 8388608, 8388608, 8388608, 8388608, 8388608, 8388608, 8388608, 8388608, 8388608, 7725312}}},
	}
	for _, tc := range cases {
		if got := AutoChunks(tc.shape, tc.itemsize); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.shape, got, tc.want)
		}
	}
}

func FuzzParseSlice(f *testing.F) {
	for _, s := range []string{"", "0:2,0:3", "::-1", "5", "-1", "1:5:2", ",", "99999999999999999999:-3", "(1, 2)"} {
		f.Add(s, uint8(7), uint8(5))
	}
	f.Fuzz(func(t *testing.T, s string, d0, d1 uint8) {
		sl, err := ParseSlice(s)
		if err != nil {
			return
		}
		_ = sl.PyRepr()
		shape := []int{int(d0 % 16), int(d1 % 16)}
		want, err := sl.ShapeAfter(shape)
		if err != nil {
			return
		}
		a := arange(t, shape...)
		got, err := ReadSlice(context.Background(), a, sl, 0)
		if err != nil {
			t.Fatalf("%q on %v: ShapeAfter ok but read failed: %v", s, shape, err)
		}
		if !reflect.DeepEqual(got.Shape, want) {
			t.Fatalf("%q on %v: shape %v, ShapeAfter %v", s, shape, got.Shape, want)
		}
		for _, v := range int64s(got.Data) {
			if v < 0 || v >= int64(shape[0]*shape[1]) {
				t.Fatalf("%q: element %d out of the array", s, v)
			}
		}
	})
}
