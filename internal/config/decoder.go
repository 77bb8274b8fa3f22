package config

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits on what one document may cost to walk: aliases can make a small
// file expand exponentially ("billion laughs"), and an anchor may contain
// itself.
const (
	maxVisits = 100_000
	maxDepth  = 64
)

// decoder walks one file's yaml.Node tree against the schema, recording
// every problem instead of stopping at the first.
type decoder struct {
	file  string
	probs *collector
	// fromEnv marks string scalars produced by ${VAR} interpolation; they
	// may stand for numbers and booleans (a variable is always a string,
	// and Tiled's pydantic models coerce such strings).
	fromEnv map[*yaml.Node]bool
	// ignored and warnings collect "file:line: path" notes.
	ignored, warnings *[]string
	visits            int
	exhausted         bool
	// active holds the collections being converted by free, to catch an
	// anchor that contains itself.
	active map[*yaml.Node]bool
	// cfg receives the origin of every value visited.
	cfg *Config
}

func (d *decoder) origin(n *yaml.Node) origin {
	if n == nil {
		return origin{file: d.file}
	}
	return origin{file: d.file, line: n.Line}
}

func (d *decoder) add(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.probs.addf(d.file, line, path, format, args...)
}

func (d *decoder) note(list *[]string, n *yaml.Node, path, msg string) {
	s := fmt.Sprintf("%s:%d: %s", d.file, n.Line, path)
	if msg != "" {
		s += ": " + msg
	}
	*list = append(*list, s)
}

func (d *decoder) ignore(n *yaml.Node, path string) { d.note(d.ignored, n, path, "") }

func (d *decoder) warn(n *yaml.Node, path, msg string) { d.note(d.warnings, n, path, msg) }

// visit follows aliases and charges the walk budget; it returns nil once
// the budget is spent (reported once).
func (d *decoder) visit(n *yaml.Node, path string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > maxDepth {
			d.add(n, path, "alias chain too long")
			return nil
		}
		n = n.Alias
	}
	if d.exhausted || n == nil {
		return nil
	}
	d.visits++
	if d.visits > maxVisits {
		d.exhausted = true
		d.add(n, path, "document too large after expanding aliases (more than %d values)", maxVisits)
		return nil
	}
	if _, seen := d.cfg.origins[path]; !seen && path != "" {
		d.cfg.setOrigin(path, d.origin(n))
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's type for messages. Values are never echoed: the
// node may be a password.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!str", "!!timestamp":
		return "a string"
	}
	return "a value tagged " + n.Tag
}

func (d *decoder) expected(n *yaml.Node, path, want string) {
	hint := ""
	if want == "a string" && n.Kind == yaml.ScalarNode && !isNull(n) {
		hint = " (quote the value to make it a string)"
	}
	d.add(n, path, "expected %s, got %s%s", want, describe(n), hint)
}

// Paths: "a.b", "a[0]", and a["key.with.dots"] when a key would be ambiguous.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)

func join(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

type pair struct {
	key      string
	keyNode  *yaml.Node
	valNode  *yaml.Node
	keyIsStr bool
}

// pairs returns a mapping's entries, YAML merge keys ("<<: *base")
// applied with explicit keys winning, as PyYAML's safe_load does. A key
// given twice is an error (PyYAML would silently keep the last).
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var out []pair
	seen := map[string]bool{}
	var merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode {
			k = d.visit(k, path)
			if k == nil {
				continue
			}
		}
		if k.Kind != yaml.ScalarNode {
			d.add(k, path, "mapping keys must be plain values, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(v, path, depth)...)
			continue
		}
		if seen[k.Value] {
			d.add(k, join(path, k.Value), "key given twice in the same mapping")
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{key: k.Value, keyNode: k, valNode: v, keyIsStr: k.ShortTag() == "!!str"})
	}
	for _, p := range merged {
		if !seen[p.key] {
			seen[p.key] = true
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) mergeSources(v *yaml.Node, path string, depth int) []pair {
	if depth > maxDepth {
		d.add(v, path, "merge keys nested too deeply")
		return nil
	}
	v = d.visit(v, path)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path, depth+1)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range v.Content {
			// Earlier maps in a merge list win, as in PyYAML.
			for _, p := range d.mergeSources(item, path, depth+1) {
				if !seen[p.key] {
					seen[p.key] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.add(v, path, "a merge key (<<) must refer to a mapping or a list of mappings")
	return nil
}

// fields is an object's values by key; null values are left out, since
// Tiled treats an explicit null like an absent optional key.
type fields struct {
	node *yaml.Node
	path string
	vals map[string]*yaml.Node
}

func (f fields) get(key string) (*yaml.Node, string) {
	return f.vals[key], join(f.path, key)
}

// object checks that n is a mapping whose keys are all in allowed and
// returns its values. ok is false when n is not a mapping at all.
func (d *decoder) object(n *yaml.Node, path string, allowed []string) (fields, bool) {
	n = d.visit(n, path)
	if n == nil {
		return fields{}, false
	}
	if n.Kind != yaml.MappingNode {
		d.expected(n, path, "a mapping")
		return fields{}, false
	}
	f := fields{node: n, path: path, vals: map[string]*yaml.Node{}}
	for _, p := range d.pairs(n, path, 0) {
		if !contains(allowed, p.key) {
			d.add(p.keyNode, join(path, p.key), "unknown key%s", suggest(p.key, allowed))
			continue
		}
		if !isNull(d.peek(p.valNode)) {
			f.vals[p.key] = p.valNode
		}
	}
	return f, true
}

// peek follows aliases without charging the budget.
func (d *decoder) peek(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i <= maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// require reports each missing key.
func (d *decoder) require(f fields, keys ...string) bool {
	ok := true
	for _, k := range keys {
		if f.vals[k] == nil {
			d.add(f.node, join(f.path, k), "is required")
			ok = false
		}
	}
	return ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest names the closest allowed key, or lists them all.
func suggest(key string, allowed []string) string {
	best, bestDist := "", -1
	lk := strings.ToLower(key)
	for _, a := range allowed {
		dist := editDistance(lk, a)
		if len(lk) >= 4 && (strings.HasPrefix(a, lk) || strings.HasPrefix(lk, a)) {
			dist = 1 // a truncated or extended name
		}
		// Close enough: two edits, or a third of the name.
		if (dist <= 2 || dist*3 <= len(a)) && (bestDist < 0 || dist < bestDist) {
			best, bestDist = a, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sorted := append([]string(nil), allowed...)
	sort.Strings(sorted)
	return "; allowed: " + strings.Join(sorted, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar returns n when it is a scalar, else reports want.
func (d *decoder) scalar(n *yaml.Node, path, want string) *yaml.Node {
	n = d.visit(n, path)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.expected(n, path, want)
		return nil
	}
	return n
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = d.scalar(n, path, "a string")
	if n == nil {
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		return n.Value, true
	}
	d.expected(n, path, "a string")
	return "", false
}

// setStr stores a string field when present and well typed.
func (d *decoder) setStr(f fields, key string, dst *string) {
	if n, p := f.get(key); n != nil {
		if s, ok := d.str(n, p); ok {
			*dst = s
		}
	}
}

// YAML 1.1 booleans, which PyYAML (and so Tiled) reads unquoted.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// parseBoolText accepts what pydantic accepts from a string.
func parseBoolText(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "on", "t", "true", "y", "yes":
		return true, true
	case "0", "off", "f", "false", "n", "no":
		return false, true
	}
	return false, false
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	n = d.scalar(n, path, "a boolean")
	if n == nil {
		return false, false
	}
	switch {
	case n.ShortTag() == "!!bool":
		b, ok := parseBoolText(n.Value)
		if ok {
			return b, true
		}
	case d.fromEnv[n]:
		if b, ok := parseBoolText(n.Value); ok {
			return b, true
		}
		d.add(n, path, "expected a boolean (true or false) from the environment variable")
		return false, false
	case n.Style == 0 && n.ShortTag() == "!!str":
		if b, ok := yaml11Bools[n.Value]; ok {
			return b, true
		}
	}
	d.expected(n, path, "a boolean (true or false)")
	return false, false
}

func (d *decoder) setBool(f fields, key string, dst *bool) {
	if n, p := f.get(key); n != nil {
		if b, ok := d.boolean(n, p); ok {
			*dst = b
		}
	}
}

func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	n = d.scalar(n, path, "an integer")
	if n == nil {
		return 0, false
	}
	var text string
	switch {
	case n.ShortTag() == "!!int":
		text = n.Value
	case d.fromEnv[n]:
		text = strings.TrimSpace(n.Value)
	default:
		d.expected(n, path, "an integer")
		return 0, false
	}
	v, err := strconv.ParseInt(text, 0, 64)
	if err != nil {
		d.add(n, path, "expected an integer in range")
		return 0, false
	}
	return v, true
}

// setInt stores an integer field that must be at least lo.
func (d *decoder) setInt(f fields, key string, lo int64, dst *int64) {
	if n, p := f.get(key); n != nil {
		if v, ok := d.integer(n, p); ok {
			if v < lo {
				d.add(n, p, "must be at least %d", lo)
				return
			}
			*dst = v
		}
	}
}

func (d *decoder) setSmallInt(f fields, key string, lo, hi int64, dst *int) {
	if n, p := f.get(key); n != nil {
		if v, ok := d.integer(n, p); ok {
			if v < lo || v > hi {
				d.add(n, p, "must be between %d and %d", lo, hi)
				return
			}
			*dst = int(v)
		}
	}
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	n = d.scalar(n, path, "a number")
	if n == nil {
		return 0, false
	}
	tag := n.ShortTag()
	if tag != "!!int" && tag != "!!float" && !d.fromEnv[n] {
		d.expected(n, path, "a number")
		return 0, false
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		if f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
		d.add(n, path, "expected a finite number")
		return 0, false
	}
	return v, true
}

// duration reads Tiled's seconds (an integer or a number) or, as an
// extension, a Go duration ("15m", "168h") or an ISO 8601 duration
// ("PT15M", which pydantic also accepts for Tiled's timedelta fields).
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	n = d.scalar(n, path, "a duration")
	if n == nil {
		return 0, false
	}
	var (
		v   time.Duration
		err error
	)
	switch tag := n.ShortTag(); {
	case tag == "!!int" || tag == "!!float":
		var secs float64
		if err = n.Decode(&secs); err == nil {
			v, err = secondsToDuration(secs)
		}
	case tag == "!!str":
		v, err = parseDuration(n.Value)
	default:
		d.expected(n, path, "a duration (seconds, or a string like \"15m\")")
		return 0, false
	}
	if err != nil {
		d.add(n, path, "%v", err)
		return 0, false
	}
	return v, true
}

// setDuration stores a duration that must be positive (or, with zeroOK,
// not negative).
func (d *decoder) setDuration(f fields, key string, zeroOK bool, dst *time.Duration) {
	n, p := f.get(key)
	if n == nil {
		return
	}
	v, ok := d.duration(n, p)
	if !ok {
		return
	}
	if v < 0 || (v == 0 && !zeroOK) {
		if zeroOK {
			d.add(n, p, "must not be negative")
		} else {
			d.add(n, p, "must be positive")
		}
		return
	}
	*dst = v
}

// list calls each for every item of a sequence.
func (d *decoder) list(n *yaml.Node, path string, each func(item *yaml.Node, path string, i int)) bool {
	n = d.visit(n, path)
	if n == nil {
		return false
	}
	if n.Kind != yaml.SequenceNode {
		d.expected(n, path, "a list")
		return false
	}
	for i, item := range n.Content {
		each(item, index(path, i), i)
	}
	return true
}

func (d *decoder) strList(n *yaml.Node, path string) ([]string, bool) {
	out := []string{}
	good := true
	ok := d.list(n, path, func(item *yaml.Node, p string, _ int) {
		if s, ok := d.str(item, p); ok {
			out = append(out, s)
		} else {
			good = false
		}
	})
	return out, ok && good
}

// strMap reads a mapping of strings to strings.
func (d *decoder) strMap(n *yaml.Node, path string) (map[string]string, bool) {
	n = d.visit(n, path)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.expected(n, path, "a mapping")
		return nil, false
	}
	out := map[string]string{}
	good := true
	for _, p := range d.pairs(n, path, 0) {
		kp := join(path, p.key)
		if !p.keyIsStr {
			d.add(p.keyNode, kp, "key must be a string (quote it)")
			good = false
			continue
		}
		if s, ok := d.str(p.valNode, kp); ok {
			out[p.key] = s
		} else {
			good = false
		}
	}
	return out, good
}

// freeMap reads a mapping of free-form values (tree args, policy args),
// which Tiled passes to Python callables: JSON-like values only.
func (d *decoder) freeMap(n *yaml.Node, path string) (map[string]any, bool) {
	v, ok := d.free(n, path, 0)
	if !ok {
		return nil, false
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		d.expected(d.peek(n), path, "a mapping")
		return nil, false
	}
	return m, true
}

func (d *decoder) free(n *yaml.Node, path string, depth int) (any, bool) {
	if depth > maxDepth {
		d.add(n, path, "nested too deeply")
		return nil, false
	}
	n = d.visit(n, path)
	if n == nil {
		return nil, false
	}
	if d.active[n] {
		d.add(n, path, "value contains itself (through an alias)")
		return nil, false
	}
	if d.active == nil {
		d.active = map[*yaml.Node]bool{}
	}
	d.active[n] = true
	defer delete(d.active, n)
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		good := true
		for _, p := range d.pairs(n, path, 0) {
			v, ok := d.free(p.valNode, join(path, p.key), depth+1)
			good = good && ok
			out[p.key] = v
		}
		return out, good
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		good := true
		for i, item := range n.Content {
			v, ok := d.free(item, index(path, i), depth+1)
			good = good && ok
			out = append(out, v)
		}
		return out, good
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!str", "!!timestamp":
			return n.Value, true
		case "!!bool", "!!int", "!!float":
			var v any
			if err := n.Decode(&v); err != nil {
				d.add(n, path, "invalid %s", strings.TrimPrefix(n.ShortTag(), "!!"))
				return nil, false
			}
			return v, true
		}
	}
	d.add(n, path, "unsupported value %s", describe(n))
	return nil, false
}
