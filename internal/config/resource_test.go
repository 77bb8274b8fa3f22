package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// seed001 is seed 001's [auth] block as written, plus a tree.
const seed001 = `
[[trees]]
path = "/"
tree = "tiled.examples.generated_minimal:tree"

[auth]
enabled = true
issuer = "https://login.microsoftonline.com/<tenant-id>/v2.0"
audience = "api://datapress"
algorithms = ["RS256"] # RS/ES/PS variants only
leeway_secs = 60
jwks_refresh_secs = 3600
read_scopes = ["datasets:read"]
reload_scopes = ["datasets:reload"]
anonymous_read = false # true = keep GETs public
tenant_claim = "/tid" # JSON-pointer into JWT claims
allowed_tenants = ["<tenant-id>"] # empty = allow any tenant
admin_token_fallback = true # keep X-Admin-Token working
start_degraded = true # warn-and-continue if IdP unreachable at boot

[swagger.oauth2]
issuer = "https://login.microsoftonline.com/<tenant-id>/v2.0"
client_id = "<swagger-ui-spa-client-id>"
scopes = ["openid", "profile", "datasets:read", "datasets:reload"]
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSeed001TOML(t *testing.T) {
	c, err := Build([]string{writeFile(t, "datapress.toml", seed001)}, mapEnv(nil), Flags{})
	if err != nil {
		t.Fatal(err)
	}
	want := Auth{
		Enabled: true, Issuer: "https://login.microsoftonline.com/<tenant-id>/v2.0", Audience: "api://datapress",
		Algorithms: []string{"RS256"}, Leeway: time.Minute, JWKSRefresh: time.Hour,
		ReadScopes: []string{"datasets:read"}, ReloadScopes: []string{"datasets:reload"},
		TenantClaim: "/tid", AllowedTenants: []string{"<tenant-id>"}, AdminTokenFallback: true, StartDegraded: true,
		UserIDClaim: "sub",
	}
	if !reflect.DeepEqual(c.Auth, want) {
		t.Errorf("auth\n got %+v\nwant %+v", c.Auth, want)
	}
	if o := c.Swagger.OAuth2; o == nil || o.ClientID != "<swagger-ui-spa-client-id>" || len(o.Scopes) != 4 {
		t.Errorf("swagger %+v", o)
	}
	if c.SingleUser() {
		t.Error("an enabled auth block is not single-user mode")
	}
	if c.Database.Driver == DriverNone {
		t.Error("no identity database filled in")
	}
}

// The same block as YAML gives the same configuration.
func TestSeed001YAML(t *testing.T) {
	y := `
trees: [{path: /, tree: tiled.examples.generated_minimal:tree}]
auth:
  enabled: true
  issuer: https://login.microsoftonline.com/<tenant-id>/v2.0
  audience: api://datapress
  algorithms: [RS256]
  leeway_secs: 60
  jwks_refresh_secs: 3600
  read_scopes: [datasets:read]
  reload_scopes: [datasets:reload]
  anonymous_read: false
  tenant_claim: /tid
  allowed_tenants: [<tenant-id>]
  admin_token_fallback: true
  start_degraded: true
swagger:
  oauth2:
    issuer: https://login.microsoftonline.com/<tenant-id>/v2.0
    client_id: <swagger-ui-spa-client-id>
    scopes: [openid, profile, datasets:read, datasets:reload]
`
	fromYAML, err := Build([]string{writeFile(t, "datapress.yml", y)}, mapEnv(nil), Flags{})
	if err != nil {
		t.Fatal(err)
	}
	fromTOML, err := Build([]string{writeFile(t, "datapress.toml", seed001)}, mapEnv(nil), Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromYAML.Auth, fromTOML.Auth) || !reflect.DeepEqual(fromYAML.Swagger, fromTOML.Swagger) {
		t.Errorf("YAML %+v\nTOML %+v", fromYAML.Auth, fromTOML.Auth)
	}
}

func TestAuthDefaults(t *testing.T) {
	c, err := Build([]string{writeFile(t, "a.toml", "[[trees]]\npath='/'\ntree='x'\n[auth]\n")}, mapEnv(nil), Flags{})
	if err != nil {
		t.Fatal(err)
	}
	want := defaultAuth()
	if !reflect.DeepEqual(c.Auth, want) || !c.SingleUser() {
		t.Errorf("disabled auth %+v", c.Auth)
	}
}

// Every problem at once, each with its line and key path, in TOML as in YAML.
func TestAuthProblemsTOML(t *testing.T) {
	body := `[[trees]]
path = "/"
tree = "x"
[auth]
enabled = true
algorithms = ["RS256", "none", "HS256"]
leeway_secs = -1
tenant_claim = "tid"
allowed_tenants = ["a"]
admin_token = "in-a-file"
colour = "blue"
start_degraded = "yes"
[swagger.oauth2]
client_id = 7
`
	_, err := Build([]string{writeFile(t, "bad.toml", body)}, mapEnv(nil), Flags{})
	got := asErrors(t, err).Problems
	want := []string{
		"bad.toml:4: auth.issuer: is required when enabled = true",
		`bad.toml:6: auth.algorithms[1]: "none" is not accepted`,
		`bad.toml:6: auth.algorithms[2]: "HS256" is not accepted`,
		"bad.toml:7: auth.leeway_secs: must be between 0 and 300 seconds",
		`bad.toml:8: auth.tenant_claim: a JSON pointer starts with "/"`,
		"bad.toml:10: auth.admin_token: the admin token is never read from a file",
		`bad.toml:11: auth.colour: unknown key`,
		"bad.toml:12: auth.start_degraded: expected a boolean (true or false), got a string",
		"auth.swagger", // placeholder replaced below
	}
	want = want[:len(want)-1]
	want = append(want, "bad.toml:13: swagger.oauth2.issuer: is required", "bad.toml:14: swagger.oauth2.client_id: expected a string")
	text := make([]string, len(got))
	for i, p := range got {
		text[i] = filepath.Base(p.File) + ":" + strings.TrimPrefix(p.String(), p.File+":")
	}
	for _, w := range want {
		found := false
		for _, g := range text {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("missing %q in\n%s", w, strings.Join(text, "\n"))
		}
	}
}

func TestTOMLSyntax(t *testing.T) {
	_, err := Load([]string{writeFile(t, "x.toml", "[auth]\nenabled = true\nenabled = false\n")}, mapEnv(nil))
	p := asErrors(t, err).Problems
	if len(p) != 1 || p[0].Line != 3 || !strings.Contains(p[0].Msg, "invalid TOML") {
		t.Fatalf("%v", err)
	}
	_, err = Load([]string{writeFile(t, "y.toml", "[auth\n")}, mapEnv(nil))
	if p := asErrors(t, err).Problems; len(p) != 1 || !strings.Contains(p[0].Msg, "invalid TOML") {
		t.Fatalf("%v", err)
	}
}

// TOML's types map onto the schema: integers with underscores, inline
// tables, arrays of tables, dotted keys.
func TestTOMLShapes(t *testing.T) {
	body := `
uvicorn.port = 8_001
trees = [{path = "/a", tree = "x"}]
[[trees]]
path = "/b"
tree = "y"
[trees.args]
directory = "/data"
[authentication]
allow_anonymous_access = true
access_token_max_age = "15m"
`
	c, err := Load([]string{writeFile(t, "s.toml", body)}, mapEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "trees") {
		// trees given inline and as an array of tables is a TOML error.
		t.Fatalf("mixed trees forms: %v", err)
	}
	body = strings.Replace(body, `trees = [{path = "/a", tree = "x"}]`+"\n", "", 1)
	c, err = Load([]string{writeFile(t, "s.toml", body)}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Uvicorn.Port != 8001 || len(c.Trees) != 1 || c.Trees[0].Args["directory"] != "/data" ||
		!c.Authentication.AllowAnonymousAccess || c.Authentication.AccessTokenMaxAge != 15*time.Minute {
		t.Fatalf("%+v", c)
	}
}

func TestJWKSRefreshClamp(t *testing.T) {
	c, err := Build([]string{writeFile(t, "c.toml", "[[trees]]\npath='/'\ntree='x'\n[auth]\njwks_refresh_secs = 10\n")}, mapEnv(nil), Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.JWKSRefresh != time.Minute || !strings.Contains(strings.Join(c.Warnings, "\n"), "clamped to 60 s") {
		t.Fatalf("%v %v", c.Auth.JWKSRefresh, c.Warnings)
	}
}

func TestAdminTokenFromEnv(t *testing.T) {
	cfg := writeFile(t, "c.toml", "[[trees]]\npath='/'\ntree='x'\n")
	secret := writeFile(t, "token", "0123456789abcdef0123\n")
	c, err := Build([]string{cfg}, mapEnv(map[string]string{"TILED_ADMIN_TOKEN_FILE": secret}), Flags{})
	if err != nil || c.Auth.AdminToken.Reveal() != "0123456789abcdef0123" {
		t.Fatalf("from file: %v %q", err, c.Auth.AdminToken.Reveal())
	}
	if strings.Contains(c.Redacted(), "0123456789") {
		t.Fatal("admin token printed")
	}
	c, err = Build([]string{cfg}, mapEnv(map[string]string{"TILED_ADMIN_TOKEN": "fedcba9876543210fedc"}), Flags{})
	if err != nil || c.Auth.AdminToken.Reveal() != "fedcba9876543210fedc" {
		t.Fatalf("from env: %v", err)
	}
	for name, env := range map[string]map[string]string{
		"both":       {"TILED_ADMIN_TOKEN": "fedcba9876543210fedc", "TILED_ADMIN_TOKEN_FILE": secret},
		"short":      {"TILED_ADMIN_TOKEN": "short"},
		"empty":      {"TILED_ADMIN_TOKEN": " "},
		"no file":    {"TILED_ADMIN_TOKEN_FILE": filepath.Join(t.TempDir(), "missing")},
		"empty file": {"TILED_ADMIN_TOKEN_FILE": writeFile(t, "empty", "\n")},
	} {
		if _, err := Build([]string{cfg}, mapEnv(env), Flags{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestProxiedProviders(t *testing.T) {
	ok := `
trees: [{path: /, tree: x}]
authentication:
  providers:
    - provider: entra
      authenticator: tiled.authenticators:EntraAuthenticator
      args:
        audience: api://tiled
        client_id: abc
        well_known_uri: https://login.example/t/v2.0/.well-known/openid-configuration
        device_flow_client_id: dev
        scopes_map: {access_as_user: [read:metadata, read:data]}
  tiled_admins: [{provider: entra, id: dallan}]
`
	c, err := Build([]string{writeFile(t, "e.yml", ok)}, mapEnv(nil), Flags{})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Authentication.Providers[0]
	if p.Kind != KindEntra || !p.Proxied.Entra || p.Proxied.DeviceFlowClientID != "dev" ||
		!reflect.DeepEqual(p.Proxied.RequiredScopes(), []string{"read:data", "read:metadata"}) {
		t.Fatalf("%+v %+v", p, p.Proxied)
	}
	bad := map[string]string{
		"unknown Tiled scope":           strings.Replace(ok, "read:data]", "read:everything]", 1),
		"missing device_flow_client_id": strings.Replace(ok, "        device_flow_client_id: dev\n", "", 1),
		"entra has no user_id_claim":    strings.Replace(ok, "device_flow_client_id: dev", "device_flow_client_id: dev\n        user_id_claim: oid", 1),
		"with another provider":         strings.Replace(ok, "  tiled_admins:", "    - {provider: toy, authenticator: dummy}\n  tiled_admins:", 1),
	}
	for name, body := range bad {
		if _, err := Build([]string{writeFile(t, "b.yml", body)}, mapEnv(nil), Flags{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// tiled_admins may name the auth block's issuer as the provider.
func TestAdminsOfIssuer(t *testing.T) {
	body := `
trees: [{path: /, tree: x}]
auth: {enabled: true, issuer: "https://idp.example/realms/tiled"}
authentication:
  tiled_admins: [{provider: "https://idp.example/realms/tiled", id: alice}]
`
	if _, err := Build([]string{writeFile(t, "a.yml", body)}, mapEnv(nil), Flags{}); err != nil {
		t.Fatal(err)
	}
	body = strings.Replace(body, "enabled: true", "enabled: false", 1)
	if _, err := Build([]string{writeFile(t, "a.yml", body)}, mapEnv(nil), Flags{}); err == nil {
		t.Fatal("admin of a disabled issuer accepted")
	}
}
