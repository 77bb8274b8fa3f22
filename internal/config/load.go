package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFileSize bounds what is read from one file; a service config is a few
// kilobytes.
const maxFileSize = 4 << 20

// Load reads Tiled service-config files and returns the configuration with
// defaults applied. Files ending in .toml are TOML (seed 001's form), the
// others YAML; both are decoded by the same schema. A path may be a
// directory: every *.yml, *.yaml and *.toml file directly in it is read, in name order (Tiled reads a directory in
// whatever order the OS lists it). ${VAR} references are expanded from env.
// Several files are merged as Tiled merges a directory: trees, specs and
// allow_origins are concatenated; any other top-level key given in two
// files is an error. Every problem found is returned at once as *Errors.
//
// Load does not read Tiled's TILED_* settings variables; call ApplyEnv,
// ApplyFlags and Finalize next (or use Build).
func Load(paths []string, env Env) (*Config, error) {
	l := newLoader(env)
	if len(paths) == 0 {
		l.unread("", "no configuration file given")
	}
	for _, p := range paths {
		l.path(p)
	}
	return l.finish()
}

// LoadBytes is Load for one document held in memory; name labels problems.
func LoadBytes(name string, data []byte, env Env) (*Config, error) {
	l := newLoader(env)
	l.document(name, data)
	return l.finish()
}

// DefaultPaths is Tiled's choice when no path is given: $TILED_CONFIG,
// else ./config.yml.
func DefaultPaths(args []string, env Env) []string {
	if len(args) > 0 {
		return args
	}
	if p, ok := env("TILED_CONFIG"); ok && p != "" {
		return []string{p}
	}
	return []string{"config.yml"}
}

type loader struct {
	env   Env
	cfg   *Config
	probs collector
	// given records which file first set each non-mergeable top-level key.
	given     map[string]origin
	sawTrees  bool
	treeItems int
	// unreadable is set when a source could not be read or parsed, so
	// nothing can be said about what it would have contained.
	unreadable bool
}

func newLoader(env Env) *loader {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	return &loader{env: env, cfg: Default(), given: map[string]origin{}}
}

func (l *loader) path(p string) {
	info, err := os.Stat(p)
	if err != nil {
		l.unread(p, "%v", describeFSError(err))
		return
	}
	if !info.IsDir() {
		l.file(p)
		return
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		l.unread(p, "%v", describeFSError(err))
		return
	}
	var files []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if ext != ".yml" && ext != ".yaml" && ext != ".toml" {
			continue
		}
		full := filepath.Join(p, e.Name())
		// Tiled keeps regular files (following symlinks, as Kubernetes
		// ConfigMap volumes use).
		if st, err := os.Stat(full); err == nil && st.Mode().IsRegular() {
			files = append(files, full)
		}
	}
	if len(files) == 0 {
		l.unread(p, "directory has no *.yml, *.yaml or *.toml files")
		return
	}
	sort.Strings(files)
	for _, f := range files {
		l.file(f)
	}
}

func describeFSError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (l *loader) file(p string) {
	f, err := os.Open(p)
	if err != nil {
		l.unread(p, "%v", describeFSError(err))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		l.unread(p, "%v", describeFSError(err))
		return
	}
	if len(data) > maxFileSize {
		l.unread(p, "file larger than %d bytes", maxFileSize)
		return
	}
	l.document(p, data)
}

// parseYAML reads exactly one YAML document (as PyYAML's safe_load).
// A nil node with no error is an empty file.
func parseYAML(data []byte) (doc *yaml.Node, err error) {
	defer func() {
		// yaml.v3 has panicked on malformed input before; a config file
		// must never crash the server.
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("%v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: expected a single document, found another", extra.Line)
	}
	return &n, nil
}

// isTOML reports whether a source is TOML (seed 001's datapress.toml)
// rather than YAML, by its name.
func isTOML(name string) bool { return strings.EqualFold(filepath.Ext(name), ".toml") }

func (l *loader) document(name string, data []byte) {
	l.cfg.Sources = append(l.cfg.Sources, name)
	parse, format := parseYAML, "YAML"
	if isTOML(name) {
		parse, format = parseTOML, "TOML"
	}
	doc, err := parse(data)
	if err != nil {
		l.unreadSyntax(name, format, err)
		return
	}
	if doc == nil || len(doc.Content) == 0 {
		return // An empty file contributes nothing.
	}
	d := &decoder{
		file: name, probs: &l.probs, fromEnv: map[*yaml.Node]bool{},
		ignored: &l.cfg.Ignored, warnings: &l.cfg.Warnings, cfg: l.cfg,
	}
	d.interpolate(doc, "", l.env, map[*yaml.Node]bool{}, 0)
	root := d.visit(doc.Content[0], "")
	if root == nil {
		return
	}
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		d.expected(root, "", "a mapping of settings at the top level")
		l.unreadable = true
		return
	}
	for _, p := range d.pairs(root, "", 0) {
		sec, known := sections[p.key]
		if !known {
			d.add(p.keyNode, join("", p.key), "unknown key%s", suggest(p.key, sectionNames()))
			continue
		}
		if !sec.mergeable {
			if prev, dup := l.given[p.key]; dup {
				d.add(p.keyNode, p.key, "also given in %s:%d; only trees, specs and allow_origins may appear in several files", prev.file, prev.line)
				continue
			}
			l.given[p.key] = d.origin(p.keyNode)
		}
		if isNull(d.peek(p.valNode)) {
			continue
		}
		if p.key == "trees" {
			l.sawTrees = true
			if seq := d.peek(p.valNode); seq.Kind == yaml.SequenceNode {
				l.treeItems += len(seq.Content)
			} else {
				l.unreadable = true // reported as a type error
			}
		}
		sec.decode(d, l.cfg, p.valNode, p.key)
		if sec.ignored {
			d.ignore(p.keyNode, p.key)
		}
	}
}

func (l *loader) unread(source, format string, args ...any) {
	l.unreadable = true
	l.probs.addf(source, 0, "", format, args...)
}

// yaml.v3 errors read "yaml: line N: message".
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

func (l *loader) unreadSyntax(source, format string, err error) {
	l.unreadable = true
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	l.probs.addf(source, line, "", "invalid %s: %s", format, msg)
}

func (l *loader) finish() (*Config, error) {
	l.checkMerged()
	if err := l.probs.err(); err != nil {
		return nil, err
	}
	return l.cfg, nil
}

// checkMerged applies the rules that span keys and files, once the files
// decoded cleanly.
func (l *loader) checkMerged() {
	c := l.cfg
	cat, hasCatalog := l.given["catalog"]
	switch {
	case hasCatalog && l.sawTrees:
		// tiled/config.py reconcile_catalog_and_trees.
		l.probs.addf(cat.file, cat.line, "catalog", "'catalog' specifies a single catalog, 'trees' several; use one or the other")
		c.Trees = c.Trees[:0] // their paths would be reported as overlapping
	case !hasCatalog && l.treeItems == 0 && !l.unreadable:
		l.probs.addf(c.sourceLabel(), 0, "", "configuration must specify 'catalog' or 'trees'")
	}
	checkTreePaths(&l.probs, c.Trees)
	issuer := ""
	if c.Auth.Enabled {
		issuer = c.Auth.Issuer
	}
	checkProviders(&l.probs, &c.Authentication, issuer)
	checkPolicyProvider(&l.probs, c, c.AccessControl, "access_control")
	for i, t := range c.Trees {
		checkPolicyProvider(&l.probs, c, t.AccessControl, index("trees", i)+".access_control")
	}
}

func (c *Config) sourceLabel() string {
	return strings.Join(c.Sources, ", ")
}

// checkTreePaths refuses trees mounted inside one another, as Tiled's
// non_overlapping_trees does.
func checkTreePaths(probs *collector, trees []Tree) {
	for i, a := range trees {
		for _, b := range trees[:i] {
			sa, sb := treeSegments(a.Path), treeSegments(b.Path)
			short, long := sa, sb
			if len(short) > len(long) {
				short, long = long, short
			}
			if strings.Join(long[:len(short)], "/") == strings.Join(short, "/") {
				probs.addf(a.at.file, a.at.line, "trees", "tree paths cannot be subpaths of each other: %q and %q (%s:%d)", a.Path, b.Path, b.at.file, b.at.line)
			}
		}
	}
}

// checkProviders: unique names, Tiled's rule on proxied providers, and
// tiled_admins naming a provider (or, with the auth block, its issuer).
func checkProviders(probs *collector, a *Authentication, issuer string) {
	seen := map[string]origin{}
	for i, p := range a.Providers {
		if prev, dup := seen[p.Name]; dup {
			probs.addf(p.at.file, p.at.line, fmt.Sprintf("authentication.providers[%d].provider", i), "provider name %q is used twice (also at line %d); names must be unique", p.Name, prev.line)
			continue
		}
		seen[p.Name] = p.at
	}
	proxied := 0
	for _, p := range a.Providers {
		if p.Kind.Proxied() {
			proxied++
		}
	}
	// tiled/config.py validate_authenticators: the provider's own tokens
	// are trusted as they come, so Tiled allows one such provider, alone.
	if proxied > 1 {
		probs.addf(a.Providers[0].at.file, a.Providers[0].at.line, "authentication.providers",
			"only one ProxiedOIDCAuthenticator (or EntraAuthenticator) may be configured")
	} else if proxied == 1 && len(a.Providers) > 1 {
		probs.addf(a.Providers[0].at.file, a.Providers[0].at.line, "authentication.providers",
			"a ProxiedOIDCAuthenticator (or EntraAuthenticator) must not be configured together with other providers")
	}
	for _, adm := range a.TiledAdmins {
		if issuer != "" && strings.TrimSuffix(adm.Provider, "/") == strings.TrimSuffix(issuer, "/") {
			continue // an identity of the auth block's issuer
		}
		if _, ok := seen[adm.Provider]; !ok {
			probs.addf(adm.at.file, adm.at.line, "authentication.tiled_admins", "provider %q is not among authentication.providers%s", adm.Provider, providerList(a))
		}
	}
}

func providerList(a *Authentication) string {
	if len(a.Providers) == 0 {
		return " (none is configured)"
	}
	var names []string
	for _, p := range a.Providers {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// checkPolicyProvider: Tiled's policies (TagBasedAccessPolicy,
// SimpleAccessPolicy, ExternalPolicyDecisionPoint) take args.provider, the
// provider whose identities they match; it must exist.
func checkPolicyProvider(probs *collector, c *Config, ac *AccessControl, path string) {
	if ac == nil {
		return
	}
	name, ok := ac.Args["provider"].(string)
	if !ok {
		return
	}
	if _, found := c.Authentication.Provider(name); !found {
		p := c.problem(path+".args.provider", "provider %q is not among authentication.providers%s", name, providerList(&c.Authentication))
		probs.add(p)
	}
}
