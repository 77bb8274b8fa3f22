package tree

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestInferCSV(t *testing.T) {
	cases := []struct {
		name    string
		csv     string
		want    []Column
		wantErr string
	}{
		{"types", "i,f,b,s\n1,1.5,True,a\n-2,3,false,b\n",
			[]Column{{"i", ColInt64}, {"f", ColFloat64}, {"b", ColBool}, {"s", ColString}}, ""},
		{"int with gap is float", "a\n1\n\n2\nNA\n", []Column{{"a", ColFloat64}}, ""},
		{"all missing is float", "a,b\n,1\nnan,2\n", []Column{{"a", ColFloat64}, {"b", ColInt64}}, ""},
		{"bool with gap", "a\nTrue\nnull\n", []Column{{"a", ColBool}}, ""},
		{"exponents and inf", "a\n1e3\n-inf\n.5\n", []Column{{"a", ColFloat64}}, ""},
		{"hex is a string", "a\n0x10\n", []Column{{"a", ColString}}, ""},
		{"header only", "a,b\n", []Column{{"a", ColString}, {"b", ColString}}, ""},
		{"unnamed and duplicate", "\uFEFFx,,x\n1,2,3\n", []Column{{"x", ColInt64}, {"Unnamed: 1", ColInt64}, {"x.1", ColInt64}}, ""},
		{"short row padded", "a,b\n1\n2,3\n", []Column{{"a", ColInt64}, {"b", ColFloat64}}, ""},
		{"quoted", "a,b\n\"x,y\",\"1\"\n", []Column{{"a", ColString}, {"b", ColInt64}}, ""},
		{"empty", "", nil, "no columns"},
		{"long row", "a\n1,2\n", nil, "expected 1 fields in line 2, saw 2"},
		{"reserved name", "_a\n1\n", nil, "reserved"},
		{"bad quote", "a\n\"x\n", nil, "csv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InferCSV(strings.NewReader(tc.csv))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadCSV(t *testing.T) {
	src := "i,f,b,s\n1,1.5,True,a\n2,,False,\n"
	cols, err := InferCSV(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadCSV(strings.NewReader(src), cols)
	if err != nil {
		t.Fatal(err)
	}
	if f.Rows() != 2 {
		t.Fatalf("rows %d", f.Rows())
	}
	i, fl, b, s := f.Columns[0], f.Columns[1], f.Columns[2], f.Columns[3]
	if !reflect.DeepEqual(i.Int64, []int64{1, 2}) || i.Null != nil {
		t.Errorf("int column %+v", i)
	}
	if fl.Float64[0] != 1.5 || !math.IsNaN(fl.Float64[1]) || !fl.IsNull(1) || fl.IsNull(0) {
		t.Errorf("float column %+v", fl)
	}
	if !reflect.DeepEqual(b.Bool, []bool{true, false}) {
		t.Errorf("bool column %+v", b)
	}
	if !reflect.DeepEqual(s.String, []string{"a", ""}) || !s.IsNull(1) {
		t.Errorf("string column %+v", s)
	}
	// A cell past the inference sample that does not fit is an error, not
	// a silently wrong value.
	if _, err := ReadCSV(strings.NewReader("i\n1\nx\n"), []Column{{"i", ColInt64}}); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("mismatched cell: %v", err)
	}
}

func FuzzInferCSV(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "x\nTrue\n\nFalse\n", "\"a\"\"\",b\n1e5,\"q\nr\"\n", "a\n1,2\n", ",,\n,,\n", "_x\n1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cols, err := InferCSV(strings.NewReader(s))
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, c := range cols {
			if names[c.Name] || strings.HasPrefix(c.Name, "_") {
				t.Fatalf("accepted bad column names %v", cols)
			}
			names[c.Name] = true
		}
		// Small inputs are sampled whole, so reading with the inferred
		// types must succeed and give columns of one length.
		fr, err := ReadCSV(strings.NewReader(s), cols)
		if err != nil {
			t.Fatalf("inferred %v but reading failed: %v", cols, err)
		}
		for _, c := range fr.Columns {
			if c.Len() != fr.Rows() {
				t.Fatalf("ragged frame")
			}
		}
	})
}
