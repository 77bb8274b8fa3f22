package data

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/tree"
)

// writeRoute is one of Tiled's routes that change the tree. The trees this
// server publishes are read-only, so each answers as Tiled answers for a
// tree whose adapters cannot be written: first the route's scopes (401
// with WWW-Authenticate: Bearer scope="..." when the caller lacks them,
// which is what an anonymous or read-only caller sees), then the path
// (404), then 405 with Tiled's message for that route.
type writeRoute struct {
	method, path string
	scopes       []identity.Scope
	families     families // nil: any node
	detail       string
}

// writeRoutes are Tiled's write routes (tiled/server/router.py), with the
// scopes its Security dependencies require and the messages of its
// hasattr(entry, ...) checks. Where Tiled fails with a 500 on a read-only
// tree (creating or registering nodes, replacing a data source), the
// answer is a 405 in the same style.
var writeRoutes = []writeRoute{
	{http.MethodPost, "/metadata/*", scopes(identity.ScopeWriteMetadata, identity.ScopeCreateNode), nil,
		"This node does not support creating new nodes."},
	{http.MethodPost, "/register/*", scopes(identity.ScopeWriteMetadata, identity.ScopeCreateNode, identity.ScopeRegister), nil,
		"This node does not support creating new nodes."},
	{http.MethodPut, "/data_source/*", scopes(identity.ScopeWriteMetadata, identity.ScopeRegister), nil,
		"This node does not support replacing its data sources."},
	{http.MethodPut, "/metadata/*", scopes(identity.ScopeWriteMetadata), nil,
		"This node does not support update of metadata."},
	{http.MethodPatch, "/metadata/*", scopes(identity.ScopeWriteMetadata), nil,
		"This node does not support update of metadata."},
	{http.MethodDelete, "/metadata/*", scopes(identity.ScopeDeleteNode, identity.ScopeDeleteRevision), nil,
		"This node does not support deletion."},
	{http.MethodPut, "/array/full/*", scopes(identity.ScopeWriteData), arrayFamilies,
		"This node cannot accept array data."},
	{http.MethodPut, "/array/block/*", scopes(identity.ScopeWriteData), arrayFamilies,
		"This node cannot accept array data."},
	{http.MethodPatch, "/array/full/*", scopes(identity.ScopeWriteData), families{tree.FamilyArray},
		"This node cannot accept array data."},
	{http.MethodPut, "/table/full/*", scopes(identity.ScopeWriteData), tableFamilies,
		"This node does not support writing."},
	{http.MethodPut, "/node/full/*", scopes(identity.ScopeWriteData), tableFamilies,
		"This node does not support writing."},
	{http.MethodPut, "/table/partition/*", scopes(identity.ScopeWriteData), nil,
		"This node does not supporting writing a partition."},
	{http.MethodPatch, "/table/partition/*", scopes(identity.ScopeWriteData), nil,
		"This node does not supporting writing a partition."},
	{http.MethodPut, "/awkward/full/*", scopes(identity.ScopeWriteData), families{"awkward"},
		"This node cannot be written to."},
	{http.MethodPut, "/ragged/full/*", scopes(identity.ScopeWriteData), families{"ragged"},
		"This node cannot accept array data."},
	{http.MethodPut, "/ragged/block/*", scopes(identity.ScopeWriteData), families{"ragged"},
		"This node cannot accept blocks of ragged array data."},
	{http.MethodPatch, "/ragged/full/*", scopes(identity.ScopeWriteData), families{"ragged"},
		"This node cannot accept array data."},
	{http.MethodDelete, "/revisions/*", scopes(identity.ScopeDeleteRevision), nil,
		"This node does not support a del request for revisions."},
	{http.MethodGet, "/revisions/*", scopes(identity.ScopeReadMetadata), nil,
		"This node does not support revisions."},
}

func scopes(s ...identity.Scope) []identity.Scope { return s }

func (h *Handlers) registerWrites(g *echo.Group) {
	for _, w := range writeRoutes {
		g.Add(w.method, w.path, h.readOnly(w))
	}
}

func (h *Handlers) readOnly(w writeRoute) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := begin(c, w.scopes...); err != nil {
			return err
		}
		if _, err := h.resolve(c, w.families, w.scopes...); err != nil {
			return err
		}
		return httperr.New(http.StatusMethodNotAllowed, w.detail)
	}
}
