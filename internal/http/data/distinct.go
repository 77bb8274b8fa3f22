package data

import (
	"bytes"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/serialize"
	"github.com/tiledgo/server/internal/tree"
)

// distinctValue is Tiled's DistinctValueInfo: count is null unless counts
// were asked for.
type distinctValue struct {
	Value any  `json:"value"`
	Count *int `json:"count"`
}

// distinctResponse is Tiled's GetDistinctResponse, in its field order.
type distinctResponse struct {
	Metadata          *orderedLists   `json:"metadata"`
	StructureFamilies []distinctValue `json:"structure_families"`
	Specs             []distinctValue `json:"specs"`
}

// orderedLists keeps the metadata keys in the order they were asked for.
type orderedLists struct {
	keys  []string
	lists [][]distinctValue
}

// MarshalJSON writes the lists as one object, in order.
func (o *orderedLists) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		key, err := serialize.Marshal(k)
		if err != nil {
			return nil, err
		}
		list, err := serialize.Marshal(o.lists[i])
		if err != nil {
			return nil, err
		}
		b.Write(key)
		b.WriteByte(':')
		b.Write(list)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// distinct is GET /distinct/{path}: the distinct values, and optionally
// their counts, of metadata keys (dotted paths), structure families and
// specs among the children that match the search queries, as Tiled's
// MapAdapter.get_distinct gives them (first-seen order, missing values
// left out). Values are compared as JSON, so lists and objects count too
// (Tiled fails on them with a 500).
func (h *Handlers) distinct(c echo.Context) error {
	q, err := begin(c, identity.ScopeReadMetadata)
	if err != nil {
		return err
	}
	families, err := q.boolParam("structure_families")
	if err != nil {
		return err
	}
	specs, err := q.boolParam("specs")
	if err != nil {
		return err
	}
	counts, err := q.boolParam("counts")
	if err != nil {
		return err
	}
	keys := q.all("metadata")
	filters, err := parseFilters(q)
	if err != nil {
		return err
	}
	r, err := h.resolve(c, nil, identity.ScopeReadMetadata)
	if err != nil {
		return err
	}
	ct, ok := r.node.(tree.Container)
	if !ok {
		return httperr.New(http.StatusMethodNotAllowed, "This node does not support distinct.")
	}
	kids := applyFilters(h.visibleChildren(r.caller, ct, r.target.parts), filters)

	var out distinctResponse
	if len(keys) > 0 {
		out.Metadata = &orderedLists{}
		for _, key := range keys {
			var tally tallier
			for _, k := range kids {
				if term, ok := metadataAt(k.node.Metadata(), key); ok {
					tally.add(term)
				}
			}
			out.Metadata.keys = append(out.Metadata.keys, key)
			out.Metadata.lists = append(out.Metadata.lists, tally.values(counts))
		}
	}
	if families {
		var tally tallier
		for _, k := range kids {
			tally.add(string(k.node.Family()))
		}
		out.StructureFamilies = tally.values(counts)
	}
	if specs {
		var tally tallier
		for _, k := range kids {
			tally.add(k.node.Specs())
		}
		out.Specs = tally.values(counts)
	}
	return writeJSON(c, out)
}

// tallier counts values in first-seen order, comparing them as JSON
// (Python's Counter, minus its need for hashable values).
type tallier struct {
	seen   []any
	counts []int
}

func (t *tallier) add(v any) {
	if v == nil {
		return // Tiled's counter_to_dict leaves None out
	}
	for i, s := range t.seen {
		if jsonEqual(s, v) {
			t.counts[i]++
			return
		}
	}
	t.seen = append(t.seen, v)
	t.counts = append(t.counts, 1)
}

func (t *tallier) values(withCounts bool) []distinctValue {
	out := make([]distinctValue, len(t.seen))
	for i, v := range t.seen {
		out[i] = distinctValue{Value: v}
		if withCounts {
			n := t.counts[i]
			out[i].Count = &n
		}
	}
	return out
}
