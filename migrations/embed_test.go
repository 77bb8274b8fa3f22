package migrations

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// The dialects move in step: the same versions, with Up and Down sections.
func TestDialectsInStep(t *testing.T) {
	names := func(fsys fs.FS) []string {
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
			b, err := fs.ReadFile(fsys, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			for _, marker := range []string{"-- +goose Up", "-- +goose Down"} {
				if !strings.Contains(string(b), marker) {
					t.Errorf("%s lacks %q", e.Name(), marker)
				}
			}
		}
		return out
	}
	pg, lite := names(Postgres()), names(SQLite())
	if len(pg) == 0 || !reflect.DeepEqual(pg, lite) {
		t.Fatalf("postgres migrations %v, sqlite migrations %v: want the same non-empty set", pg, lite)
	}
}
