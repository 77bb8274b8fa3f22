// Package data serves Tiled's read API for the node tree: metadata and
// search (the JSON:API-style envelopes the Python client browses with) and
// the array, table and container data routes. Every route checks the
// caller's scopes first, then walks the path with the access policy, so
// that a node the caller may not see answers exactly like a missing one.
package data

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/access"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/render"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/serialize"
	"github.com/tiledgo/server/internal/tree"
)

// DefaultMaxResponseBytes is Tiled's response_bytesize_limit (300 MB).
const DefaultMaxResponseBytes = 300_000_000

// Handlers serve the data routes.
type Handlers struct {
	Root tree.Node
	// Policy filters the tree per caller; nil allows everything.
	Policy access.Policy
	// Logger records failures of data sources (files that cannot be read
	// any more); nil logs nothing.
	Logger *slog.Logger
	// MaxResponseBytes caps the data a single response may carry; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Register adds the routes to the API group (/api/v1). The read routes
// answer HEAD as well as GET, as Starlette's routes do; the table and
// container data routes also take POST, with the columns in the body, for
// lists too long for a URL. Tiled's write routes answer as Tiled does for
// a tree that cannot be written (see writes.go).
func (h *Handlers) Register(g *echo.Group) {
	for path, handler := range map[string]echo.HandlerFunc{
		"/metadata/*":        h.metadata,
		"/search/*":          h.search,
		"/distinct/*":        h.distinct,
		"/array/full/*":      h.arrayFull,
		"/array/block/*":     h.arrayBlock,
		"/table/full/*":      h.tableFull,
		"/table/partition/*": h.tablePartition,
		"/container/full/*":  h.containerFull,
	} {
		g.GET(path, handler)
		g.HEAD(path, handler)
	}
	g.POST("/table/full/*", h.tableFull)
	g.POST("/table/partition/*", h.tablePartition)
	g.POST("/container/full/*", h.containerFull)
	h.registerWrites(g)
}

func (h *Handlers) limit() int64 {
	if h.MaxResponseBytes > 0 {
		return h.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

func (h *Handlers) policy() access.Policy {
	if h.Policy == nil {
		return access.AllowAll{}
	}
	return h.Policy
}

// target is the request's path: the raw string as Tiled formats it into
// messages, and its segments.
type target struct {
	raw   string
	parts []string
}

// pathOf reads the wildcard path. Tiled splits the decoded path on "/" and
// drops empty segments, so "/metadata//a/" is the node "a".
func pathOf(c echo.Context) (target, error) {
	raw := c.Param("*")
	if c.Request().URL.RawPath != "" {
		// Echo routes on the escaped path when there is one.
		u, err := url.PathUnescape(raw)
		if err != nil {
			return target{}, httperr.BadRequest("Malformed path: " + err.Error())
		}
		raw = u
	}
	t := target{raw: raw}
	for _, s := range strings.Split(raw, "/") {
		if s != "" {
			t.parts = append(t.parts, s)
		}
	}
	return t, nil
}

// begin checks that the caller holds the scopes, before anything else as in
// Tiled (its check_scopes runs ahead of parameter validation), and returns
// the request's query parameters.
func begin(c echo.Context, scopes ...identity.Scope) (query, error) {
	if err := authn.RequireScopes(c.Request(), scopes...); err != nil {
		return query{}, err
	}
	return query{c.QueryParams()}, nil
}

// errHidden stops a walk at a node the caller may not see.
var errHidden = errors.New("hidden by the access policy")

func notFound(t target) error {
	parts := t.parts
	if parts == nil {
		parts = []string{}
	}
	return httperr.NotFound("No such entry: " + authn.PyList(parts))
}

// families says which structure families a route serves, for Tiled's
// wrong-family message.
type families []tree.Family

// pyRepr is how Python 3.11+ formats Tiled's set of StructureFamily
// members in that message.
func (fs families) pyRepr() string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("<StructureFamily.%s: '%s'>", f, f)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

var (
	arrayFamilies     = families{tree.FamilyArray, "sparse"}
	tableFamilies     = families{tree.FamilyTable}
	containerFamilies = families{tree.FamilyContainer}
)

// resolved is the node a request addresses, found and allowed.
type resolved struct {
	node   tree.Node
	target target
	caller *authn.Caller
}

// resolve finds the node at the request's path for a caller that holds
// scopes, as Tiled's get_entry does: every node on the way must be visible
// (else 404 "No such entry"), the access policy must grant the scopes on
// the node itself (403 when it may be seen but not used so), and the node
// must be of one of the route's families (404 otherwise).
func (h *Handlers) resolve(c echo.Context, fams families, scopes ...identity.Scope) (*resolved, error) {
	t, err := pathOf(c)
	if err != nil {
		return nil, err
	}
	caller := authn.FromContext(c.Request().Context())
	p := h.policy()
	var blob map[string]any // the nearest access blob on the path
	n, err := tree.Walk(c.Request().Context(), h.Root, t.parts, func(path []string, n tree.Node) error {
		if b := n.AccessBlob(); b != nil {
			blob = b
		}
		if !p.Visible(caller, access.Node{Path: path, AccessBlob: n.AccessBlob()}) {
			return errHidden
		}
		return nil
	})
	var cte *tree.ColumnTypeError
	switch {
	case errors.Is(err, tree.ErrNotFound) || errors.Is(err, errHidden):
		return nil, notFound(t)
	case errors.As(err, &cte):
		return nil, httperr.BadRequest(fmt.Sprintf("%s: /api/v1/table/full/%s?column=%s",
			cte.Error(), strings.Join(t.parts[:len(t.parts)-1], "/"), url.QueryEscape(cte.Column)))
	case err != nil:
		return nil, h.readError(t.parts, err)
	}
	allowed := p.AllowedScopes(caller, access.Node{Path: t.parts, AccessBlob: blob})
	if !allowed.Has(identity.ScopeReadMetadata) {
		return nil, notFound(t)
	}
	if !allowed.Has(scopes...) {
		return nil, httperr.Forbidden(fmt.Sprintf(
			"Not enough permissions to perform this action on this node. Requires scopes %s. Principal had scopes %s on this node.",
			authn.PyList(scopes), authn.PyList(allowed.Sorted())))
	}
	if fams != nil && !containsFamily(fams, n.Family()) {
		return nil, httperr.NotFound(fmt.Sprintf(
			"The node at %s has structure family StructureFamily.%s and this endpoint is compatible with structure families %s",
			t.raw, n.Family(), fams.pyRepr()))
	}
	return &resolved{node: n, target: t, caller: caller}, nil
}

// specNames lists the node's spec names, which Tiled offers a media type
// to before its structure family.
func specNames(n tree.Node) []string {
	var out []string
	for _, s := range n.Specs() {
		out = append(out, s.Name)
	}
	return out
}

func containsFamily(fs families, f tree.Family) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// visibleChildren lists the children of c that the caller may see, in
// order.
func (h *Handlers) visibleChildren(caller *authn.Caller, c tree.Container, path []string) []child {
	var out []child
	for _, k := range c.Keys() {
		n, ok := c.Child(k)
		if !ok {
			continue
		}
		p := append(append([]string{}, path...), k)
		if h.policy().Visible(caller, access.Node{Path: p, AccessBlob: n.AccessBlob()}) {
			out = append(out, child{key: k, node: n})
		}
	}
	return out
}

type child struct {
	key  string
	node tree.Node
}

// writeJSON sends a metadata document, JSON or msgpack as the client asks.
func writeJSON(c echo.Context, v any) error { return render.JSONOrMsgpack(c, v) }

// writeData sends an encoded payload with an ETag over the bytes and the
// media type (Tiled tokenizes the payload with its media type).
func writeData(c echo.Context, ch serialize.Choice, body []byte) error {
	sum := md5.New()
	sum.Write([]byte(ch.MediaType))
	sum.Write([]byte{0})
	sum.Write(body)
	return render.Tagged(c, hex.EncodeToString(sum.Sum(nil)), ch.ContentType, body, c.QueryParam("filename"))
}
