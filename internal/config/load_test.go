package config

import (
	"strings"
	"testing"
)

const minimalTrees = "trees:\n  - path: /\n    tree: tiled.examples.generated_minimal:tree\n"

func loadYAML(t *testing.T, doc string, env map[string]string) (*Config, error) {
	t.Helper()
	return LoadBytes("config.yml", []byte(doc), mapEnv(env))
}

// problemsOf loads doc and returns its problems as "line: path: msg" lines.
func problemsOf(t *testing.T, doc string, env map[string]string) []string {
	t.Helper()
	_, err := loadYAML(t, doc, env)
	if err == nil {
		return nil
	}
	var out []string
	for _, p := range asErrors(t, err).Problems {
		out = append(out, p.String())
	}
	return out
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		env  map[string]string
		want []string // substrings, one per expected problem, in order
	}{
		{"unknown top-level key", "trees_: []\n" + minimalTrees,
			nil, []string{`config.yml:1: trees_: unknown key (did you mean "trees"?)`}},
		{"unknown key in authentication", "authentication:\n  allow_anonymous: true\n" + minimalTrees,
			nil, []string{`config.yml:2: authentication.allow_anonymous: unknown key (did you mean "allow_anonymous_access"?)`}},
		{"unknown key in a provider", "authentication:\n  providers:\n    - provider: toy\n      authenticator: dummy\n      arg: {}\n" + minimalTrees,
			nil, []string{`config.yml:5: authentication.providers[0].arg: unknown key (did you mean "args"?)`}},
		{"unknown key in authenticator args", "authentication:\n  providers:\n    - provider: toy\n      authenticator: dictionary\n      args:\n        users_to_password: {alice: x}\n" + minimalTrees,
			nil, []string{`config.yml:6: authentication.providers[0].args.users_to_password: unknown key (did you mean "users_to_passwords"?)`,
				`authentication.providers[0].args.users_to_passwords: is required`}},
		{"unknown key in a tree", "trees:\n  - path: /\n    tree: x:y\n    argz: {}\n",
			nil, []string{`config.yml:4: trees[0].argz: unknown key (did you mean "args"?)`}},
		{"unknown key in server", "server:\n  log_fmt: json\n" + minimalTrees,
			nil, []string{`config.yml:2: server.log_fmt: unknown key (did you mean "log_format"?)`}},
		{"unknown uvicorn parameter", "uvicorn:\n  hostname: 0.0.0.0\n" + minimalTrees,
			nil, []string{`config.yml:2: uvicorn.hostname: unknown key`}},
		{"quoted boolean", "authentication:\n  allow_anonymous_access: \"yes\"\n" + minimalTrees,
			nil, []string{`config.yml:2: authentication.allow_anonymous_access: expected a boolean (true or false), got a string`}},
		{"list expected", "authentication:\n  secret_keys: abc\n" + minimalTrees,
			nil, []string{`config.yml:2: authentication.secret_keys: expected a list, got a string`}},
		{"string expected", "authentication:\n  secret_keys: [1234]\n" + minimalTrees,
			nil, []string{`authentication.secret_keys[0]: expected a string, got an integer (quote the value to make it a string)`}},
		{"quoted integer", "uvicorn:\n  port: \"8000\"\n" + minimalTrees,
			nil, []string{`config.yml:2: uvicorn.port: expected an integer, got a string`}},
		{"float for integer", "database:\n  uri: sqlite://\n  pool_size: 1.5\n" + minimalTrees,
			nil, []string{`config.yml:3: database.pool_size: expected an integer, got a number`}},
		{"mapping expected", "authentication:\n  providers:\n    - provider: toy\n      authenticator: dummy\n      args: []\n" + minimalTrees,
			nil, []string{`config.yml:5: authentication.providers[0].args: expected a mapping, got a list`}},
		{"list of admins expected", "authentication:\n  tiled_admins: {provider: toy, id: a}\n" + minimalTrees,
			nil, []string{`authentication.tiled_admins: expected a list, got a mapping`}},
		{"trees must be a list", "trees:\n  path: /\n", nil, []string{`config.yml:2: trees: expected a list, got a mapping`}},
		{"tree without tree", "trees:\n  - path: /\n", nil, []string{`config.yml:2: trees[0].tree: is required`}},
		{"provider without authenticator", "authentication:\n  providers:\n    - provider: toy\n" + minimalTrees,
			nil, []string{`config.yml:3: authentication.providers[0].authenticator: is required`}},
		{"provider name with a space", "authentication:\n  providers:\n    - provider: my toy\n      authenticator: dummy\n" + minimalTrees,
			nil, []string{`config.yml:3: authentication.providers[0].provider: must be a URL-friendly name`}},
		{"provider name with a slash", "authentication:\n  providers:\n    - {provider: a/b, authenticator: dummy}\n" + minimalTrees,
			nil, []string{`authentication.providers[0].provider: must be a URL-friendly name`}},
		{"duplicate provider names", "authentication:\n  providers:\n    - {provider: toy, authenticator: dummy}\n    - {provider: toy, authenticator: pam}\n" + minimalTrees,
			nil, []string{`config.yml:4: authentication.providers[1].provider: provider name "toy" is used twice (also at line 3)`}},
		{"admin of unknown provider", "authentication:\n  providers:\n    - {provider: toy, authenticator: dummy}\n  tiled_admins:\n    - {provider: pam, id: root}\n" + minimalTrees,
			nil, []string{`config.yml:5: authentication.tiled_admins: provider "pam" is not among authentication.providers (toy)`}},
		{"unsupported authenticator", "authentication:\n  providers:\n    - {provider: p, authenticator: \"tiled.authenticators:SAMLAuthenticator\"}\n" + minimalTrees,
			nil, []string{`authentication.providers[0].authenticator: unsupported authenticator "tiled.authenticators:SAMLAuthenticator"`}},
		{"dictionary without args", "authentication:\n  providers:\n    - {provider: toy, authenticator: dictionary}\n" + minimalTrees,
			nil, []string{`config.yml:3: authentication.providers[0].args.users_to_passwords: is required`}},
		{"numeric password", "authentication:\n  providers:\n    - provider: toy\n      authenticator: dictionary\n      args:\n        users_to_passwords:\n          alice: 1234\n" + minimalTrees,
			nil, []string{`config.yml:7: authentication.providers[0].args.users_to_passwords.alice: expected a string, got an integer (quote the value`}},
		{"oidc without secret or endpoints", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n" + minimalTrees,
			nil, []string{`config.yml:6: authentication.providers[0].args.client_secret: is required`,
				`config.yml:6: authentication.providers[0].args.well_known_uri: is required (or the older token_uri + authorization_endpoint + public_keys)`}},
		{"oidc with both forms", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args: {client_id: c, client_secret: s, well_known_uri: \"https://a/.well-known/openid-configuration\", token_uri: \"https://a/token\"}\n" + minimalTrees,
			nil, []string{`config.yml:5: authentication.providers[0].args: give either well_known_uri or token_uri + authorization_endpoint + public_keys, not both`}},
		{"oidc older form incomplete", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args: {client_id: c, client_secret: s, token_uri: \"https://a/token\"}\n" + minimalTrees,
			nil, []string{`args.authorization_endpoint: is required`, `args.public_keys: is required`}},
		{"oidc relative well-known URI", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n        client_secret: s\n        well_known_uri: example.com/.well-known/openid-configuration\n" + minimalTrees,
			nil, []string{`config.yml:8: authentication.providers[0].args.well_known_uri: must be an absolute http:// or https:// URL`}},
		{"private key in public_keys", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n        client_secret: s\n        token_uri: https://a/t\n        authorization_endpoint: https://a/a\n        public_keys:\n          - {kty: RSA, n: x, e: AQAB, d: secret}\n" + minimalTrees,
			nil, []string{`config.yml:11: authentication.providers[0].args.public_keys[0].d: private key material does not belong in public_keys`}},
		{"unknown token endpoint auth method", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n        client_secret: s\n        well_known_uri: https://a/.well-known/openid-configuration\n        token_endpoint_auth_method: private_key_jwt\n" + minimalTrees,
			nil, []string{`config.yml:9: authentication.providers[0].args.token_endpoint_auth_method: must be one of client_secret_basic, client_secret_post, none`}},
		{"public client with a secret", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n        client_secret: s\n        well_known_uri: https://a/.well-known/openid-configuration\n        token_endpoint_auth_method: none\n" + minimalTrees,
			nil, []string{`config.yml:7: authentication.providers[0].args.client_secret: must not be given with token_endpoint_auth_method none (a public client has no secret)`}},
		{"JWK without kty", "authentication:\n  providers:\n    - provider: o\n      authenticator: oidc\n      args:\n        client_id: c\n        client_secret: s\n        token_uri: https://a/t\n        authorization_endpoint: https://a/a\n        public_keys: [{n: x}]\n" + minimalTrees,
			nil, []string{`authentication.providers[0].args.public_keys[0].kty: is required`}},
		{"zero duration", "authentication:\n  access_token_max_age: 0\n" + minimalTrees,
			nil, []string{`config.yml:2: authentication.access_token_max_age: must be positive`}},
		{"negative duration", "authentication:\n  refresh_token_max_age: -5\n" + minimalTrees,
			nil, []string{`authentication.refresh_token_max_age: must be positive`}},
		{"bad duration", "authentication:\n  session_max_age: forever\n" + minimalTrees,
			nil, []string{`authentication.session_max_age: expected a duration`}},
		{"huge duration", "authentication:\n  session_max_age: 1e20\n" + minimalTrees,
			nil, []string{`authentication.session_max_age: duration out of range`}},
		{"negative grace period", "server:\n  refresh_grace_period: -1s\n" + minimalTrees,
			nil, []string{`server.refresh_grace_period: must not be negative`}},
		{"bad log format", "server:\n  log_format: xml\n" + minimalTrees,
			nil, []string{`config.yml:2: server.log_format: must be one of text, json`}},
		{"pool size zero", "database:\n  uri: sqlite://\n  pool_size: 0\n" + minimalTrees,
			nil, []string{`config.yml:3: database.pool_size: must be between 1 and 10000`}},
		{"database without uri", "database:\n  pool_size: 3\n" + minimalTrees,
			nil, []string{`config.yml:2: database.uri: is required`}},
		{"neither catalog nor trees", "authentication:\n  allow_anonymous_access: true\n",
			nil, []string{`config.yml: configuration must specify 'catalog' or 'trees'`}},
		{"empty file", "", nil, []string{`config.yml: configuration must specify 'catalog' or 'trees'`}},
		{"empty trees", "trees: []\n", nil, []string{`configuration must specify 'catalog' or 'trees'`}},
		{"catalog and trees", "catalog:\n  uri: sqlite:///c.db\n" + minimalTrees,
			nil, []string{`config.yml:1: catalog: 'catalog' specifies a single catalog, 'trees' several`}},
		{"catalog without uri", "catalog:\n  init_if_not_exists: true\n", nil, []string{`config.yml:2: catalog.uri: is required`}},
		{"nested trees", "trees:\n  - {path: /, tree: a:b}\n  - {path: /x, tree: a:c}\n",
			nil, []string{`config.yml:3: trees: tree paths cannot be subpaths of each other: "/x" and "/" (config.yml:2)`}},
		{"same tree path twice", "trees:\n  - {path: /a, tree: a:b}\n  - {path: a/, tree: a:c}\n",
			nil, []string{`config.yml:3: trees: tree paths cannot be subpaths of each other: "/a" and "/a"`}},
		{"policy names unknown provider", "authentication:\n  providers: [{provider: toy, authenticator: dummy}]\naccess_control:\n  access_policy: p:Q\n  args:\n    provider: other\n" + minimalTrees,
			nil, []string{`config.yml:6: access_control.args.provider: provider "other" is not among authentication.providers (toy)`}},
		{"duplicate key in a mapping", "authentication:\n  allow_anonymous_access: true\n  allow_anonymous_access: false\n" + minimalTrees,
			nil, []string{`config.yml:3: authentication.allow_anonymous_access: key given twice in the same mapping`}},
		{"two documents", minimalTrees + "---\n" + minimalTrees,
			nil, []string{`config.yml:4: invalid YAML: expected a single document, found another`}},
		{"YAML syntax error", "trees:\n  - path: /\n\ttree: x\n", nil, []string{`config.yml:2: invalid YAML: found a tab character that violates indentation`}}, // the line yaml.v3 reports
		{"top level is a list", "- a\n- b\n", nil, []string{`config.yml:1: expected a mapping of settings at the top level, got a list`}},
		{"unset braced variable", "authentication:\n  secret_keys: [\"${NOPE}\"]\n" + minimalTrees,
			nil, []string{`config.yml:2: authentication.secret_keys[0]: environment variable NOPE is not set (referenced as ${NOPE})`}},
		{"empty variable reference", "authentication:\n  single_user_api_key: \"${}\"\n" + minimalTrees,
			nil, []string{`authentication.single_user_api_key: empty variable reference ${}`}},
		{"unset variable in an ignored section", "streaming_cache:\n  uri: redis://:${REDIS_PASSWORD}@h:6379\n" + minimalTrees,
			nil, []string{`config.yml:2: streaming_cache.uri: environment variable REDIS_PASSWORD is not set`}},
		{"variable not a number", "uvicorn:\n  port: ${PORT}\n" + minimalTrees, map[string]string{"PORT": "http"},
			[]string{`config.yml:2: uvicorn.port: expected an integer in range`}},
		{"variable not a boolean", "authentication:\n  allow_anonymous_access: ${PUBLIC}\n" + minimalTrees, map[string]string{"PUBLIC": "maybe"},
			[]string{`authentication.allow_anonymous_access: expected a boolean (true or false) from the environment variable`}},
		{"an anchor does not make a key known", "base: &b 1\n" + minimalTrees, nil,
			[]string{`config.yml:1: base: unknown key`}},
		{"merge key onto a scalar", "authentication:\n  <<: 1\n" + minimalTrees, nil,
			[]string{`config.yml:2: authentication: a merge key (<<) must refer to a mapping or a list of mappings`}},
		{"non-string key where strings are wanted", "file_extensions:\n  1: text/plain\n" + minimalTrees, nil,
			[]string{`config.yml:2: file_extensions.1: key must be a string (quote it)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemsOf(t, tt.doc, tt.env)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d:\n got  %s\n want ...%s...", i, got[i], w)
				}
			}
		})
	}
}
