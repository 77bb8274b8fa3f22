package authapi

import (
	"strings"
	"testing"
)

func TestNormalizeUserCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"bcdf-ghjk", "BCDFGHJK", true},
		{" bcdf ghjk ", "BCDFGHJK", true},
		{"BCDFGHJK", "BCDFGHJK", true},
		{"bc-df-gh-jk", "BCDFGHJK", true},
		{"BCDF-GHJ", "", false},
		{"BCDF-GHJKL", "", false},
		{"ABCD-1234", "", false}, // vowels and digits are never drawn
		{"", "", false},
		{"ＢＣＤＦ-ＧＨＪＫ", "", false}, // full-width letters are not ours
	} {
		got, ok := normalizeUserCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normalizeUserCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestNewUserCode(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := newUserCode()
		if n, ok := normalizeUserCode(c[:4] + "-" + c[4:]); !ok || n != c {
			t.Fatalf("drew %q, which does not read back", c)
		}
		seen[c] = true
	}
	// 1000 draws from 20^8 collide with probability about 2e-5.
	if len(seen) < 999 {
		t.Fatalf("only %d distinct codes in 1000 draws", len(seen))
	}
}

// FuzzNormalizeUserCode: a typed user code is untrusted input. Whatever it
// is, the result is one of the codes we could have drawn, and normalising
// is idempotent.
func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "ABCD-1234", "", "-", "ß", "\x00\xff", strings.Repeat("B", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := normalizeUserCode(in)
		if !ok {
			if got != "" {
				t.Fatalf("rejected %q but returned %q", in, got)
			}
			return
		}
		if len(got) != userCodeLen || strings.Trim(got, userCodeAlphabet) != "" {
			t.Fatalf("normalizeUserCode(%q) = %q, not a user code", in, got)
		}
		if again, ok := normalizeUserCode(strings.ToLower(got[:4]) + "-" + got[4:]); !ok || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, got, again)
		}
	})
}
