package bearerjwt

import (
	"slices"
	"strings"
)

// Scopes reads the scopes a token grants: "scope", a space-separated
// string (RFC 8693 section 4.2, RFC 9068), and "scp", a string or a list
// of strings (Entra, Okta). Both are read and merged; duplicates and empty
// entries are dropped, and the order of first appearance is kept.
func Scopes(claims map[string]any) []string {
	var out []string
	add := func(s string) {
		for _, f := range strings.Fields(s) {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	if s, ok := claims["scope"].(string); ok {
		add(s)
	}
	switch v := claims["scp"].(type) {
	case string:
		add(v)
	case []any:
		for _, item := range v {
			if s, ok := item.(string); ok {
				add(s)
			}
		}
	case []string:
		for _, s := range v {
			add(s)
		}
	}
	return out
}

// HasAll reports whether granted includes every scope of want.
func HasAll(granted, want []string) bool {
	for _, w := range want {
		if !slices.Contains(granted, w) {
			return false
		}
	}
	return true
}
