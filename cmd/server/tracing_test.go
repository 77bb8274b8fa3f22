package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiledgo/server/internal/store/pgtest"
)

// TestSpanTree (issue 17): a login's and a refresh's traces nest as an
// operator reads them: the HTTP server span, the authenticate span (which
// provider and authenticator, the outcome), the store methods under it,
// the SQL statements under those, and the token signing; a bearer request's
// authenticate span holds the token verification. No span carries a
// credential.
func TestSpanTree(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9") // turns the server spans on; nothing is exported

	yml := fmt.Sprintf(`
authentication:
  secret_keys: [span-tree-test-key]
  providers:
    - provider: toy
      authenticator: tiled.authenticators:DictionaryAuthenticator
      args: {users_to_passwords: {alice: span-tree-password}}
  tiled_admins: [{provider: toy, id: alice}]
database: {uri: %q, init_if_not_exists: true}
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
`, pgtest.NewDatabase(t))
	srv, err := serveConfig(t, yml, nil)
	if err != nil {
		t.Fatal(err)
	}

	post := func(path, contentType, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(srv.URL+path, contentType, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %v %v", path, resp.StatusCode, out, err)
		}
		return out
	}
	login := post("/api/v1/auth/provider/toy/token", "application/x-www-form-urlencoded",
		url.Values{"username": {"alice"}, "password": {"span-tree-password"}}.Encode())
	refresh := login["refresh_token"].(string)
	post("/api/v1/auth/session/refresh", "application/json", `{"refresh_token": "`+refresh+`"}`)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/metadata/", nil)
	req.Header.Set("Authorization", "Bearer "+login["access_token"].(string))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer GET: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	spans := rec.Ended()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	parent := func(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan { return byID[s.Parent().SpanID()] }
	server := func(route string) sdktrace.ReadOnlySpan {
		for _, s := range spans {
			if s.Name() == route && s.SpanKind() == trace.SpanKindServer {
				return s
			}
		}
		t.Fatalf("no server span %q among %d spans", route, len(spans))
		return nil
	}
	childOf := func(p sdktrace.ReadOnlySpan, match func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if q := parent(s); q != nil && q.SpanContext().SpanID() == p.SpanContext().SpanID() && match(s) {
				out = append(out, s)
			}
		}
		return out
	}
	named := func(name string) func(sdktrace.ReadOnlySpan) bool {
		return func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name }
	}
	isStore := func(s sdktrace.ReadOnlySpan) bool { return strings.HasPrefix(s.Name(), "store.") }
	isSQL := func(s sdktrace.ReadOnlySpan) bool {
		for _, a := range s.Attributes() {
			if a.Key == "db.system.name" && a.Value.AsString() == "postgresql" && !isStore(s) {
				return true
			}
		}
		return false
	}
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, a := range s.Attributes() {
			if string(a.Key) == key {
				return a.Value.Emit()
			}
		}
		return ""
	}

	for _, tc := range []struct {
		route, grant, store string
	}{
		{"POST /api/v1/auth/provider/:provider/token", "password_or_device_code", "store.CreateSession"},
		{"POST /api/v1/auth/session/refresh", "refresh_token", "store.RotateRefresh"},
	} {
		t.Run(tc.grant, func(t *testing.T) {
			root := server(tc.route)
			if attr(root, "http.route") != strings.TrimPrefix(tc.route, "POST ") || attr(root, "http.response.status_code") != "200" ||
				attr(root, "http.request.method") != "POST" {
				t.Errorf("server span attributes %v", root.Attributes())
			}
			auth := childOf(root, named("authenticate"))
			if len(auth) != 1 {
				t.Fatalf("authenticate spans under %s: %d", tc.route, len(auth))
			}
			if attr(auth[0], "tiled.auth.grant") != tc.grant || attr(auth[0], "tiled.auth.outcome") != "accepted" {
				t.Errorf("authenticate attributes %v", auth[0].Attributes())
			}
			if tc.grant != "refresh_token" && (attr(auth[0], "tiled.auth.provider") != "toy" || attr(auth[0], "tiled.auth.authenticator") != "dictionary") {
				t.Errorf("login authenticate attributes %v", auth[0].Attributes())
			}
			stores := childOf(auth[0], named(tc.store))
			if len(stores) != 1 {
				var names []string
				for _, s := range childOf(auth[0], func(sdktrace.ReadOnlySpan) bool { return true }) {
					names = append(names, s.Name())
				}
				t.Fatalf("%s under authenticate: %d; children %v", tc.store, len(stores), names)
			}
			sql := childOf(stores[0], isSQL)
			if len(sql) == 0 {
				t.Fatalf("no SQL span under %s", tc.store)
			}
			if attr(sql[0], "db.namespace") == "" || attr(sql[0], "server.address") == "" || attr(sql[0], "server.port") == "" {
				t.Errorf("SQL span attributes %v", sql[0].Attributes())
			}
			if len(childOf(auth[0], named("tokens.sign"))) != 1 {
				t.Error("no tokens.sign span under authenticate")
			}
		})
	}
	t.Run("start-up", func(t *testing.T) {
		for _, name := range []string{"store.migrate.up", "bootstrap.admins"} {
			var found sdktrace.ReadOnlySpan
			for _, s := range spans {
				if s.Name() == name {
					found = s
				}
			}
			if found == nil {
				t.Fatalf("no %s span", name)
			}
			if name == "store.migrate.up" && len(childOf(found, isSQL)) == 0 {
				t.Error("no SQL span under the migration")
			}
			if name == "bootstrap.admins" && len(childOf(found, isStore)) == 0 {
				t.Error("no store span under the admin bootstrap")
			}
		}
	})
	t.Run("bearer", func(t *testing.T) {
		root := server("GET /api/v1/metadata/*")
		auth := childOf(root, named("authenticate"))
		if len(auth) != 1 || attr(auth[0], "tiled.auth.credential") != "bearer" || attr(auth[0], "tiled.auth.outcome") != "accepted" {
			t.Fatalf("authenticate under the bearer GET: %d", len(auth))
		}
		if len(childOf(auth[0], named("tokens.verify"))) != 1 {
			t.Error("no tokens.verify span under authenticate")
		}
	})
	// No credential in any span: not the password, the tokens, nor the key.
	for _, s := range spans {
		for _, a := range s.Attributes() {
			v := a.Value.Emit()
			for _, secret := range []string{"span-tree-password", refresh, login["access_token"].(string), "span-tree-test-key"} {
				if strings.Contains(v, secret) {
					t.Errorf("span %s attribute %s carries a secret", s.Name(), a.Key)
				}
			}
		}
	}
}
