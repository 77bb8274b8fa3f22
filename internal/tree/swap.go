package tree

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
)

// Swappable is a root container whose tree can be replaced while the
// server runs (POST /api/v1/reload rescans a directory). Each tree is
// immutable as before; replacing the root is one atomic store, so a
// request sees the old tree or the new one for every node under the root
// it has already reached.
type Swappable struct {
	cur atomic.Pointer[Container]
}

// NewSwappable serves root until Swap.
func NewSwappable(root Container) *Swappable {
	s := &Swappable{}
	s.cur.Store(&root)
	return s
}

// Current is the tree being served.
func (s *Swappable) Current() Container { return *s.cur.Load() }

// Swap serves root from now on and returns what changed.
func (s *Swappable) Swap(root Container) Changes {
	old := *s.cur.Swap(&root)
	return Diff(old, root)
}

// Family implements Node.
func (s *Swappable) Family() Family { return s.Current().Family() }

// Metadata implements Node.
func (s *Swappable) Metadata() map[string]any { return s.Current().Metadata() }

// Specs implements Node.
func (s *Swappable) Specs() []Spec { return s.Current().Specs() }

// AccessBlob implements Node.
func (s *Swappable) AccessBlob() map[string]any { return s.Current().AccessBlob() }

// Keys implements Container.
func (s *Swappable) Keys() []string { return s.Current().Keys() }

// Child implements Container.
func (s *Swappable) Child(key string) (Node, bool) { return s.Current().Child(key) }

// InlineContents implements Container.
func (s *Swappable) InlineContents() bool { return s.Current().InlineContents() }

// Changes lists the paths ("a/b") that a reload added, removed or changed
// (a different family, structure, metadata, specs or access blob). An
// added or removed container is listed alone, not with its descendants.
type Changes struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
}

// Diff compares two trees.
func Diff(old, new Node) Changes {
	ch := Changes{Added: []string{}, Removed: []string{}, Changed: []string{}}
	diff(&ch, nil, old, new)
	return ch
}

func diff(ch *Changes, path []string, old, new Node) {
	name := strings.Join(path, "/")
	if len(path) > 0 && !sameNode(old, new) {
		ch.Changed = append(ch.Changed, name)
	}
	oc, ok1 := old.(Container)
	nc, ok2 := new.(Container)
	if !ok1 || !ok2 {
		return
	}
	for _, k := range oc.Keys() {
		o, _ := oc.Child(k)
		n, ok := nc.Child(k)
		p := append(slices.Clone(path), k)
		if !ok {
			ch.Removed = append(ch.Removed, strings.Join(p, "/"))
			continue
		}
		diff(ch, p, o, n)
	}
	for _, k := range nc.Keys() {
		if _, ok := oc.Child(k); !ok {
			ch.Added = append(ch.Added, strings.Join(append(slices.Clone(path), k), "/"))
		}
	}
}

// sameNode compares what a client sees of a node itself (not its children).
func sameNode(a, b Node) bool {
	if a.Family() != b.Family() || !jsonEqual(a.Metadata(), b.Metadata()) || !jsonEqual(a.Specs(), b.Specs()) ||
		!jsonEqual(a.AccessBlob(), b.AccessBlob()) {
		return false
	}
	switch x := a.(type) {
	case Array:
		y, ok := b.(Array)
		return ok && jsonEqual(x.Structure(), y.Structure())
	case Table:
		y, ok := b.(Table)
		return ok && jsonEqual(x.Structure(), y.Structure())
	}
	return true
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return reflect.DeepEqual(a, b)
	}
	return string(ja) == string(jb)
}
