package data

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/access"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/serialize"
	"github.com/tiledgo/server/internal/tree"
)

// sliceParam reads ?slice=: 422 when it fails Tiled's pattern, 400 when it
// passes the pattern but not the parser.
func sliceParam(q query) (tree.Slice, error) {
	raw, ok, err := q.patternParam("slice", tree.MatchesSlicePattern, tree.SlicePattern)
	if err != nil || !ok {
		return tree.Slice{}, err
	}
	s, err := tree.ParseSlice(raw)
	if err != nil {
		return nil, httperr.BadRequest(err.Error())
	}
	return s, nil
}

// readError maps errors of reading a node to Tiled's answers.
func (h *Handlers) readError(err error) error {
	var nsc *tree.NoSuchColumnError
	switch {
	case errors.Is(err, tree.ErrIndexOutOfRange):
		return httperr.BadRequest("Block index out of range")
	case errors.Is(err, tree.ErrZeroStep):
		return httperr.BadRequest("slice step cannot be zero")
	case errors.Is(err, tree.ErrPartitionRange):
		return httperr.BadRequest("Partition out of range")
	case errors.As(err, &nsc):
		return httperr.BadRequest(nsc.Error())
	}
	return err
}

func (h *Handlers) tooLarge(advice string) error {
	return httperr.BadRequest(fmt.Sprintf("Response would exceed %d. %s", h.limit(), advice))
}

const sliceAdvice = "Use slicing ('?slice=...') to request smaller chunks."

// arrayFull is GET /array/full/{path}[?slice=]: the array, or a slice.
func (h *Handlers) arrayFull(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeReadData); err != nil {
		return err
	}
	q := query{c.QueryParams()}
	s, err := sliceParam(q)
	if err != nil {
		return err
	}
	expected, err := q.expectedShape()
	if err != nil {
		return err
	}
	r, err := h.resolve(c, arrayFamilies, identity.ScopeReadData)
	if err != nil {
		return err
	}
	a := r.node.(tree.Array)
	shape, err := s.ShapeAfter(a.Structure().Shape)
	if err != nil {
		return h.readError(err)
	}
	if expected != nil && !reflect.DeepEqual(expected, shape) {
		// Tiled finds this after reading and answers 500; the client sent a
		// shape that does not fit, so it is reported as its error.
		return httperr.Unprocessable(fmt.Sprintf(
			"The shape expected from the structure %s does not match the actual data shape %s",
			tree.PyTuple(expected), tree.PyTuple(shape)))
	}
	ch, err := serialize.Negotiate(tree.FamilyArray, c.Request().Header.Values("Accept"), q.last("format"))
	if err != nil {
		return err
	}
	nd, err := tree.ReadSlice(c.Request().Context(), a, s, h.limit())
	if errors.Is(err, tree.ErrTooLarge) {
		return h.tooLarge(sliceAdvice)
	}
	if err != nil {
		return h.readError(err)
	}
	return h.encodeArray(c, ch, nd)
}

func (h *Handlers) encodeArray(c echo.Context, ch serialize.Choice, nd *tree.NDArray) error {
	body, err := serialize.Array(ch, nd)
	if err != nil {
		return err
	}
	return writeData(c, ch, body)
}

// arrayBlock is GET /array/block/{path}?block=i,j[&slice=]: one chunk.
func (h *Handlers) arrayBlock(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeReadData); err != nil {
		return err
	}
	q := query{c.QueryParams()}
	raw, ok, err := q.patternParam("block", tree.MatchesBlockPattern, tree.BlockPattern)
	if err != nil {
		return err
	}
	if !ok {
		return missing("block")
	}
	block, err := tree.ParseBlock(raw)
	if err != nil {
		return httperr.BadRequest(err.Error())
	}
	s, err := sliceParam(q)
	if err != nil {
		return err
	}
	expected, err := q.expectedShape()
	if err != nil {
		return err
	}
	r, err := h.resolve(c, arrayFamilies, identity.ScopeReadData)
	if err != nil {
		return err
	}
	a := r.node.(tree.Array)
	st := a.Structure()
	ndim := len(st.Shape)
	// The checks and messages of Tiled's array_block route, in its order.
	switch {
	case len(block) == 0 && ndim > 0:
		return httperr.Unprocessable(fmt.Sprintf("Requested scalar but shape is %s", tree.PyTuple(st.Shape)))
	case len(block) != ndim:
		return httperr.Unprocessable(fmt.Sprintf(
			"Block parameter must have %d comma-separated parameters, corresponding to the dimensions of this %d-dimensional array.",
			ndim, ndim))
	}
	blockShape, err := tree.BlockShape(st, block)
	if err != nil {
		return httperr.Unprocessable(fmt.Sprintf(
			"Block parameter does not match the chunks dimensionality. Expected %d comma-separated integers, that index %s, got %s.",
			ndim, tree.PyChunks(st.Chunks), tree.PyTuple(block)))
	}
	shape, err := s.ShapeAfter(blockShape)
	if err != nil {
		return httperr.Unprocessable(fmt.Sprintf(
			"Slice parameter %s is not valid for the shape %s that would result from the requested block.",
			s.PyRepr(), tree.PyTuple(blockShape)))
	}
	if expected != nil && !reflect.DeepEqual(expected, shape) {
		return httperr.Unprocessable(fmt.Sprintf(
			"The expected shape %s does not match the actual shape %s that would result from the requested block and slice.",
			tree.PyTuple(expected), tree.PyTuple(shape)))
	}
	ch, err := serialize.Negotiate(tree.FamilyArray, c.Request().Header.Values("Accept"), q.last("format"))
	if err != nil {
		return err
	}
	nd, err := tree.ReadBlock(c.Request().Context(), a, block, s, h.limit())
	if errors.Is(err, tree.ErrTooLarge) {
		return h.tooLarge(sliceAdvice)
	}
	if err != nil {
		return h.readError(err)
	}
	return h.encodeArray(c, ch, nd)
}

// tableFull is GET /table/full/{path}[?column=...]: the whole table.
func (h *Handlers) tableFull(c echo.Context) error {
	return h.table(c, false)
}

// tablePartition is GET /table/partition/{path}?partition=i[&column=...].
func (h *Handlers) tablePartition(c echo.Context) error {
	return h.table(c, true)
}

func (h *Handlers) table(c echo.Context, partitioned bool) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeReadData); err != nil {
		return err
	}
	q := query{c.QueryParams()}
	partition := 0
	if partitioned {
		if !q.has("partition") {
			return missing("partition")
		}
		var err error
		if partition, err = parseInt("partition", q.last("partition"), minInt, -1); err != nil {
			return err
		}
	}
	columns, err := q.columns(partitioned)
	if err != nil {
		return err
	}
	r, err := h.resolve(c, tableFamilies, identity.ScopeReadData)
	if err != nil {
		return err
	}
	t := r.node.(tree.Table)
	var f *tree.Frame
	advice := "Select a subset of the columns to request a smaller chunks."
	if partitioned {
		advice = "Select a subset of the columns ('?field=...') to request a smaller chunks."
		f, err = tree.ReadPartition(c.Request().Context(), t, partition, columns)
	} else {
		f, err = tree.ReadTable(c.Request().Context(), t, columns)
	}
	if err != nil {
		return h.readError(err)
	}
	if f.Bytes() > h.limit() {
		return h.tooLarge(advice)
	}
	ch, err := serialize.Negotiate(tree.FamilyTable, c.Request().Header.Values("Accept"), q.last("format"))
	if err != nil {
		return err
	}
	body, err := serialize.Table(ch, f)
	if err != nil {
		return err
	}
	return writeData(c, ch, body)
}

const minInt = -int(^uint(0)>>1) - 1

// containerFull is GET /container/full/{path}[?field=...]: the container
// exported as JSON (its tree of metadata; see serialize.Container).
func (h *Handlers) containerFull(c echo.Context) error {
	if err := authn.RequireScopes(c.Request(), identity.ScopeReadData); err != nil {
		return err
	}
	q := query{c.QueryParams()}
	fields := q.all("field")
	r, err := h.resolve(c, containerFamilies, identity.ScopeReadData)
	if err != nil {
		return err
	}
	ct := r.node.(tree.Container)
	visible := map[string]bool{}
	for _, k := range h.visibleChildren(r.caller, ct, r.target.parts) {
		visible[k.key] = true
	}
	selected := map[string]bool{}
	for _, f := range fields {
		if !visible[f] {
			return httperr.BadRequest(fmt.Sprintf("No such field %s.", f))
		}
		selected[f] = true
	}
	ch, err := serialize.Negotiate(tree.FamilyContainer, c.Request().Header.Values("Accept"), q.last("format"))
	if err != nil {
		return err
	}
	keep := func(path []string, n tree.Node) bool {
		if fields != nil && !selected[path[0]] {
			return false
		}
		full := append(append([]string{}, r.target.parts...), path...)
		return h.policy().Visible(r.caller, access.Node{Path: full, AccessBlob: n.AccessBlob()})
	}
	body, err := serialize.Container(ch, ct, keep)
	if err != nil {
		return err
	}
	return writeData(c, ch, body)
}
