package config

import (
	"reflect"
	"testing"
)

func TestExpand(t *testing.T) {
	env := mapEnv(map[string]string{"A": "alpha", "B_2": "beta", "REF": "${A}", "EMPTY": ""})
	tests := []struct {
		in, want string
		missing  []string
	}{
		{"plain", "plain", nil},
		{"${A}", "alpha", nil},
		{"$A", "alpha", nil},
		{"x${A}y$B_2.z", "xalphaybeta.z", nil},
		{"$A$B_2", "alphabeta", nil},
		{"${EMPTY}", "", nil},
		// Substituted text is not expanded again (os.path.expandvars).
		{"${REF}", "${A}", nil},
		// No escape: "$$" stays, and "$${A}" is "$" then the variable.
		{"$$", "$$", nil},
		{"$${A}", "$alpha", nil},
		{"$", "$", nil},
		{"cost: 5$", "cost: 5$", nil},
		{"${A", "${A", nil},
		{"$-x", "$-x", nil},
		// A bare unset reference is kept, as Tiled keeps it.
		{"pa$word", "pa$word", nil},
		{"$2b$12$hash", "$2b$12$hash", nil},
		// A braced unset reference is reported (Tiled would keep it).
		{"${NOPE}", "${NOPE}", []string{"NOPE"}},
		{"${NOPE}-${A}-${ALSO}", "${NOPE}-alpha-${ALSO}", []string{"NOPE", "ALSO"}},
		{"${}", "${}", []string{""}},
		{"${not a name}", "${not a name}", []string{"not a name"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, missing := expand(tt.in, env)
			var names []string
			for _, m := range missing {
				names = append(names, m.name)
			}
			if got != tt.want || !reflect.DeepEqual(names, tt.missing) {
				t.Errorf("expand(%q) = %q, missing %q; want %q, %q", tt.in, got, names, tt.want, tt.missing)
			}
		})
	}
}

func TestInterpolationOnlyTouchesValues(t *testing.T) {
	doc := "authentication:\n  providers:\n    - provider: toy\n      authenticator: dictionary\n      args:\n        users_to_passwords:\n          $USER: ${PW}\n" + minimalTrees
	c := mustLoad(t, doc, map[string]string{"USER": "mallory", "PW": "pw"})
	got := c.Authentication.Providers[0].Dictionary.Passwords()
	if !reflect.DeepEqual(got, map[string]string{"$USER": "pw"}) {
		t.Errorf("keys must not be expanded (Tiled expands values only): %v", got)
	}
}

// An aliased value is expanded once, not once per reference.
func TestInterpolationOfSharedValues(t *testing.T) {
	doc := "authentication:\n  secret_keys:\n    - &k ${K}\n    - *k\n" + minimalTrees
	c := mustLoad(t, doc, map[string]string{"K": "${K}x"})
	keys := c.Authentication.SecretKeys
	if len(keys) != 2 || keys[0].Reveal() != "${K}x" || keys[1].Reveal() != "${K}x" {
		t.Errorf("keys %v", []string{keys[0].Reveal(), keys[1].Reveal()})
	}
}
