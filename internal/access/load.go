package access

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tiledgo/server/internal/identity"
)

// Options tell FromConfig what the rest of the configuration says.
type Options struct {
	AllowAnonymous bool
	// BaseDir resolves relative file paths (the config file's folder);
	// paths not found there are tried from the working directory, as Tiled.
	BaseDir string
}

// Policy names as Tiled's configs write them, by what they build.
var (
	simpleNames = []string{
		"tiled.access_policies:SimpleAccessPolicy",
		"tiled.access_control.access_policies:SimpleAccessPolicy",
		"tiled.adapters.mapping:SimpleAccessPolicy",
		"simple",
	}
	tagNames = []string{
		"tiled.access_control.access_policies:TagBasedAccessPolicy",
		"tiled.access_policies:TagBasedAccessPolicy",
		"tags",
	}
	dummyNames = []string{
		"tiled.access_control.access_policies:DummyAccessPolicy",
		"tiled.access_policies:DummyAccessPolicy",
		"none",
	}
)

// FromConfig builds the policy an access_control block names. Problems are
// reported all at once, each prefixed with its key path.
func FromConfig(policy string, args map[string]any, opts Options) (Policy, error) {
	switch {
	case contains(simpleNames, policy):
		return simpleFrom(args, opts)
	case contains(tagNames, policy):
		return tagsFrom(args, opts)
	case contains(dummyNames, policy):
		return AllowAll{}, nil
	}
	return nil, fmt.Errorf("access_control.access_policy: unknown policy %q; this server implements %s",
		policy, strings.Join([]string{simpleNames[0], tagNames[0], dummyNames[0]}, ", "))
}

// isAllAccess recognises Tiled's "everything" marker in an access list.
func isAllAccess(s string) bool {
	return strings.HasSuffix(s, ":ALL_ACCESS") || strings.HasSuffix(s, "SimpleAccessPolicy.ALL") || s == "ALL"
}

type argReader struct {
	args map[string]any
	errs []error
	used map[string]bool
}

func newArgReader(args map[string]any) *argReader {
	return &argReader{args: args, used: map[string]bool{}}
}

func (r *argReader) fail(key, format string, a ...any) {
	r.errs = append(r.errs, fmt.Errorf("access_control.args.%s: %s", key, fmt.Sprintf(format, a...)))
}

func (r *argReader) str(key string, required bool) string {
	r.used[key] = true
	v, ok := r.args[key]
	if !ok || v == nil {
		if required {
			r.fail(key, "required")
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(key, "expected a string")
	}
	return s
}

func (r *argReader) strList(key string) ([]string, bool) {
	r.used[key] = true
	v, ok := r.args[key]
	if !ok || v == nil {
		return nil, false
	}
	out, ok := toStrings(v)
	if !ok {
		r.fail(key, "expected a list of strings")
	}
	return out, true
}

func (r *argReader) scopes() identity.ScopeSet {
	list, given := r.strList("scopes")
	if !given {
		return nil
	}
	for _, s := range list {
		if !identity.IsKnownScope(s) || s == identity.ScopeInherit {
			r.fail("scopes", "unknown scope %q", s)
		}
	}
	return identity.NewScopeSet(list...)
}

// done reports keys nobody read (typos), then every problem at once.
func (r *argReader) done(ignored ...string) error {
	for _, k := range ignored {
		r.used[k] = true
	}
	var unknown []string
	for k := range r.args {
		if !r.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		r.fail(k, "unknown argument for this policy")
	}
	return errors.Join(r.errs...)
}

func toStrings(v any) ([]string, bool) {
	switch t := v.(type) {
	case []string:
		return t, true
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func simpleFrom(args map[string]any, opts Options) (Policy, error) {
	r := newArgReader(args)
	p := &Simple{
		Provider: r.str("provider", true), AccessLists: map[string][]string{}, AllAccess: map[string]bool{},
		Scopes: r.scopes(), AllowAnonymous: opts.AllowAnonymous,
	}
	public, _ := r.strList("public")
	admins, _ := r.strList("admins")
	p.Public, p.Admins = set(public), set(admins)
	r.used["access_lists"] = true
	lists, ok := args["access_lists"].(map[string]any)
	if !ok {
		r.fail("access_lists", "required: a mapping of user ids to lists of top-level entries")
	}
	for id, v := range lists {
		if s, ok := v.(string); ok && isAllAccess(s) {
			p.AllAccess[id] = true
			continue
		}
		keys, ok := toStrings(v)
		if !ok {
			r.fail("access_lists."+id, "expected a list of entry names or tiled.access_policies:ALL_ACCESS")
		}
		p.AccessLists[id] = keys
	}
	if _, ok := args["key"]; ok {
		r.used["key"] = true
		r.fail("key", "filtering on a metadata key is not supported; access lists name top-level entries")
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return p, nil
}

func tagsFrom(args map[string]any, opts Options) (Policy, error) {
	r := newArgReader(args)
	p := &Tags{Provider: r.str("provider", true), Scopes: r.scopes(), AllowAnonymous: opts.AllowAnonymous}
	path := r.str("tags_file", false)
	if db, ok := args["tags_db"].(map[string]any); ok {
		r.used["tags_db"] = true
		uri, _ := db["uri"].(string)
		switch {
		case strings.HasPrefix(uri, "file:") && (strings.HasSuffix(uri, ".yml") || strings.HasSuffix(uri, ".yaml")):
			path = strings.TrimPrefix(strings.TrimPrefix(uri, "file:"), "//")
		default:
			r.fail("tags_db.uri", "%q: this server reads the tag-definitions YAML directly; give file:PATH.yml "+
				"(the file Tiled compiles into SQLite), or tags_file: PATH.yml", uri)
		}
	} else if _, given := args["tags_db"]; given {
		r.used["tags_db"] = true
		r.fail("tags_db", "expected a mapping with uri")
	}
	if path == "" && len(r.errs) == 0 {
		r.fail("tags_file", "required: the tag-definitions YAML (or tags_db: {uri: file:PATH.yml})")
	}
	if err := r.done("access_tags_parser"); err != nil {
		return nil, err
	}
	data, err := readRelative(path, opts.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("access_control.args: tag definitions: %w", err)
	}
	if err := parseTagDefinitions(data, p); err != nil {
		return nil, fmt.Errorf("access_control.args: tag definitions %s: %w", path, err)
	}
	p.Compile()
	return p, nil
}

func readRelative(path, base string) ([]byte, error) {
	if !filepath.IsAbs(path) && base != "" {
		if b, err := os.ReadFile(filepath.Join(base, path)); err == nil {
			return b, nil
		}
	}
	return os.ReadFile(path)
}

// tagFile is Tiled's tag-definitions format (example_configs/access_tags/
// tag_definitions.yml), plus "groups" naming each group's members.
type tagFile struct {
	Roles map[string]struct {
		Scopes []string `yaml:"scopes"`
	} `yaml:"roles"`
	Tags map[string]struct {
		Users    []tagGrant `yaml:"users"`
		Groups   []tagGrant `yaml:"groups"`
		AutoTags []struct {
			Name string `yaml:"name"`
		} `yaml:"auto_tags"`
	} `yaml:"tags"`
	TagOwners map[string]struct {
		Users  []struct{ Name string } `yaml:"users"`
		Groups []struct{ Name string } `yaml:"groups"`
	} `yaml:"tag_owners"`
	Groups map[string][]string `yaml:"groups"`
}

type tagGrant struct {
	Name   string   `yaml:"name"`
	Role   string   `yaml:"role"`
	Scopes []string `yaml:"scopes"`
}

func parseTagDefinitions(data []byte, p *Tags) error {
	var f tagFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return err
	}
	var errs []error
	grant := func(where string, g tagGrant) Grant {
		switch {
		case g.Name == "":
			errs = append(errs, fmt.Errorf("%s: name is required", where))
		case g.Role != "" && g.Scopes != nil:
			errs = append(errs, fmt.Errorf("%s: give role or scopes, not both", where))
		case g.Role != "":
			r, ok := f.Roles[g.Role]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: no role %q under roles", where, g.Role))
			}
			return Grant{Name: g.Name, Scopes: r.Scopes}
		}
		for _, s := range g.Scopes {
			if !identity.IsKnownScope(s) {
				errs = append(errs, fmt.Errorf("%s: unknown scope %q", where, s))
			}
		}
		return Grant{Name: g.Name, Scopes: g.Scopes}
	}
	p.Defs, p.Groups = map[string]TagDef{}, f.Groups
	for tag, t := range f.Tags {
		if strings.EqualFold(tag, PublicTag) {
			errs = append(errs, fmt.Errorf("tags.%s: the public tag is built in and cannot be redefined", tag))
		}
		var d TagDef
		for i, u := range t.Users {
			d.Users = append(d.Users, grant(fmt.Sprintf("tags.%s.users[%d]", tag, i), u))
		}
		for i, g := range t.Groups {
			d.Groups = append(d.Groups, grant(fmt.Sprintf("tags.%s.groups[%d]", tag, i), g))
		}
		for _, a := range t.AutoTags {
			if _, ok := f.Tags[a.Name]; !ok && !strings.EqualFold(a.Name, PublicTag) {
				errs = append(errs, fmt.Errorf("tags.%s.auto_tags: no tag %q", tag, a.Name))
			}
			d.AutoTags = append(d.AutoTags, a.Name)
		}
		p.Defs[tag] = d
	}
	return errors.Join(errs...)
}
