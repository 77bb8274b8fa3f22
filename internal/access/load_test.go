package access

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func args(t *testing.T, src string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(src), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	tags := `
roles: {reader: {scopes: ["read:metadata", "read:data"]}}
tags:
  t1: {users: [{name: alice, role: reader}], auto_tags: [{name: public}]}
`
	if err := os.WriteFile(filepath.Join(dir, "tags.yml"), []byte(tags), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, policy, args string
		wantErr            []string // substrings, all must appear
	}{
		{name: "simple as seed 000", policy: "tiled.access_policies:SimpleAccessPolicy", args: `
provider: toy
access_lists: {alice: [A, B], cara: "tiled.access_policies:SimpleAccessPolicy.ALL"}
scopes: ["read:metadata", "read:data"]
public: [D]
admins: [root]`},
		{name: "tag based with file uri", policy: "tiled.access_control.access_policies:TagBasedAccessPolicy", args: `
provider: toy
tags_db: {uri: "file:tags.yml"}
access_tags_parser: tiled.access_control.access_tags:AccessTagsParser`},
		{name: "dummy", policy: "tiled.access_control.access_policies:DummyAccessPolicy", args: `{}`},
		{name: "unknown policy", policy: "my.module:Policy", args: `{}`, wantErr: []string{"unknown policy"}},
		{name: "simple: every problem at once", policy: "simple", args: `
access_lists: {alice: 3}
scopes: ["read:everything"]
typo: 1`, wantErr: []string{"args.provider: required", "args.access_lists.alice", `unknown scope "read:everything"`, "args.typo: unknown argument"}},
		{name: "tags: compiled sqlite is refused clearly", policy: "tags", args: `
provider: toy
tags_db: {uri: "file:compiled_tags.sqlite"}`, wantErr: []string{"reads the tag-definitions YAML directly"}},
		{name: "tags: missing file", policy: "tags", args: `{provider: toy, tags_file: nope.yml}`, wantErr: []string{"nope.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromConfig(tt.policy, args(t, tt.args), Options{BaseDir: dir})
			if len(tt.wantErr) == 0 {
				if err != nil || p == nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestTagDefinitionErrors(t *testing.T) {
	src := `
roles: {r: {scopes: ["read:data"]}}
tags:
  a: {users: [{name: alice, role: missing}], auto_tags: [{name: nowhere}]}
  b: {users: [{role: r}]}
  public: {}
`
	err := parseTagDefinitions([]byte(src), &Tags{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`no role "missing"`, `no tag "nowhere"`, "name is required", "public tag is built in"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestExampleTagDefinitions(t *testing.T) {
	p, err := FromConfig("tags", map[string]any{"provider": "toy", "tags_file": "../../examples/access_tags/tag_definitions.yml"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tp := p.(*Tags)
	if !tp.Visible(user("bob"), Node{AccessBlob: map[string]any{"tags": []any{"data_A"}}}) {
		t.Error("bob (group_A) cannot see data_A")
	}
}
