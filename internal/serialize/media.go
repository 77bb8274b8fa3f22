// Package serialize encodes array, table and container data in the media
// types Tiled serves, and picks the media type from a request's Accept
// header or ?format= parameter the way Tiled's construct_data_response
// does. Output is byte-compatible with Tiled where Tiled's output is
// determined by its libraries (numpy's savetxt, pandas' to_csv, orjson).
package serialize

import (
	"fmt"
	"strings"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/tree"
)

// Media types.
const (
	OctetStream = "application/octet-stream"
	JSON        = "application/json"
	JSONSeq     = "application/json-seq"
	CSV         = "text/csv"
	CSVAlt      = "text/x-comma-separated-values"
	CSVOld      = "text/comma-separated-values"
	Plain       = "text/plain"
	Excel       = "application/vnd.ms-excel"
	XLSX        = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	HTML        = "text/html"
	PNG         = "image/png"
	Arrow       = "application/vnd.apache.arrow.file"
	Parquet     = "application/x-parquet"
	Msgpack     = "application/x-msgpack"
)

// SpecXarrayDataset is the spec of a container that is an xarray dataset.
// Tiled registers encoders under spec names as well as structure families,
// and an xarray dataset is served as the table its to_dataframe() makes.
const SpecXarrayDataset = "xarray_dataset"

// registry lists what this server encodes, per structure family or spec,
// in the order Tiled registers them (tiled/serialization). It is exactly
// what the about document advertises. Tiled also offers HDF5, NetCDF,
// TIFF and the awkward, ragged and sparse families, which need libraries
// or structures this server does not have.
var registry = []struct {
	kind  string
	types []string
}{
	{string(tree.FamilyTable), []string{Arrow, Parquet, CSV, CSVAlt, Plain, Excel, HTML, XLSX, JSON, JSONSeq}},
	{string(tree.FamilyContainer), []string{JSON}},
	{string(tree.FamilyArray), []string{OctetStream, JSON, CSV, CSVAlt, Plain, Excel, PNG, HTML}},
	{SpecXarrayDataset, []string{Arrow, Parquet, CSV, CSVOld, Plain, HTML, XLSX, JSON}},
}

func mediaTypes(kind string) []string {
	for _, r := range registry {
		if r.kind == kind {
			return r.types
		}
	}
	return nil
}

// defaultMediaType is what "*/*" (or no Accept header) means per family
// (Tiled's DEFAULT_MEDIA_TYPES). For containers Tiled defaults to HDF5,
// which is not served here; JSON is the container encoding offered.
func defaultMediaType(f tree.Family) string {
	switch f {
	case tree.FamilyArray:
		return OctetStream
	case tree.FamilyTable:
		return Arrow
	default:
		return JSON
	}
}

// extensions maps ?format= aliases to media types: Python's mimetypes
// table for the types involved, then Tiled's own additions
// (SerializationRegistry.DEFAULT_ALIASES). Unknown aliases are taken as
// media types themselves, as in Tiled's resolve_alias.
var extensions = map[string]string{
	"json": JSON, "csv": CSV, "txt": Plain, "text": Plain, "bin": OctetStream,
	"xls": Excel, "xlb": Excel, "xlm": Excel, "xla": Excel, "xlc": Excel, "xlt": Excel, "xlw": Excel,
	"html": HTML, "htm": HTML, "shtml": HTML,
	"xlsx":  XLSX,
	"arrow": Arrow, "feather": Arrow,
	"h5": "application/x-hdf5", "hdf5": "application/x-hdf5",
	"parquet": Parquet, "nc": "application/netcdf",
	"png": PNG, "tif": "image/tiff", "tiff": "image/tiff", "zip": "application/zip",
}

// aliasOrder is the order of the extensions of one media type, as Python's
// mimetypes table lists them.
var aliasOrder = []string{"json", "csv", "xls", "xlb", "xlm", "xla", "xlc", "xlt", "xlw",
	"html", "htm", "shtml", "xlsx", "png", "arrow", "feather", "parquet", "text", "txt"}

// Formats returns the media types per family and spec, for the about
// document.
func Formats() map[string][]string {
	out := map[string][]string{}
	for _, r := range registry {
		out[r.kind] = append([]string(nil), r.types...)
	}
	return out
}

// Aliases returns, per family and spec, the ?format= aliases of each media
// type offered, for the about document. As in Tiled, octet-stream and
// text/plain get no file-extension aliases from the mimetypes table, but
// text/plain keeps Tiled's own "text" and "txt".
func Aliases() map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, r := range registry {
		m := map[string][]string{}
		for _, mt := range r.types {
			for _, ext := range aliasOrder {
				if extensions[ext] == mt {
					m[mt] = append(m[mt], ext)
				}
			}
		}
		out[r.kind] = m
	}
	return out
}

// Choice is a negotiated representation.
type Choice struct {
	// MediaType is the bare media type ("text/csv").
	MediaType string
	// Params are the media type's parameters as the client gave them
	// ("header": "absent" for text/csv;header=absent).
	Params map[string]string
	// ContentType is the response header: the requested type, with
	// "; charset=utf-8" added to text types as Starlette does.
	ContentType string
	// Kind is the family or spec whose encoder serves it.
	Kind string
}

// Negotiate picks the representation for a node of family f with the given
// specs, as Tiled's construct_data_response does. A format (?format=,
// comma-separated aliases or media types) takes priority over accept (the
// Accept header values); the first requested type that can be served wins,
// q-values are not weighed, "*/*" — or no Accept at all — means the
// family's default, and "image/*" means PNG for arrays. Each requested
// type is offered to the node's specs in order and then to its family:
// the first that encodes it decides (Choice.Kind). When nothing fits, the
// error is Tiled's 406.
func Negotiate(f tree.Family, specs []string, accept []string, format string) (Choice, error) {
	var requested []string
	if format != "" {
		for _, a := range strings.Split(format, ",") {
			if mt, ok := extensions[a]; ok {
				a = mt
			}
			requested = append(requested, a)
		}
	} else {
		header := strings.Join(accept, ",")
		if strings.TrimSpace(header) == "" {
			header = defaultMediaType(f)
		}
		for _, s := range strings.Split(header, ",") {
			requested = append(requested, strings.TrimLeft(s, " "))
		}
	}
	kinds := append(append([]string(nil), specs...), string(f))
	var supported []string
	seen := map[string]bool{}
	for _, mt := range requested {
		switch {
		case mt == "*/*":
			mt = defaultMediaType(f)
		case mt == "image/*" && f == tree.FamilyArray:
			mt = PNG
		}
		base, params := parseMediaType(mt)
		for _, kind := range kinds {
			types := mediaTypes(kind)
			for _, s := range types {
				if s == base {
					ct := mt
					if strings.HasPrefix(ct, "text/") && !strings.Contains(ct, "charset=") {
						ct += "; charset=utf-8"
					}
					return Choice{MediaType: base, Params: params, ContentType: ct, Kind: kind}, nil
				}
			}
			for _, s := range types {
				if !seen[s] {
					seen[s] = true
					supported = append(supported, s)
				}
			}
		}
	}
	return Choice{}, httperr.NotAcceptable(fmt.Sprintf(
		"None of the media types requested by the client are supported. Supported: %s. Requested: %s.",
		strings.Join(supported, ", "), strings.Join(requested, ", ")))
}

// parseMediaType splits "text/csv;header=absent" as Tiled's parse_mimetype
// does; a parameter without "=" is ignored rather than failing the request.
func parseMediaType(mt string) (string, map[string]string) {
	base, rest, _ := strings.Cut(mt, ";")
	params := map[string]string{}
	for _, p := range strings.Split(rest, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
			params[k] = v
		}
	}
	return base, params
}

// unsupportedShape is the error for data whose shape the chosen format cannot hold
// (CSV of a 3-D array); Tiled answers it with 406.
func unsupportedShape(shape []int, mediaType string) error {
	return httperr.NotAcceptable(fmt.Sprintf(
		"The shape of this data %s is incompatible with the requested format (%s). Slice it or choose a different format.",
		tree.PyTuple(shape), mediaType))
}
