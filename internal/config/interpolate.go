package config

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Env looks up an environment variable (os.LookupEnv in production).
type Env func(string) (string, bool)

// missingVar is a ${NAME} reference to an unset variable.
type missingVar struct{ name string }

// expand replaces environment variable references in s the way Tiled's
// tiled.utils.expand_environment_variables does (Python's
// os.path.expandvars on POSIX): "$NAME" and "${NAME}", NAME being
// [A-Za-z0-9_]+ for the bare form and anything up to "}" for the braced
// form; substituted text is not expanded again; there is no escape ("$$"
// stays "$$").
//
// One deliberate difference: Tiled leaves a reference to an unset variable
// in place, so a forgotten ${ALICE_PASSWORD} silently becomes that literal
// password. Here an unset ${NAME} is reported instead. A bare $NAME that is
// unset is kept as Tiled keeps it, since "$" followed by letters is common
// in passwords and hashes.
func expand(s string, env Env) (string, []missingVar) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var (
		b       strings.Builder
		missing []missingVar
	)
	i := 0
	for i < len(s) {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i
		b.WriteString(s[i:j])
		name, end, braced := scanVar(s, j)
		if end == j {
			b.WriteByte('$')
			i = j + 1
			continue
		}
		if v, ok := env(name); ok {
			b.WriteString(v)
		} else {
			if braced {
				missing = append(missing, missingVar{name})
			}
			b.WriteString(s[j:end])
		}
		i = end
	}
	return b.String(), missing
}

// scanVar reads a reference starting at s[at] == '$'. end == at means none.
func scanVar(s string, at int) (name string, end int, braced bool) {
	k := at + 1
	if k < len(s) && s[k] == '{' {
		close := strings.IndexByte(s[k+1:], '}')
		if close < 0 {
			return "", at, false
		}
		return s[k+1 : k+1+close], k + 1 + close + 1, true
	}
	for k < len(s) && isWordByte(s[k]) {
		k++
	}
	if k == at+1 {
		return "", at, false
	}
	return s[at+1 : k], k, false
}

func isWordByte(c byte) bool {
	return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// interpolate expands every string value of the document in place (not
// keys, as Tiled expands only values), marking the nodes it changed.
// Shared (aliased) nodes are expanded once.
func (d *decoder) interpolate(n *yaml.Node, path string, env Env, seen map[*yaml.Node]bool, depth int) {
	if n == nil || seen[n] {
		return
	}
	if depth > maxDepth {
		d.add(n, path, "nested too deeply")
		return
	}
	seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = index(path, i)
			}
			d.interpolate(c, p, env, seen, depth+1)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.interpolate(n.Content[i+1], join(path, n.Content[i].Value), env, seen, depth+1)
		}
	case yaml.AliasNode:
		d.interpolate(n.Alias, path, env, seen, depth+1)
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "$") {
			return
		}
		out, missing := expand(n.Value, env)
		for _, m := range missing {
			if m.name == "" {
				d.add(n, path, "empty variable reference ${}")
			} else {
				d.add(n, path, "environment variable %s is not set (referenced as ${%s})", m.name, m.name)
			}
		}
		if out != n.Value {
			n.Value = out
			// Pin the tag: the expanded text is a string, whatever it
			// looks like; typed fields coerce it knowing it came from here.
			n.Tag = "!!str"
			d.fromEnv[n] = true
		}
	}
}
