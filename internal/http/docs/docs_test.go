package docs

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"
)

// TestAssetsMatchSums: the embedded swagger-ui-dist files are the ones
// SHA256SUMS records (make swagger-ui rewrites both together).
func TestAssetsMatchSums(t *testing.T) {
	sums, err := fs.ReadFile(assets, "swaggerui/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		b, err := fs.ReadFile(assets, "swaggerui/"+name)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != want {
			t.Errorf("%s does not match SHA256SUMS", name)
		}
		n++
	}
	if n < 4 {
		t.Fatalf("only %d files listed", n)
	}
}
