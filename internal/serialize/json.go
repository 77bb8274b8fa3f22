package serialize

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tiledgo/server/internal/tree"
)

// Marshal writes v as compact JSON the way Tiled's orjson does: no HTML
// escaping of <, > and &, no trailing newline.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func jsonString(s string) string {
	b, _ := Marshal(s) // a string always encodes
	return string(b)
}

// Keep decides whether a node below the container being exported is
// included (the caller applies access control with it).
type Keep func(path []string, n tree.Node) bool

// Container encodes a container as Tiled's container JSON export
// (tiled/serialization/container.py): {"contents": {...}, "metadata": {...}}
// nested along every path that leads to an array or a table column. It
// describes the tree; it does not carry array data.
func Container(c Choice, root tree.Container, keep Keep) ([]byte, error) {
	if c.MediaType != JSON {
		return nil, fmt.Errorf("serialize: no container encoder for %s", c.MediaType)
	}
	var b bytes.Buffer
	if _, err := writeContainer(&b, root, nil, keep, true); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeContainer writes {"contents": ..., "metadata": ...} for n and
// reports whether anything was below it. Entries with nothing below them
// are left out, as Tiled builds the export from the paths to leaves; the
// root is always written.
func writeContainer(b *bytes.Buffer, n tree.Node, path []string, keep Keep, root bool) (bool, error) {
	var contents bytes.Buffer
	found := false
	add := func(key string, write func(*bytes.Buffer) (bool, error)) error {
		var sub bytes.Buffer
		ok, err := write(&sub)
		if err != nil || !ok {
			return err
		}
		if found {
			contents.WriteByte(',')
		}
		found = true
		contents.WriteString(jsonString(key))
		contents.WriteByte(':')
		contents.Write(sub.Bytes())
		return nil
	}
	switch v := n.(type) {
	case tree.Container:
		for _, key := range v.Keys() {
			child, ok := v.Child(key)
			childPath := append(append([]string{}, path...), key)
			if !ok || !keep(childPath, child) {
				continue
			}
			if err := add(key, func(sb *bytes.Buffer) (bool, error) {
				return writeContainer(sb, child, childPath, keep, false)
			}); err != nil {
				return false, err
			}
		}
	case tree.Table:
		for _, col := range v.Structure().Names() {
			if err := add(col, func(sb *bytes.Buffer) (bool, error) {
				sb.WriteString(`{"contents":{},"metadata":{}}`)
				return true, nil
			}); err != nil {
				return false, err
			}
		}
	case tree.Array:
		found = true
	}
	if !found && !root {
		return false, nil
	}
	meta, err := Marshal(n.Metadata())
	if err != nil {
		return false, fmt.Errorf("serialize: metadata at %v: %w", path, err)
	}
	b.WriteString(`{"contents":{`)
	b.Write(contents.Bytes())
	b.WriteString(`},"metadata":`)
	b.Write(meta)
	b.WriteByte('}')
	return true, nil
}
