package config

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	"gopkg.in/yaml.v3"
)

// parseTOML reads a TOML document (seed 001's form: an [auth] table, and
// the Tiled keys as TOML tables) into the same node tree a YAML file
// gives, with each key's and value's line, so one decoder checks both
// formats with the same messages and every problem is reported at once.
//
// TOML's own rules (a key or table defined twice, mixed array types, bad
// escapes) are checked first by go-toml's strict decoder, whose error
// carries a line; the tree is then built from go-toml's parser, whose AST
// keeps positions. A nil node with no error is an empty document.
func parseTOML(data []byte) (*yaml.Node, error) {
	var probe map[string]any
	if err := toml.Unmarshal(data, &probe); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return nil, fmt.Errorf("line %d: %s", line, de.Error())
		}
		return nil, err
	}
	b := &tomlBuilder{lines: lineStarts(data), root: &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1}}
	b.current = b.root
	p := unstable.Parser{}
	p.Reset(data)
	for p.NextExpression() {
		if err := b.expression(&p, p.Expression()); err != nil {
			return nil, err
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	if len(b.root.Content) == 0 {
		return nil, nil
	}
	return &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{b.root}, Line: 1}, nil
}

type tomlBuilder struct {
	lines   []int
	root    *yaml.Node
	current *yaml.Node // the table the key/values that follow go in
}

func lineStarts(data []byte) []int {
	out := []int{0}
	for i, c := range data {
		if c == '\n' {
			out = append(out, i+1)
		}
	}
	return out
}

// line is the 1-based line of a node's raw range.
func (b *tomlBuilder) line(n *unstable.Node) int {
	if n == nil || n.Raw.Length == 0 && n.Raw.Offset == 0 {
		return 0
	}
	return sort.Search(len(b.lines), func(i int) bool { return b.lines[i] > int(n.Raw.Offset) })
}

func (b *tomlBuilder) expression(p *unstable.Parser, e *unstable.Node) error {
	switch e.Kind {
	case unstable.Table:
		t, err := b.walkKeys(b.root, b.keys(e.Key()))
		if err != nil {
			return err
		}
		b.current = t
	case unstable.ArrayTable:
		keys := b.keys(e.Key())
		parent, err := b.walkKeys(b.root, keys[:len(keys)-1])
		if err != nil {
			return err
		}
		last := keys[len(keys)-1]
		seq := lookup(parent, last.Value)
		if seq == nil {
			seq = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: last.Line}
			parent.Content = append(parent.Content, last, seq)
		}
		if seq.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: %s is not an array of tables", last.Line, last.Value)
		}
		t := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: last.Line}
		seq.Content = append(seq.Content, t)
		b.current = t
	case unstable.KeyValue:
		return b.keyValue(b.current, e)
	}
	return nil
}

func (b *tomlBuilder) keyValue(table *yaml.Node, e *unstable.Node) error {
	keys := b.keys(e.Key())
	parent, err := b.walkKeys(table, keys[:len(keys)-1])
	if err != nil {
		return err
	}
	key := keys[len(keys)-1]
	v, err := b.value(e.Value(), key.Line)
	if err != nil {
		return err
	}
	parent.Content = append(parent.Content, key, v)
	return nil
}

// keys turns a dotted key into key nodes with their lines.
func (b *tomlBuilder) keys(it unstable.Iterator) []*yaml.Node {
	var out []*yaml.Node
	for it.Next() {
		k := it.Node()
		out = append(out, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(k.Data), Line: b.line(k)})
	}
	return out
}

// walkKeys finds or makes the table that keys name, from from.
func (b *tomlBuilder) walkKeys(from *yaml.Node, keys []*yaml.Node) (*yaml.Node, error) {
	cur := from
	for _, k := range keys {
		next := lookup(cur, k.Value)
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: k.Line}
			cur.Content = append(cur.Content, k, next)
		}
		if next.Kind == yaml.SequenceNode && len(next.Content) > 0 {
			// [a.b] after [[a]] extends the last element (TOML 1.0).
			next = next.Content[len(next.Content)-1]
		}
		if next.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: %s is not a table", k.Line, k.Value)
		}
		cur = next
	}
	return cur, nil
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// value converts a TOML value. Strings are quoted scalars, so that YAML
// 1.1's "yes"/"no" booleans never apply to them.
// Containers have no raw range of their own; they and anything else
// without one take the line of their key (or enclosing value), at.
func (b *tomlBuilder) value(n *unstable.Node, at int) (*yaml.Node, error) {
	line := b.line(n)
	if line == 0 {
		line = at
	}
	scalar := func(tag, v string, style yaml.Style) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v, Style: style, Line: line}
	}
	switch n.Kind {
	case unstable.String:
		return scalar("!!str", string(n.Data), yaml.DoubleQuotedStyle), nil
	case unstable.Bool:
		return scalar("!!bool", string(n.Data), 0), nil
	case unstable.Integer:
		s := strings.ReplaceAll(string(n.Data), "_", "")
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: integer %s out of range", line, n.Data)
		}
		return scalar("!!int", strconv.FormatInt(v, 10), 0), nil
	case unstable.Float:
		s := strings.ReplaceAll(string(n.Data), "_", "")
		switch strings.TrimPrefix(s, "+") {
		case "inf":
			return scalar("!!float", ".inf", 0), nil
		case "-inf":
			return scalar("!!float", "-.inf", 0), nil
		case "nan", "-nan":
			return scalar("!!float", ".nan", 0), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("line %d: number %s out of range", line, n.Data)
		}
		return scalar("!!float", strconv.FormatFloat(f, 'g', -1, 64), 0), nil
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return scalar("!!str", string(n.Data), yaml.DoubleQuotedStyle), nil
	case unstable.Array:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: line}
		it := n.Children()
		for it.Next() {
			v, err := b.value(it.Node(), line)
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, v)
		}
		return seq, nil
	case unstable.InlineTable:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line}
		it := n.Children()
		for it.Next() {
			if err := b.keyValue(m, it.Node()); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("line %d: unsupported TOML value %s", line, n.Kind)
}
