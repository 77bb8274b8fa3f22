package bearerjwt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Pointer is a parsed RFC 6901 JSON pointer ("/tid", "/ext/tenant",
// "/groups/0", "/a~1b" for the key "a/b").
type Pointer struct {
	raw    string
	tokens []string
}

// ParsePointer parses an RFC 6901 JSON pointer. The empty string is the
// whole document; otherwise the pointer starts with "/", and "~" is only
// followed by "0" (for "~") or "1" (for "/").
func ParsePointer(s string) (Pointer, error) {
	if s == "" {
		return Pointer{}, nil
	}
	if !strings.HasPrefix(s, "/") {
		return Pointer{}, errors.New(`a JSON pointer starts with "/" (RFC 6901), as in "/tid"`)
	}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		for j := 0; j < len(p); j++ {
			if p[j] == '~' && (j+1 >= len(p) || (p[j+1] != '0' && p[j+1] != '1')) {
				return Pointer{}, fmt.Errorf(`JSON pointer %q: "~" must be followed by "0" or "1" (RFC 6901 section 3)`, s)
			}
		}
		// Order matters (section 4): ~1 first, then ~0.
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return Pointer{raw: s, tokens: parts}, nil
}

// String returns the pointer as written.
func (p Pointer) String() string { return p.raw }

// IsZero reports whether p is the empty pointer (the whole document).
func (p Pointer) IsZero() bool { return len(p.tokens) == 0 }

// Lookup evaluates p against a JSON document decoded into any (maps,
// slices, strings, numbers). Array indexes are decimal without leading
// zeros; "-" and anything else that is not an index find nothing.
func (p Pointer) Lookup(doc any) (any, bool) {
	cur := doc
	for _, tok := range p.tokens {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, ok := arrayIndex(tok)
			if !ok || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// arrayIndex reads RFC 6901's array-index: "0", or digits not starting
// with "0".
func arrayIndex(tok string) (int, bool) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(tok)
	if err != nil {
		return 0, false
	}
	return n, true
}
