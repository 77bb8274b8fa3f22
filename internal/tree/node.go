// Package tree is the data model the server publishes: a tree of nodes in
// Tiled's three structure families (container, array, table), with their
// metadata, specs and access blobs, and the reading of array slices, array
// blocks and table partitions. It knows nothing of HTTP or wire encodings
// beyond the JSON shape of a structure, which is part of the model in Tiled.
//
// Trees are built once at start (Demo, FromDirectory, FromSpec, Mount) and
// are read-only afterwards, so they are safe for concurrent use.
package tree

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Family is Tiled's structure family.
type Family string

// The structure families this server serves.
const (
	FamilyContainer Family = "container"
	FamilyArray     Family = "array"
	FamilyTable     Family = "table"
)

// Spec names a convention a node follows (Tiled's Spec: name and optional
// version), for example {"xarray_dataset", nil}.
type Spec struct {
	Name    string  `json:"name"`
	Version *string `json:"version"`
}

// Info is what every node carries besides its structure.
type Info struct {
	// Metadata is the free-form JSON object of the node; nil is served as {}.
	Metadata map[string]any
	// Specs are served in order; nil is served as [].
	Specs []Spec
	// AccessBlob is the access-control data of the node (for example
	// {"tags": ["public"]}); nil when the node inherits its parent's.
	AccessBlob map[string]any
}

// Node is any node of the tree.
type Node interface {
	Family() Family
	// Metadata never returns nil.
	Metadata() map[string]any
	// Specs never returns nil.
	Specs() []Spec
	// AccessBlob returns nil when the node has none of its own.
	AccessBlob() map[string]any
}

// Container is a node with ordered, named children.
type Container interface {
	Node
	// Keys lists the children in their given order.
	Keys() []string
	// Child returns the child with the key.
	Child(key string) (Node, bool)
	// InlineContents tells the server to describe the children inside the
	// container's own resource, as Tiled does for xarray datasets
	// (DatasetAdapter.inlined_contents_enabled) to save clients a request.
	InlineContents() bool
}

// SortItem is one key of a container's sorting; "_" is the given order.
type SortItem struct {
	Key       string `json:"key"`
	Direction int    `json:"direction"`
}

// DefaultSorting is what an in-memory Tiled container reports
// (MapAdapter: [("_", 1)], the given order ascending).
func DefaultSorting() []SortItem { return []SortItem{{Key: "_", Direction: 1}} }

// ErrNotFound is returned when a path names no node.
var ErrNotFound = errors.New("no such entry")

// base implements the Info part of Node.
type base struct{ info Info }

func (b base) Metadata() map[string]any {
	if b.info.Metadata == nil {
		return map[string]any{}
	}
	return b.info.Metadata
}

func (b base) Specs() []Spec {
	if b.info.Specs == nil {
		return []Spec{}
	}
	return b.info.Specs
}

func (b base) AccessBlob() map[string]any { return b.info.AccessBlob }

// Entry is a named child, for building containers.
type Entry struct {
	Key  string
	Node Node
}

// Map is an in-memory container, the counterpart of Tiled's MapAdapter.
type Map struct {
	base
	keys     []string
	children map[string]Node
	inline   bool
}

// NewMap builds a container with the children in the given order. Keys must
// be unique, non-empty and free of "/" (a key is one path segment).
func NewMap(info Info, entries ...Entry) (*Map, error) {
	m := &Map{base: base{info}, children: make(map[string]Node, len(entries))}
	for _, e := range entries {
		if err := checkKey(e.Key); err != nil {
			return nil, err
		}
		if e.Node == nil {
			return nil, fmt.Errorf("entry %q has no node", e.Key)
		}
		if _, dup := m.children[e.Key]; dup {
			return nil, fmt.Errorf("duplicate key %q", e.Key)
		}
		m.keys = append(m.keys, e.Key)
		m.children[e.Key] = e.Node
	}
	return m, nil
}

func checkKey(key string) error {
	if key == "" || strings.Contains(key, "/") {
		return fmt.Errorf("invalid key %q: keys are single non-empty path segments", key)
	}
	return nil
}

// WithInlineContents marks the container as one whose children are described
// inline (see Container.InlineContents).
func (m *Map) WithInlineContents() *Map {
	m.inline = true
	return m
}

// Family implements Node.
func (m *Map) Family() Family { return FamilyContainer }

// Keys implements Container.
func (m *Map) Keys() []string { return m.keys }

// Child implements Container.
func (m *Map) Child(key string) (Node, bool) {
	n, ok := m.children[key]
	return n, ok
}

// InlineContents implements Container.
func (m *Map) InlineContents() bool { return m.inline }

// Walk descends from root along path. visit, if not nil, is called for the
// root (with an empty path) and for every node on the way, before going
// deeper; an error from visit stops the walk and is returned. A missing key,
// or a key under a node that is neither a container nor a table, gives
// ErrNotFound.
//
// Below a table, a key names one of its columns, read as a one-dimensional
// array (Tiled's TableAdapter.__getitem__), so that client["C"]["x"] works
// as it does against Tiled. Reading the column is why Walk takes ctx.
func Walk(ctx context.Context, root Node, path []string, visit func(path []string, n Node) error) (Node, error) {
	n := root
	for i := 0; ; i++ {
		if visit != nil {
			if err := visit(path[:i], n); err != nil {
				return nil, err
			}
		}
		if i == len(path) {
			return n, nil
		}
		switch p := n.(type) {
		case Container:
			var ok bool
			if n, ok = p.Child(path[i]); !ok {
				return nil, fmt.Errorf("%w: %q", ErrNotFound, strings.Join(path[:i+1], "/"))
			}
		case Table:
			var err error
			if n, err = ColumnArray(ctx, p, path[i]); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: %q is not a container", ErrNotFound, strings.Join(path[:i], "/"))
		}
	}
}

// Lookup returns the node at path under root.
func Lookup(ctx context.Context, root Node, path []string) (Node, error) {
	return Walk(ctx, root, path, nil)
}
