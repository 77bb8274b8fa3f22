package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tiledgo/server/internal/config"
	"github.com/tiledgo/server/internal/http/docs"
	"github.com/tiledgo/server/internal/testing/oidcprovider"
	"github.com/tiledgo/server/internal/version"
)

// TestOpenAPICoversEveryRoute assembles the server in each mode, walks
// Echo's route table, and checks that every route is described in
// docs.Operations and in the served document, which must validate as
// OpenAPI 3 (kin-openapi).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	idp := oidcprovider.Start(t, oidcprovider.Options{ClientID: "tiled", ClientSecret: "s"})
	modes := map[string]string{
		"single-user": `trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]`,
		"multi-user with every provider kind and the auth block": fmt.Sprintf(`
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
authentication:
  providers:
    - {provider: toy, authenticator: dictionary, args: {users_to_passwords: {a: b}}}
    - {provider: idp, authenticator: oidc, args: {client_id: tiled, client_secret: s, well_known_uri: %q}}
auth: {enabled: true, issuer: %q}
swagger: {oauth2: {issuer: %q, client_id: swagger}}
`, idp.WellKnownURI(), idp.Issuer(), idp.Issuer()),
		"proxied": fmt.Sprintf(`
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
authentication:
  providers:
    - provider: p
      authenticator: tiled.authenticators:ProxiedOIDCAuthenticator
      args: {audience: a, client_id: c, well_known_uri: %q, device_flow_client_id: d}
`, idp.WellKnownURI()),
	}
	for name, yml := range modes {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.LoadBytes("config.yml", []byte(yml), nil)
			if err == nil {
				err = cfg.Finalize()
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, err := assemble(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), version.Info{Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			defer a.close()
			srv := httptest.NewServer(a.server.Handler())
			defer srv.Close()

			var docs0 []byte
			for _, p := range []string{"/openapi.json", "/api/v1/openapi.json"} {
				resp, err := http.Get(srv.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d", p, resp.StatusCode)
				}
				if docs0 != nil && string(b) != string(docs0) {
					t.Fatalf("%s differs from /openapi.json", p)
				}
				docs0 = b
			}
			loader := openapi3.NewLoader()
			doc, err := loader.LoadFromData(docs0)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if err := doc.Validate(loader.Context); err != nil {
				t.Fatalf("the document is not valid OpenAPI 3: %v", err)
			}
			routes := 0
			for _, r := range a.server.Echo().Routes() {
				if r.Method == http.MethodHead || strings.HasPrefix(r.Method, "echo_route") {
					continue
				}
				routes++
				key := r.Method + " " + r.Path
				if _, ok := docs.Operations[key]; !ok {
					t.Errorf("route %s is not described in internal/http/docs.Operations", key)
				}
				path := r.Path
				for _, seg := range strings.Split(r.Path, "/") {
					if strings.HasPrefix(seg, ":") {
						path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
					}
				}
				if strings.HasSuffix(path, "*") {
					path = path[:strings.LastIndex(path, "/")+1]
				}
				found := false
				for p, item := range doc.Paths.Map() {
					if (p == path || (strings.HasSuffix(r.Path, "*") && strings.HasPrefix(p, path) && !strings.Contains(p[len(path):], "/"))) &&
						item.GetOperation(r.Method) != nil {
						found = true
					}
				}
				if !found {
					t.Errorf("route %s missing from the served document", key)
				}
			}
			if routes < 10 {
				t.Fatalf("only %d routes: the walk is broken", routes)
			}
			if strings.Contains(string(docs0), "UNDOCUMENTED") {
				t.Error("the document has undocumented routes")
			}
			_, hasOIDC := doc.Components.SecuritySchemes["oidc"]
			if hasOIDC != strings.Contains(yml, "swagger:") {
				t.Errorf("oidc security scheme present = %v", hasOIDC)
			}
		})
	}
}

// TestDocsNoCDN: the Swagger UI page loads its assets from this server.
func TestDocsNoCDN(t *testing.T) {
	cfg, _ := config.LoadBytes("c.yml", []byte(`trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]`), nil)
	_ = cfg.Finalize()
	a, err := assemble(context.Background(), cfg, slog.New(slog.DiscardHandler), version.Info{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.server.Handler())
	defer srv.Close()
	for _, p := range []string{"/docs", "/api/v1/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css",
		"/docs/oauth2-redirect.html", "/docs/oauth2-redirect.js", "/docs/swagger-initializer.js"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		if strings.HasPrefix(p, "/docs") && !strings.HasSuffix(p, ".js") && !strings.HasSuffix(p, ".css") {
			for _, cdn := range []string{"unpkg", "jsdelivr", "cdnjs", "https://"} {
				if strings.Contains(string(b), cdn) {
					t.Fatalf("%s refers to %s", p, cdn)
				}
			}
		}
	}
	for _, p := range []string{"/docs/../go.mod", "/docs/nope.js", "/docs/.hidden"} {
		resp, _ := http.Get(srv.URL + p)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || strings.Contains(string(b), "module github.com") {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
}
