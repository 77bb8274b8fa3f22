package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// exampleConfig reads one of examples/configs as a map, to run it with a
// test database and fixed secret_keys.
func exampleConfig(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(examplesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

// viewer is who looks: a dictionary user (by bearer token or API key) or
// nobody.
type viewer struct {
	name   string
	user   string // "" for anonymous
	useKey bool   // present an API key (scopes inherited) instead of the bearer token
}

func viewers() []viewer {
	return []viewer{
		{name: "alice", user: "alice"},
		{name: "alice's API key", user: "alice", useKey: true},
		{name: "bob", user: "bob"},
		{name: "cara", user: "cara"},
		{name: "anonymous"},
	}
}

func (v viewer) credentials(t *testing.T, c *client) http.Header {
	t.Helper()
	if v.user == "" {
		return nil
	}
	tp := mustLogin(t, c, v.user)
	if !v.useKey {
		return bearer(tp.Access)
	}
	return apikey(secretOf(t, mustCreateKey(t, c, bearer(tp.Access), map[string]any{"scopes": nil})))
}

// checkVisible: each of entries answers 200 when visible, else 404 exactly
// as a missing entry; the search of the root lists exactly the visible
// ones with their count (spec section 10). With denied, the viewer holds no
// scope at all (anonymous on a private server): every read is Tiled's 401.
func checkVisible(t *testing.T, c *client, h http.Header, entries, visible []string, denied bool) {
	t.Helper()
	for _, e := range entries {
		r := c.get("/api/v1/metadata/"+e, h)
		switch {
		case denied:
			expectDetail(t, r, http.StatusUnauthorized, noCredentialsDetail)
		case slices.Contains(visible, e):
			if expectStatus(t, r, http.StatusOK) {
				expectAt(t, object(t, r), e[strings.LastIndex(e, "/")+1:], "data", "id")
			}
		default:
			expectDetail(t, r, http.StatusNotFound, "No such entry: "+pyList(strings.Split(e, "/")))
		}
	}
	r := c.get("/api/v1/search/", h)
	if denied {
		expectDetail(t, r, http.StatusUnauthorized, noCredentialsDetail)
		return
	}
	if !expectStatus(t, r, http.StatusOK) {
		return
	}
	body := object(t, r)
	var ids []string
	v, _ := at(body, "data")
	list, _ := v.([]any)
	for _, item := range list {
		if id, ok := item.(map[string]any)["id"].(string); ok {
			ids = append(ids, id)
		}
	}
	var top []string
	for _, e := range visible {
		if !strings.Contains(e, "/") {
			top = append(top, e)
		}
	}
	if !slices.Equal(sortedCopy(ids), sortedCopy(top)) {
		t.Errorf("search lists %v, want %v", ids, top)
	}
	expectNumberAt(t, body, float64(len(top)), "meta", "count")
}

func pyList(parts []string) string {
	return "['" + strings.Join(parts, "', '") + "']"
}

// TestMultiAccessLists: Tiled's SimpleAccessPolicy as in
// examples/configs/access_lists.yml (alice [A, B], bob [C], cara all,
// public [D]), with and without anonymous access.
func TestMultiAccessLists(t *testing.T) {
	t.Parallel()
	entries := []string{"A", "B", "C", "D"}
	want := map[string][]string{
		"alice": {"A", "B", "D"}, "alice's API key": {"A", "B", "D"},
		"bob": {"C", "D"}, "cara": {"A", "B", "C", "D"}, "anonymous": {"D"},
	}
	forEachBackend(t, func(t *testing.T, db backend) {
		for _, anonymous := range []bool{true, false} {
			name := "allow_anonymous_access " + map[bool]string{true: "true", false: "false"}[anonymous]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				cfg := exampleConfig(t, "access_lists.yml")
				a := cfg["authentication"].(map[string]any)
				a["allow_anonymous_access"] = anonymous
				a["secret_keys"] = []any{muSecretKey}
				// A server of its own, so a database of its own (SQLite serves one process).
				cfg["database"] = map[string]any{"uri": newBackend(t, db.name).uri, "init_if_not_exists": true}
				s := startMU(t, cfg)
				for _, v := range viewers() {
					t.Run(v.name, func(t *testing.T) {
						t.Parallel()
						c := s.client(t)
						checkVisible(t, c, v.credentials(t, c), entries, want[v.name], v.user == "" && !anonymous)
					})
				}
				t.Run("data routes follow the policy", func(t *testing.T) {
					t.Parallel()
					c := s.client(t)
					alice, bob := bearer(mustLogin(t, c, "alice").Access), bearer(mustLogin(t, c, "bob").Access)
					expectStatus(t, c.get("/api/v1/array/full/A?slice=0:1,0:1", with(alice, "Accept", "application/json")), http.StatusOK)
					expectDetail(t, c.get("/api/v1/array/full/A?slice=0:1,0:1", with(bob, "Accept", "application/json")),
						http.StatusNotFound, "No such entry: ['A']")
					expectStatus(t, c.get("/api/v1/table/full/C", with(bob, "Accept", "text/csv")), http.StatusOK)
					expectDetail(t, c.get("/api/v1/table/full/C", with(alice, "Accept", "text/csv")), http.StatusNotFound, "No such entry: ['C']")
					if anonymous {
						expectStatus(t, c.get("/api/v1/search/D", nil), http.StatusOK)
						expectDetail(t, c.get("/api/v1/array/full/A?slice=0:1,0:1", hdr("Accept", "application/json")),
							http.StatusNotFound, "No such entry: ['A']")
					}
				})
			})
		}
	})
}

// TestMultiAccessTags: Tiled's TagBasedAccessPolicy over
// examples/access_tags/tag_definitions.yml, with two trees tagged public
// and data_B. data_B grants alice read scopes and, through its auto tag
// data_admin, cara the facility_admin role; Tiled grants a tag's scopes
// only when they are within the policy's scopes, so with the example's
// read-only policy scopes cara gets nothing from data_B.
func TestMultiAccessTags(t *testing.T) {
	t.Parallel()
	entries := []string{"public", "private", "public/A", "private/A", "private/C"}
	variants := []struct {
		name   string
		scopes []any
		want   map[string][]string
	}{
		{"policy scopes read-only", []any{"read:metadata", "read:data"}, map[string][]string{
			"alice": {"public", "public/A", "private", "private/A", "private/C"}, "alice's API key": {"public", "public/A", "private", "private/A", "private/C"},
			"bob": {"public", "public/A"}, "cara": {"public", "public/A"}, "anonymous": {"public", "public/A"},
		}},
		{"policy scopes all", nil, map[string][]string{
			"alice": {"public", "public/A", "private", "private/A", "private/C"}, "alice's API key": {"public", "public/A", "private", "private/A", "private/C"},
			"bob": {"public", "public/A"}, "cara": {"public", "public/A", "private", "private/A", "private/C"}, "anonymous": {"public", "public/A"},
		}},
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tags := filepath.Join(root, "examples", "access_tags", "tag_definitions.yml")
	forEachBackend(t, func(t *testing.T, db backend) {
		for _, vr := range variants {
			t.Run(vr.name, func(t *testing.T) {
				t.Parallel()
				cfg := muConfig(newBackend(t, db.name))
				a := authOf(cfg)
				delete(a, "tiled_admins")
				a["allow_anonymous_access"] = true
				args := map[string]any{
					"provider":           provToy,
					"tags_db":            map[string]any{"uri": "file:" + tags},
					"access_tags_parser": "tiled.access_control.access_tags:AccessTagsParser",
				}
				if vr.scopes != nil {
					args["scopes"] = vr.scopes
				}
				cfg["access_control"] = map[string]any{
					"access_policy": "tiled.access_control.access_policies:TagBasedAccessPolicy",
					"args":          args,
				}
				cfg["trees"] = []any{
					tiledTree("/public", map[string]any{"tags": []any{"public"}}),
					tiledTree("/private", map[string]any{"tags": []any{"data_B"}}),
				}
				s := startMU(t, cfg)
				for _, v := range viewers() {
					t.Run(v.name, func(t *testing.T) {
						t.Parallel()
						c := s.client(t)
						checkVisible(t, c, v.credentials(t, c), entries, vr.want[v.name], false)
					})
				}
			})
		}
	})
}

// TestMultiAccessControlExample: the shipped "some public, some private"
// example, served as written, shows what its comments say; and the form
// that Tiled serves fully public (a tag-based policy over a tree without
// tags) is refused at start and by check-config, with the fix (issue 13).
func TestMultiAccessControlExample(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(root, "examples", "configs", "access_control.yml")
	s := startServer(t, []string{"config", example}, muEnv()...)
	entries := []string{"public", "alice", "group_a", "public/A", "alice/A", "group_a/C"}
	want := map[string][]string{
		"alice": {"public", "public/A", "alice", "alice/A"}, "alice's API key": {"public", "public/A", "alice", "alice/A"},
		"bob": {"public", "public/A", "group_a", "group_a/C"}, "cara": {"public", "public/A"}, "anonymous": {"public", "public/A"},
	}
	for _, v := range viewers() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			c := s.client(t)
			checkVisible(t, c, v.credentials(t, c), entries, want[v.name], false)
		})
	}
	t.Run("anonymous data read of a private array", func(t *testing.T) {
		t.Parallel()
		expectDetail(t, s.client(t).get("/api/v1/array/full/alice/A", nil), http.StatusNotFound, "No such entry: ['alice', 'A']")
	})

	t.Run("a tag-restricted key bounds the keys it creates", func(t *testing.T) {
		t.Parallel()
		c := s.client(t)
		alice := bearer(mustLogin(t, c, "alice").Access)
		scopes := []any{"read:metadata", "read:data", "create:apikeys"}
		k1 := apikey(secretOf(t, mustCreateKey(t, c, alice, map[string]any{"scopes": scopes, "access_tags": []any{"public"}})))
		checkVisible(t, c, k1, entries, []string{"public", "public/A"}, false)
		for _, tc := range []struct {
			name string
			tags any
		}{{"no access_tags", nil}, {"a tag it lacks", []any{"data_B"}}, {"a wider set", []any{"public", "data_B"}}} {
			r := createKey(c, k1, map[string]any{"scopes": []any{"read:metadata"}, "access_tags": tc.tags})
			if expectStatus(t, r, http.StatusForbidden) && !strings.Contains(string(r.Body), "restricted to access tags ['public']") {
				t.Errorf("%s: %s", tc.name, r)
			}
		}
		k2 := mustCreateKey(t, c, k1, map[string]any{"scopes": []any{"read:metadata"}, "access_tags": []any{"public"}})
		expectAt(t, k2, []any{"public"}, "access_tags")
		checkVisible(t, c, apikey(secretOf(t, k2)), entries, []string{"public", "public/A"}, false)
	})

	t.Run("a tree without tags is refused", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(example)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg["trees"] = []any{tiledTree("/", nil)}
		cfg["access_control"].(map[string]any)["args"].(map[string]any)["tags_db"] =
			map[string]any{"uri": "file:" + filepath.Join(root, "examples", "access_tags", "tag_definitions.yml")}
		path := writeConfig(t, cfg)
		want := "trees[/].args.top_level_access_blob: required with the tag-based access policy"
		for _, args := range [][]string{
			{"check-config", path},
			{"serve", "config", path, "--host", "127.0.0.1", "--port", strconv.Itoa(freePort(t))},
		} {
			code, _, stderr := runCLI(t, muEnv(), args...)
			if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "{tags: [public]}") {
				t.Errorf("server %s: exit %d, want 1 with %q and the fix on stderr:\n%s", args[0], code, want, stderr)
			}
		}
	})
}

// TestMultiAccessTagsUnenforced: without a tag-based policy nothing would
// honour a key's access tags, so a key asking for them is refused (Tiled
// issues it and then ignores the tags).
func TestMultiAccessTagsUnenforced(t *testing.T) {
	t.Parallel()
	s := startMU(t, muConfig(newBackend(t, "sqlite")))
	c := s.client(t)
	alice := bearer(mustLogin(t, c, "alice").Access)
	r := createKey(c, alice, map[string]any{"scopes": []any{"read:metadata"}, "access_tags": []any{"nothing"}})
	expectDetail(t, r, http.StatusBadRequest, "access_tags restrict a key only under a tag-based access policy "+
		"(access_control with TagBasedAccessPolicy), and this server has none: the key would reach everything "+
		"its scopes allow. Create the key without access_tags.")
	mustCreateKey(t, c, alice, map[string]any{"scopes": []any{"read:metadata"}, "access_tags": nil})
}
