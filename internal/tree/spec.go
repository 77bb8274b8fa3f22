package tree

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
)

// The tree names FromSpec accepts, as a Tiled config would spell them in
// trees[].tree.
var (
	demoNames = []string{"tiled.examples.generated_minimal:tree", "demo"}
	// Our own example: the demo plus nested containers and more data types.
	extendedDemoNames = []string{"extended_demo"}
	// Tiled 0.1 served a directory with tree: files (an alias of
	// tiled.adapters.files:DirectoryAdapter.from_directory) and args
	// {directory: ...}; current Tiled does it with `tiled serve directory`.
	directoryNames = []string{"directory", "files", "tiled.adapters.files:DirectoryAdapter.from_directory"}
)

// FromSpec builds the tree a config entry {tree, args} names. The demo tree
// takes no args. A directory takes "directory" (or "path") and optionally
// "keep_ext" (serve "a.csv" as "a.csv", like `tiled serve directory
// --keep-ext`).
func FromSpec(name string, args map[string]any, logger *slog.Logger) (Node, error) {
	switch {
	case slices.Contains(demoNames, name) || slices.Contains(extendedDemoNames, name):
		if len(args) > 0 {
			return nil, fmt.Errorf("tree %q takes no args, got %s", name, argNames(args))
		}
		if slices.Contains(demoNames, name) {
			return Demo(), nil
		}
		return ExtendedDemo(), nil
	case slices.Contains(directoryNames, name):
		dir, keepExt, err := directoryArgs(name, args)
		if err != nil {
			return nil, err
		}
		return scanDirectory(dir, logger, keepExt)
	}
	return nil, fmt.Errorf("unknown tree %q; supported: %s", name,
		strings.Join(slices.Concat(demoNames, extendedDemoNames, directoryNames), ", "))
}

func directoryArgs(name string, args map[string]any) (string, bool, error) {
	var dir string
	keepExt := false
	for k, v := range args {
		switch k {
		case "directory", "path":
			s, ok := v.(string)
			if !ok || s == "" {
				return "", false, fmt.Errorf("tree %q: args.%s must be a non-empty string", name, k)
			}
			if dir != "" && dir != s {
				return "", false, fmt.Errorf("tree %q: give args.directory or args.path, not both", name)
			}
			dir = s
		case "keep_ext":
			b, ok := v.(bool)
			if !ok {
				return "", false, fmt.Errorf("tree %q: args.keep_ext must be true or false", name)
			}
			keepExt = b
		default:
			return "", false, fmt.Errorf("tree %q: unknown arg %q (known: directory, path, keep_ext)", name, k)
		}
	}
	if dir == "" {
		return "", false, fmt.Errorf("tree %q needs args.directory, the directory to serve", name)
	}
	return dir, keepExt, nil
}

func argNames(args map[string]any) string {
	names := make([]string, 0, len(args))
	for k := range args {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Mounted is a tree and the path it is served at ("/" or "/a/b").
type Mounted struct {
	Path string
	Node Node
}

// Mount combines trees into one root, as Tiled merges its config's trees: a
// single tree at "/" is the root itself (and must be a container); trees at
// deeper paths hang under containers made for the purpose, with empty
// metadata. No path may lie inside another, as Tiled's config validation
// requires ("Tree paths cannot be subpaths of each other").
func Mount(entries []Mounted) (Container, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("no trees to serve")
	}
	type mount struct {
		segs []string
		node Node
	}
	mounts := make([]mount, len(entries))
	for i, e := range entries {
		if e.Node == nil {
			return nil, fmt.Errorf("tree at %q is missing", e.Path)
		}
		mounts[i] = mount{segments(e.Path), e.Node}
	}
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i].segs) < len(mounts[j].segs) })
	for i, a := range mounts {
		for _, b := range mounts[i+1:] {
			if isPrefix(a.segs, b.segs) {
				return nil, fmt.Errorf("tree paths cannot be subpaths of each other: '/%s' and '/%s'",
					strings.Join(a.segs, "/"), strings.Join(b.segs, "/"))
			}
		}
	}
	if len(mounts) == 1 && len(mounts[0].segs) == 0 {
		c, ok := mounts[0].node.(Container)
		if !ok {
			return nil, fmt.Errorf("the tree at / is a %s; the root must be a container", mounts[0].node.Family())
		}
		return c, nil
	}
	root := &builder{}
	for _, m := range mounts {
		b := root
		for _, s := range m.segs[:len(m.segs)-1] {
			b = b.child(s)
		}
		b.add(m.segs[len(m.segs)-1], &builder{leaf: m.node})
	}
	return root.build()
}

func segments(path string) []string {
	out := []string{}
	for _, s := range strings.Split(path, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isPrefix(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// builder assembles the intermediate containers of Mount in mount order.
type builder struct {
	leaf     Node
	keys     []string
	children map[string]*builder
}

func (b *builder) child(key string) *builder {
	if c, ok := b.children[key]; ok {
		return c
	}
	c := &builder{}
	b.add(key, c)
	return c
}

func (b *builder) add(key string, c *builder) {
	if b.children == nil {
		b.children = map[string]*builder{}
	}
	b.keys = append(b.keys, key)
	b.children[key] = c
}

func (b *builder) build() (*Map, error) {
	entries := make([]Entry, 0, len(b.keys))
	for _, k := range b.keys {
		c := b.children[k]
		if c.leaf != nil {
			entries = append(entries, Entry{Key: k, Node: c.leaf})
			continue
		}
		m, err := c.build()
		if err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Key: k, Node: m})
	}
	return NewMap(Info{}, entries...)
}
