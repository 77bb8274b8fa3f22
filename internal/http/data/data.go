package data

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/access"
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

// readError maps errors of reading the node at path to Tiled's answers.
// Anything else is a failure of the data source (a file that changed or
// went away under a served directory): it is logged with the node's path
// and left for the server's error handler, which answers 500.
func (h *Handlers) readError(path []string, err error) error {
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
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	if h.Logger != nil {
		h.Logger.Warn("reading data failed", "path", strings.Join(path, "/"), "error", err)
	}
	return fmt.Errorf("read %q: %w", strings.Join(path, "/"), err)
}

func (h *Handlers) tooLarge(advice string) error {
	return httperr.BadRequest(fmt.Sprintf("Response would exceed %d. %s", h.limit(), advice))
}

// arrayRequest is what both array routes read: the query, the slice, the
// shape the client expects, and the array itself.
type arrayRequest struct {
	q        query
	slice    tree.Slice
	expected []int // nil when not given
	array    tree.Array
	path     []string
}

// arrayRoute reads an array request and serves what read returns. block
// runs first, for the route's own parameters; plan checks the request
// against the array's structure and returns the read to do.
func (h *Handlers) arrayRoute(c echo.Context, block func(query) error,
	plan func(*arrayRequest) (func(context.Context, int64) (*tree.NDArray, error), error)) error {
	q, err := begin(c, identity.ScopeReadData)
	if err != nil {
		return err
	}
	req := &arrayRequest{q: q}
	if err := block(q); err != nil {
		return err
	}
	if req.slice, err = sliceParam(req.q); err != nil {
		return err
	}
	if req.expected, err = req.q.expectedShape(); err != nil {
		return err
	}
	r, err := h.resolve(c, arrayFamilies, identity.ScopeReadData)
	if err != nil {
		return err
	}
	req.array, req.path = r.node.(tree.Array), r.target.parts
	read, err := plan(req)
	if err != nil {
		return err
	}
	ch, err := serialize.Negotiate(tree.FamilyArray, specNames(req.array), c.Request().Header.Values("Accept"), req.q.last("format"))
	if err != nil {
		return err
	}
	nd, err := read(c.Request().Context(), h.limit())
	if errors.Is(err, tree.ErrTooLarge) {
		return h.tooLarge("Use slicing ('?slice=...') to request smaller chunks.")
	}
	if err != nil {
		return h.readError(req.path, err)
	}
	body, err := serialize.Array(ch, nd)
	if err != nil {
		return err
	}
	return writeData(c, ch, body)
}

func noBlock(query) error { return nil }

// arrayFull is GET /array/full/{path}[?slice=]: the array, or a slice.
func (h *Handlers) arrayFull(c echo.Context) error {
	return h.arrayRoute(c, noBlock, func(req *arrayRequest) (func(context.Context, int64) (*tree.NDArray, error), error) {
		shape, err := req.slice.ShapeAfter(req.array.Structure().Shape)
		if err != nil {
			return nil, h.readError(req.path, err)
		}
		if req.expected != nil && !reflect.DeepEqual(req.expected, shape) {
			// Tiled finds this after reading and answers 500; the client
			// sent a shape that does not fit, so it is reported as its error.
			return nil, httperr.Unprocessable(fmt.Sprintf(
				"The shape expected from the structure %s does not match the actual data shape %s",
				tree.PyTuple(req.expected), tree.PyTuple(shape)))
		}
		return func(ctx context.Context, limit int64) (*tree.NDArray, error) {
			return tree.ReadSlice(ctx, req.array, req.slice, limit)
		}, nil
	})
}

// arrayBlock is GET /array/block/{path}?block=i,j[&slice=]: one chunk.
func (h *Handlers) arrayBlock(c echo.Context) error {
	var block []int64
	parseBlock := func(q query) error {
		raw, ok, err := q.patternParam("block", tree.MatchesBlockPattern, tree.BlockPattern)
		if err != nil {
			return err
		}
		if !ok {
			return missing("block")
		}
		if block, err = tree.ParseBlock(raw); err != nil {
			return httperr.BadRequest(err.Error())
		}
		return nil
	}
	return h.arrayRoute(c, parseBlock, func(req *arrayRequest) (func(context.Context, int64) (*tree.NDArray, error), error) {
		st := req.array.Structure()
		ndim := len(st.Shape)
		// The checks and messages of Tiled's array_block route, in its order.
		switch {
		case len(block) == 0 && ndim > 0:
			return nil, httperr.Unprocessable(fmt.Sprintf("Requested scalar but shape is %s", tree.PyTuple(st.Shape)))
		case len(block) != ndim:
			return nil, httperr.Unprocessable(fmt.Sprintf(
				"Block parameter must have %d comma-separated parameters, corresponding to the dimensions of this %d-dimensional array.",
				ndim, ndim))
		}
		blockShape, err := tree.BlockShape(st, block)
		if err != nil {
			return nil, httperr.Unprocessable(fmt.Sprintf(
				"Block parameter does not match the chunks dimensionality. Expected %d comma-separated integers, that index %s, got %s.",
				ndim, tree.PyChunks(st.Chunks), tree.PyTuple(block)))
		}
		shape, err := req.slice.ShapeAfter(blockShape)
		if err != nil {
			return nil, httperr.Unprocessable(fmt.Sprintf(
				"Slice parameter %s is not valid for the shape %s that would result from the requested block.",
				req.slice.PyRepr(), tree.PyTuple(blockShape)))
		}
		if req.expected != nil && !reflect.DeepEqual(req.expected, shape) {
			return nil, httperr.Unprocessable(fmt.Sprintf(
				"The expected shape %s does not match the actual shape %s that would result from the requested block and slice.",
				tree.PyTuple(req.expected), tree.PyTuple(shape)))
		}
		return func(ctx context.Context, limit int64) (*tree.NDArray, error) {
			return tree.ReadBlock(ctx, req.array, block, req.slice, limit)
		}, nil
	})
}

// tableFull is GET /table/full/{path}[?column=...] and its POST form, with
// the columns as a JSON list in the body: the whole table.
func (h *Handlers) tableFull(c echo.Context) error {
	return h.table(c, false)
}

// tablePartition is GET /table/partition/{path}?partition=i[&column=...]
// and its POST form.
func (h *Handlers) tablePartition(c echo.Context) error {
	return h.table(c, true)
}

func (h *Handlers) table(c echo.Context, partitioned bool) error {
	q, err := begin(c, identity.ScopeReadData)
	if err != nil {
		return err
	}
	partition := 0
	if partitioned {
		if !q.has("partition") {
			return missing("partition")
		}
		if partition, err = parseInt("partition", q.last("partition"), math.MinInt, -1); err != nil {
			return err
		}
	}
	var columns []string
	if c.Request().Method == http.MethodPost {
		columns, err = bodyList(c)
	} else {
		columns, err = q.columns(partitioned)
	}
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
		return h.readError(r.target.parts, err)
	}
	if f.Bytes() > h.limit() {
		return h.tooLarge(advice)
	}
	ch, err := serialize.Negotiate(tree.FamilyTable, specNames(t), c.Request().Header.Values("Accept"), q.last("format"))
	if err != nil {
		return err
	}
	body, err := serialize.Table(ch, f)
	if err != nil {
		return err
	}
	return writeData(c, ch, body)
}

// containerFull is GET /container/full/{path}[?field=...] and its POST
// form, with the fields as a JSON list in the body. An xarray dataset is
// served as the table it makes (its variables as columns; what the Python
// client reads a dataset with); any other container as Tiled's JSON export
// of its tree of metadata (see serialize.Container).
func (h *Handlers) containerFull(c echo.Context) error {
	q, err := begin(c, identity.ScopeReadData)
	if err != nil {
		return err
	}
	var fields []string
	if c.Request().Method == http.MethodPost {
		fields, err = bodyList(c)
	} else {
		fields = q.all("field")
	}
	if err != nil {
		return err
	}
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
	ch, err := serialize.Negotiate(tree.FamilyContainer, specNames(ct), c.Request().Header.Values("Accept"), q.last("format"))
	if err != nil {
		return err
	}
	if ch.Kind == serialize.SpecXarrayDataset {
		return h.dataset(c, r, ch, fields, visible)
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

// dataset serves an xarray dataset as Tiled's serializers do: the table of
// as_dataset(node).to_dataframe() in the chosen format.
func (h *Handlers) dataset(c echo.Context, r *resolved, ch serialize.Choice, fields []string, visible map[string]bool) error {
	if fields == nil {
		for _, k := range r.node.(tree.Container).Keys() {
			if visible[k] {
				fields = append(fields, k)
			}
		}
		if fields == nil {
			fields = []string{}
		}
	}
	data, index, err := tree.DatasetFrame(c.Request().Context(), r.node.(tree.Container), fields, h.limit())
	var de *tree.DatasetError
	switch {
	case errors.Is(err, tree.ErrTooLarge):
		return h.tooLarge("Select a subset of the fields ('?field=...') to request a smaller chunks.")
	case errors.As(err, &de):
		return httperr.NotAcceptable(de.Msg)
	case err != nil:
		return h.readError(r.target.parts, err)
	}
	body, err := serialize.Table(ch, data, index...)
	if err != nil {
		return err
	}
	return writeData(c, ch, body)
}
