package data

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/tree"
)

// envelope is Tiled's schemas.Response, in its field order.
type envelope struct {
	Data  any `json:"data"`
	Error any `json:"error"`
	Links any `json:"links"`
	Meta  any `json:"meta"`
}

// Pagination limits (tiled/server/dependencies.py).
const (
	defaultPageSize = 100
	maxPageSize     = 300
)

// newView checks the caller's read:metadata scope and reads the
// parameters /metadata and /search share.
func (h *Handlers) newView(c echo.Context) (*view, query, error) {
	q, err := begin(c, identity.ScopeReadMetadata)
	if err != nil {
		return nil, q, err
	}
	v, err := h.parseView(c, q)
	return v, q, err
}

func (h *Handlers) parseView(c echo.Context, q query) (*view, error) {
	fields, err := q.fields()
	if err != nil {
		return nil, err
	}
	v := &view{h: h, base: links.API(c.Request()), fields: fields, maxDepth: -1}
	if q.has("select_metadata") {
		if v.selectMeta, err = parseMetaSelector(q.last("select_metadata")); err != nil {
			return nil, err
		}
	}
	if v.omitLinks, err = q.boolParam("omit_links"); err != nil {
		return nil, err
	}
	if q.has("max_depth") {
		if v.maxDepth, err = q.intParam("max_depth", 0, 0, depthLimit); err != nil {
			return nil, err
		}
	}
	// Tiled's in-memory nodes have no data sources to include; the flag is
	// validated and accepted.
	if _, err := q.boolParam("include_data_sources"); err != nil {
		return nil, err
	}
	return v, nil
}

// metadata is GET /metadata/{path}: the node's resource.
func (h *Handlers) metadata(c echo.Context) error {
	v, q, err := h.newView(c)
	if err != nil {
		return err
	}
	rootPath, err := q.boolParam("root_path")
	if err != nil {
		return err
	}
	r, err := h.resolve(c, nil, identity.ScopeReadMetadata)
	if err != nil {
		return err
	}
	v.caller = r.caller
	res, err := v.resource(r.target.parts, r.node, 0)
	if err != nil {
		return err
	}
	meta := map[string]any{}
	if rootPath {
		meta["root_path"] = "/"
	}
	return writeJSON(c, envelope{Data: res, Meta: meta})
}

// pageLinks are the pagination links of a search response.
type pageLinks struct {
	Self  string  `json:"self"`
	First string  `json:"first"`
	Last  *string `json:"last"`
	Next  *string `json:"next"`
	Prev  *string `json:"prev"`
}

// sortFieldPattern is Tiled's SortField: "+key", "-key", "key" or empty.
const sortFieldPattern = `^(?:[+-][a-zA-Z0-9_.]*|[a-zA-Z0-9_.]+)?$`

var sortFieldRE = regexp.MustCompile(sortFieldPattern)

// parseSorting reads ?sort= as Tiled's sorting_param does: empty values are
// dropped (old clients send sort=), a key may appear once, and the default
// order ("" key) may only come last.
func parseSorting(q query) ([]tree.SortItem, error) {
	var out []tree.SortItem
	seen := map[string]bool{}
	for i, raw := range q.all("sort") {
		if !sortFieldRE.MatchString(raw) {
			return nil, patternMismatch(loc("sort", i), raw, sortFieldPattern)
		}
		if raw == "" {
			continue
		}
		item := tree.SortItem{Key: raw, Direction: 1}
		switch raw[0] {
		case '-':
			item = tree.SortItem{Key: raw[1:], Direction: -1}
		case '+':
			item.Key = raw[1:]
		}
		if seen[item.Key] {
			return nil, httperr.BadRequest("Duplicate sorting key: " + item.Key)
		}
		seen[item.Key] = true
		out = append(out, item)
	}
	if seen[""] && out[len(out)-1].Key != "" {
		return nil, httperr.BadRequest("Default sorting (empty string) must be the last item in the sort list")
	}
	return out, nil
}

// sortChildren orders children as Tiled's MapAdapter.sort does: keys are
// applied from last to first, each a stable sort on the top-level metadata
// value (missing values last), "_" keeping the current order, and a
// descending key reversing the whole list.
func sortChildren(kids []child, sorting []tree.SortItem) []child {
	out := append([]child{}, kids...)
	for i := len(sorting) - 1; i >= 0; i-- {
		s := sorting[i]
		if s.Key != "_" {
			sort.SliceStable(out, func(a, b int) bool {
				va, oka := out[a].node.Metadata()[s.Key]
				vb, okb := out[b].node.Metadata()[s.Key]
				switch {
				case !oka:
					return false
				case !okb:
					return true
				}
				return lessJSON(va, vb)
			})
		}
		if s.Direction < 0 {
			for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
				out[l], out[r] = out[r], out[l]
			}
		}
	}
	return out
}

// lessJSON orders metadata values: numbers and strings among themselves;
// values of different kinds by kind (Python would refuse to compare them).
func lessJSON(a, b any) bool {
	if c, ok := compareJSON(a, b); ok {
		return c < 0
	}
	return kindRank(a) < kindRank(b)
}

func kindRank(v any) int {
	if _, ok := number(v); ok {
		return 0
	}
	switch v.(type) {
	case bool:
		return 1
	case string:
		return 2
	case nil:
		return 4
	}
	return 3
}

// search is GET /search/{path}: a page of the container's children.
func (h *Handlers) search(c echo.Context) error {
	v, q, err := h.newView(c)
	if err != nil {
		return err
	}
	offset, err := q.intParam("page[offset]", 0, 0, -1)
	if err != nil {
		return err
	}
	if _, err := q.intParam("page[cursor]", 0, 0, -1); err != nil {
		return err
	}
	limit, err := q.intParam("page[limit]", defaultPageSize, 0, maxPageSize)
	if err != nil {
		return err
	}
	if q.has("page[cursor]") {
		if q.has("page[offset]") {
			return httperr.BadRequest("Cannot specify both page[cursor] and page[offset]")
		}
		return httperr.BadRequest("page[cursor] is not supported by this server; use page[offset]")
	}
	sorting, err := parseSorting(q)
	if err != nil {
		return err
	}
	filters, err := parseFilters(q)
	if err != nil {
		return err
	}
	r, err := h.resolve(c, containerFamilies, identity.ScopeReadMetadata)
	if err != nil {
		return err
	}
	v.caller = r.caller
	kids := h.visibleChildren(r.caller, r.node.(tree.Container), r.target.parts)
	kids = sortChildren(applyFilters(kids, filters), sorting)
	count := len(kids)

	data := []resource{}
	if !v.fields.only("count") {
		start := min(offset, count)
		for _, k := range kids[start : start+min(limit, count-start)] {
			node := k.node
			if v.fields.only("") {
				node = nil // keys only
			}
			res, err := v.resource(append(append([]string{}, r.target.parts...), k.key), node, 0)
			if err != nil {
				return err
			}
			data = append(data, res)
		}
	}
	// MapAdapter's must_revalidate: caches keep the page but ask again.
	c.Response().Header().Set("Cache-Control", "must-revalidate")
	return writeJSON(c, envelope{
		Data:  data,
		Links: paginate(v.base+"/search/"+strings.Join(r.target.parts, "/"), offset, limit, count),
		Meta:  map[string]any{"count": count},
	})
}

// paginate builds the links as Tiled's pagination_links formats them
// (self and first without an offset on the first page, next while more
// remain), with last and prev as well. A zero limit gets no next link,
// which would otherwise point at the same page forever.
func paginate(route string, offset, limit, count int) pageLinks {
	page := func(o int) string {
		return route + "?page[offset]=" + strconv.Itoa(o) + "&page[limit]=" + strconv.Itoa(limit)
	}
	l := pageLinks{First: route + "?page[limit]=" + strconv.Itoa(limit)}
	l.Self = l.First
	if offset > 0 {
		l.Self = page(offset)
	}
	if limit > 0 {
		last := page(max(0, (count-1)/limit*limit))
		l.Last = &last
		if offset < count-limit { // offset+limit < count, without overflow
			next := page(offset + limit)
			l.Next = &next
		}
	}
	if offset > 0 {
		prev := page(max(0, offset-limit))
		l.Prev = &prev
	}
	return l
}
