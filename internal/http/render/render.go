// Package render writes the JSON-or-msgpack documents of Tiled's
// json_or_msgpack (tiled/server/core.py): the about document, metadata,
// search and distinct answers. Whichever encoding the client asks for, the
// answer carries an ETag and is 304 when the client already has it.
package render

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/serialize"
)

// JSONOrMsgpack sends v as msgpack when the Accept header asks for it (the
// Python client always does), as JSON otherwise, with an ETag: an MD5 of
// the encoded body, so that the two encodings never share one.
func JSONOrMsgpack(c echo.Context, v any) error {
	body, err := serialize.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	contentType := serialize.JSON
	if WantsMsgpack(c.Request()) {
		if body, err = serialize.MsgpackFromJSON(body); err != nil {
			return err
		}
		contentType = serialize.Msgpack
	}
	sum := md5.Sum(body)
	return Tagged(c, hex.EncodeToString(sum[:]), contentType, body, "")
}

// WantsMsgpack is Tiled's resolve_media_type: the Accept values, split on
// ", ", are tried in order; */* or JSON mean JSON, msgpack means msgpack,
// and anything else falls through to the next (JSON when none is left).
func WantsMsgpack(r *http.Request) bool {
	for _, mt := range strings.Split(strings.Join(r.Header.Values("Accept"), ", "), ", ") {
		switch mt {
		case "*/*", serialize.JSON:
			return false
		case serialize.Msgpack:
			return true
		}
	}
	return false
}

// Tagged sends body with an ETag, or 304 when If-None-Match names it; a
// filename makes it an attachment.
func Tagged(c echo.Context, etag, contentType string, body []byte, filename string) error {
	hdr := c.Response().Header()
	hdr.Set("ETag", etag)
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	if filename != "" {
		hdr.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", filename))
	}
	return c.Blob(http.StatusOK, contentType, body)
}
