package tokens

import (
	"testing"
	"time"
)

func BenchmarkVerifyAccess(b *testing.B) {
	k, _ := NewKeys([]string{"k1", "k2"})
	tok, err := k.SignAccess(sampleClaims(), t0, t0.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.VerifyAccess(tok, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignAccess(b *testing.B) {
	k, _ := NewKeys([]string{"k1"})
	c := sampleClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.SignAccess(c, t0, t0.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}
