package data

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	jmespath "github.com/jmespath-community/go-jmespath"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/serialize"
	"github.com/tiledgo/server/internal/tree"
)

// Limits on inlining container contents (tiled/server/core.py).
const (
	inlinedContentsLimit = 500
	depthLimit           = 5
)

// resource is Tiled's JSON:API resource, in its field order.
type resource struct {
	ID         string     `json:"id"`
	Attributes attributes `json:"attributes"`
	Links      any        `json:"links"`
	Meta       any        `json:"meta"`
}

// attributes is Tiled's NodeAttributes, in its field order; fields not
// asked for are null.
type attributes struct {
	Ancestors       []string        `json:"ancestors"`
	StructureFamily *tree.Family    `json:"structure_family"`
	Specs           []tree.Spec     `json:"specs"`
	Metadata        any             `json:"metadata"`
	Structure       any             `json:"structure"`
	AccessBlob      map[string]any  `json:"access_blob"`
	Sorting         []tree.SortItem `json:"sorting"`
	DataSources     any             `json:"data_sources"`
}

// The links of each family, in Tiled's order.
type (
	selfLink struct {
		Self string `json:"self"`
	}
	containerLinks struct {
		Self   string `json:"self"`
		Search string `json:"search"`
		Full   string `json:"full"`
	}
	arrayLinks struct {
		Self  string `json:"self"`
		Full  string `json:"full"`
		Block string `json:"block"`
	}
	tableLinks struct {
		Self      string `json:"self"`
		Full      string `json:"full"`
		Partition string `json:"partition"`
	}
)

type containerStructure struct {
	Contents *contents `json:"contents"`
	Count    int       `json:"count"`
}

// contents are inlined child resources, kept in the container's order
// (a Go map would sort them).
type contents struct {
	keys []string
	res  []resource
}

// MarshalJSON writes the children as one object, in order.
func (c *contents) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range c.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		key, err := serialize.Marshal(k)
		if err != nil {
			return nil, err
		}
		val, err := serialize.Marshal(c.res[i])
		if err != nil {
			return nil, err
		}
		b.Write(key)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

type tableStructure struct {
	ArrowSchema string   `json:"arrow_schema"`
	NPartitions int      `json:"npartitions"`
	Columns     []string `json:"columns"`
	Resizable   bool     `json:"resizable"`
}

// view holds what shapes the resources of one request.
type view struct {
	h          *Handlers
	caller     *authn.Caller
	base       string // http://host/api/v1
	fields     fieldSet
	selectMeta *metaSelector
	omitLinks  bool
	maxDepth   int // -1: no limit
}

// resource builds the resource of node n at path, as Tiled's
// construct_resource does. n is nil when only keys were asked for.
func (v *view) resource(path []string, n tree.Node, depth int) (resource, error) {
	pathStr := strings.Join(path, "/")
	id := ""
	if len(path) > 0 {
		id = path[len(path)-1]
	}
	r := resource{ID: id, Attributes: attributes{Ancestors: ancestors(path)}}
	if n == nil {
		if !v.omitLinks {
			r.Links = selfLink{v.base + "/metadata/" + pathStr}
		}
		return r, nil
	}
	a := &r.Attributes
	if v.fields.has("metadata") {
		if v.selectMeta != nil {
			sel, err := v.selectMeta.apply(n.Metadata())
			if err != nil {
				return resource{}, err
			}
			a.Metadata = map[string]any{"selected": sel}
		} else {
			a.Metadata = n.Metadata()
		}
	}
	if v.fields.has("access_blob") {
		a.AccessBlob = n.AccessBlob()
	}
	if v.fields.has("specs") {
		a.Specs = n.Specs()
	}
	fam := n.Family()
	switch node := n.(type) {
	case tree.Container:
		a.StructureFamily = &fam
		if v.fields.has("structure") || v.fields.has("count") {
			st, err := v.containerStructure(node, path, depth)
			if err != nil {
				return resource{}, err
			}
			a.Structure = st
		}
		if v.fields.has("sorting") {
			a.Sorting = tree.DefaultSorting()
		}
		if !v.omitLinks {
			r.Links = containerLinks{
				Self:   v.base + "/metadata/" + pathStr,
				Search: v.base + "/search/" + pathStr,
				Full:   v.base + "/container/full/" + pathStr,
			}
		}
	case tree.Array:
		st := node.Structure()
		if v.fields.has("structure_family") {
			a.StructureFamily = &fam
		}
		if v.fields.has("structure") {
			a.Structure = st
		}
		if !v.omitLinks {
			tmpl := make([]string, len(st.Shape))
			for i := range tmpl {
				tmpl[i] = "{" + strconv.Itoa(i) + "}"
			}
			r.Links = arrayLinks{
				Self:  v.base + "/metadata/" + pathStr,
				Full:  v.base + "/array/full/" + pathStr,
				Block: v.base + "/array/block/" + pathStr + "?block=" + strings.Join(tmpl, ","),
			}
		}
	case tree.Table:
		if v.fields.has("structure_family") {
			a.StructureFamily = &fam
		}
		if v.fields.has("structure") {
			st := node.Structure()
			schema, err := serialize.ArrowSchema(st.Columns)
			if err != nil {
				return resource{}, err
			}
			a.Structure = tableStructure{ArrowSchema: schema, NPartitions: st.NPartitions, Columns: st.Names()}
		}
		if !v.omitLinks {
			r.Links = tableLinks{
				Self:      v.base + "/metadata/" + pathStr,
				Full:      v.base + "/table/full/" + pathStr,
				Partition: v.base + "/table/partition/" + pathStr + "?partition={index}",
			}
		}
	default:
		return resource{}, fmt.Errorf("node at %q has unknown family %q", pathStr, fam)
	}
	return r, nil
}

func ancestors(path []string) []string {
	if len(path) == 0 {
		return []string{}
	}
	return append([]string{}, path[:len(path)-1]...)
}

// containerStructure is {"contents", "count"}: the count of children the
// caller may see, and, for containers that ask for it (xarray datasets),
// their resources inline, up to Tiled's size and depth limits.
func (v *view) containerStructure(c tree.Container, path []string, depth int) (containerStructure, error) {
	kids := v.h.visibleChildren(v.caller, c, path)
	st := containerStructure{Count: len(kids)}
	if !c.InlineContents() || (v.maxDepth >= 0 && depth >= v.maxDepth) || depth > depthLimit || len(kids) > inlinedContentsLimit {
		return st, nil
	}
	st.Contents = &contents{}
	for _, k := range kids {
		r, err := v.resource(append(append([]string{}, path...), k.key), k.node, depth+1)
		if err != nil {
			return containerStructure{}, err
		}
		st.Contents.keys = append(st.Contents.keys, k.key)
		st.Contents.res = append(st.Contents.res, r)
	}
	return st, nil
}

// metaSelector is a compiled ?select_metadata= expression: JMESPath, as
// Tiled evaluates it with the jmespath package, here with the JMESPath
// Community implementation (a superset of the original specification).
type metaSelector struct {
	expr string
	jp   jmespath.JMESPath
}

func selectMetaError(err error) error {
	return httperr.BadRequest("Malformed 'select_metadata' parameter raised JMESPathError: " + err.Error())
}

func parseMetaSelector(expr string) (*metaSelector, error) {
	jp, err := compileJMESPath(expr)
	if err != nil {
		return nil, selectMetaError(err)
	}
	return &metaSelector{expr: expr, jp: jp}, nil
}

// compileJMESPath compiles expr, turning a panic of the parser on some
// hostile input into an error.
func compileJMESPath(expr string) (jp jmespath.JMESPath, err error) {
	defer func() {
		if r := recover(); r != nil {
			jp, err = nil, fmt.Errorf("invalid expression: %v", r)
		}
	}()
	return jmespath.Compile(expr)
}

// apply evaluates the expression on a node's metadata. The metadata is
// brought to JSON's types first (numbers as float64, lists as []any), which
// is what JMESPath functions and comparisons work on.
func (m *metaSelector) apply(meta map[string]any) (result any, err error) {
	raw, err := serialize.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var data any
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, selectMetaError(fmt.Errorf("%v", r))
		}
	}()
	out, err := m.jp.Search(data)
	if err != nil {
		return nil, selectMetaError(err)
	}
	return out, nil
}
