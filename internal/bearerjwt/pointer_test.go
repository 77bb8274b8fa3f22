package bearerjwt

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestPointer(t *testing.T) {
	var doc any
	_ = json.Unmarshal([]byte(`{"tid":"t1","ext":{"tenant":"t2"},"a/b":"slash","m~n":"tilde","":"empty",
		"groups":["g0","g1"],"n":{"0":"zero-key"}}`), &doc)
	tests := []struct {
		ptr   string
		want  any
		found bool
	}{
		{"/tid", "t1", true},
		{"/ext/tenant", "t2", true},
		{"/a~1b", "slash", true},
		{"/m~0n", "tilde", true},
		{"/", "empty", true},
		{"/groups/1", "g1", true},
		{"/groups/01", nil, false},
		{"/groups/-", nil, false},
		{"/groups/2", nil, false},
		{"/groups/x", nil, false},
		{"/n/0", "zero-key", true},
		{"/tid/x", nil, false},
		{"/missing", nil, false},
	}
	for _, tt := range tests {
		p, err := ParsePointer(tt.ptr)
		if err != nil {
			t.Fatalf("%q: %v", tt.ptr, err)
		}
		got, found := p.Lookup(doc)
		if found != tt.found || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %v %v, want %v %v", tt.ptr, got, found, tt.want, tt.found)
		}
	}
	// "~01" is "~1" literally, not "/" (RFC 6901 section 4's order).
	p, _ := ParsePointer("/~01")
	if got, _ := p.Lookup(map[string]any{"~1": "x"}); got != "x" {
		t.Errorf("~01 decoded wrongly")
	}
	for _, bad := range []string{"tid", "/a~", "/a~2b"} {
		if _, err := ParsePointer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		claims string
		want   []string
	}{
		{`{}`, nil},
		{`{"scope":"a b  c"}`, []string{"a", "b", "c"}},
		{`{"scp":"a b"}`, []string{"a", "b"}},
		{`{"scp":["a","b",3]}`, []string{"a", "b"}},
		{`{"scope":"a b","scp":["b","c"]}`, []string{"a", "b", "c"}},
		{`{"scope":7}`, nil},
	}
	for _, tt := range tests {
		var c map[string]any
		_ = json.Unmarshal([]byte(tt.claims), &c)
		if got := Scopes(c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.claims, got, tt.want)
		}
	}
	if !HasAll([]string{"a", "b"}, nil) || !HasAll([]string{"a", "b"}, []string{"b"}) || HasAll([]string{"a"}, []string{"a", "b"}) {
		t.Error("HasAll")
	}
}

func TestParseJWKS(t *testing.T) {
	ks, skipped, err := parseJWKS([]byte(`{"keys":[
		{"kty":"oct","k":"c2VjcmV0","kid":"sym"},
		{"kty":"RSA","use":"enc","kid":"enc","n":"sXch","e":"AQAB"},
		{"kty":"RSA","kid":"weak","e":"AQAB","n":"` + weakModulus + `"}]}`))
	if err == nil {
		t.Fatalf("a set with no usable key was accepted: %v", ks)
	}
	if len(skipped) != 3 {
		t.Fatalf("skipped %v", skipped)
	}
	if _, _, err := parseJWKS([]byte(`not json`)); err == nil {
		t.Fatal("garbage accepted")
	}
}

// weakModulus is a 1024-bit RSA modulus (base64url), under the 2048 minimum.
const weakModulus = "wVQ4kaOKLaUyyNpWJvBFmzIzvMvK5RGuXzUT4W8qq6M9QoDq-fd4z5D8SXg3IjpfYkv2nZSZ9NN6Iv4hqBnRvnLOxIjCqpU9yhI5JQ2f9mVt3DVhLA8ZzoUeqXT5sYfbm8X1UEmrsg6mDFOVU8t6Jl_ukp3G0lqTzaNgrNTGK1c"
