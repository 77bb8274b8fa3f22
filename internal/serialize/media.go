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
	Plain       = "text/plain"
	Excel       = "application/vnd.ms-excel"
	Arrow       = "application/vnd.apache.arrow.file"
)

// formats lists what this server can encode per family, in Tiled's order
// (tiled/serialization). Tiled's Excel media type is served as CSV there
// too; its HTML, Parquet, XLSX and HDF5 encoders are not offered here.
func formats() map[tree.Family][]string {
	return map[tree.Family][]string{
		tree.FamilyArray:     {OctetStream, JSON, CSV, CSVAlt, Plain, Excel},
		tree.FamilyTable:     {Arrow, CSV, CSVAlt, Plain, Excel, JSON, JSONSeq},
		tree.FamilyContainer: {JSON},
	}
}

// defaultMediaType is what "*/*" (or no Accept header) means per family
// (Tiled's DEFAULT_MEDIA_TYPES). For containers Tiled defaults to HDF5,
// which is not served here; JSON is the one container encoding offered.
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
	"html": "text/html", "htm": "text/html", "shtml": "text/html",
	"xlsx":  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"arrow": Arrow, "feather": Arrow,
	"h5": "application/x-hdf5", "hdf5": "application/x-hdf5",
	"parquet": "application/x-parquet", "nc": "application/netcdf",
	"png": "image/png", "tif": "image/tiff", "tiff": "image/tiff", "zip": "application/zip",
}

// Formats returns the media types per family, for the about document.
func Formats() map[string][]string {
	out := map[string][]string{}
	for f, mts := range formats() {
		out[string(f)] = append([]string(nil), mts...)
	}
	return out
}

// Aliases returns, per family, the ?format= aliases of each media type
// offered, for the about document. As in Tiled, octet-stream and
// text/plain get no file-extension aliases from the mimetypes table, but
// text/plain keeps Tiled's own "text" and "txt".
func Aliases() map[string]map[string][]string {
	order := []string{"json", "csv", "xls", "xlb", "xlm", "xla", "xlc", "xlt", "xlw", "arrow", "feather", "text", "txt"}
	out := map[string]map[string][]string{}
	for f, mts := range formats() {
		m := map[string][]string{}
		for _, mt := range mts {
			for _, ext := range order {
				if extensions[ext] == mt {
					m[mt] = append(m[mt], ext)
				}
			}
		}
		out[string(f)] = m
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
}

// Negotiate picks the representation for a node of family f. A format
// (?format=, comma-separated aliases or media types) takes priority over
// accept (the Accept header values); the first requested type that can be
// served wins, q-values are not weighed, and "*/*" — or no Accept at all —
// means the family's default. When nothing fits, the error is Tiled's 406.
func Negotiate(f tree.Family, accept []string, format string) (Choice, error) {
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
	supported := formats()[f]
	for _, mt := range requested {
		if mt == "*/*" {
			mt = defaultMediaType(f)
		}
		base, params := parseMediaType(mt)
		for _, s := range supported {
			if s == base {
				ct := mt
				if strings.HasPrefix(ct, "text/") && !strings.Contains(ct, "charset=") {
					ct += "; charset=utf-8"
				}
				return Choice{MediaType: base, Params: params, ContentType: ct}, nil
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
