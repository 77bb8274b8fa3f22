package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tiledgo/server/internal/store/pgtest"
)

// BenchmarkRefreshRoute is one POST /api/v1/auth/session/refresh through
// the whole handler chain (middleware, rotation on PostgreSQL, token
// minting, JSON), without the network: the server's own cost of a
// refresh, and its allocations. `make bench` measures the same route
// over loopback against a raw UPDATE.
func BenchmarkRefreshRoute(b *testing.B) {
	a, err := assembleConfig(b, fmt.Sprintf(`
authentication:
  secret_keys: [bench-refresh-route-key]
  providers:
    - {provider: toy, authenticator: dictionary, args: {users_to_passwords: {alice: pw}}}
database: {uri: %q, init_if_not_exists: true}
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
`, pgtest.NewDatabase(b)), nil)
	if err != nil {
		b.Fatal(err)
	}
	h := a.server.Handler()
	do := func(path, contentType, body string) map[string]any {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != http.StatusOK {
			b.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
		return out
	}
	tok := do("/api/v1/auth/provider/toy/token", "application/x-www-form-urlencoded",
		url.Values{"username": {"alice"}, "password": {"pw"}}.Encode())["refresh_token"].(string)
	b.ReportAllocs()
	for b.Loop() {
		tok = do("/api/v1/auth/session/refresh", "application/json", `{"refresh_token":"`+tok+`"}`)["refresh_token"].(string)
	}
}
