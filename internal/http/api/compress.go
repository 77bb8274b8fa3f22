package api

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/labstack/echo/v4"
)

// compressMinSize is Tiled's CompressionMiddleware minimum_size: smaller
// bodies are sent as they are.
const compressMinSize = 1000

// gzipLevels are the media types Tiled compresses and its gzip level for
// each (tiled/media_type_registration.py): the best compression for small
// metadata documents, the fastest for data, which can be large.
var gzipLevels = map[string]int{
	"application/json":                  9,
	"application/x-msgpack":             9,
	"application/octet-stream":          1,
	"application/vnd.apache.arrow.file": 1,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 1,
	"text/csv":   1,
	"text/plain": 1,
	"text/html":  1,
}

// compress gzips responses for clients that accept it, as Tiled's
// CompressionMiddleware does: only its media types, only bodies of at
// least compressMinSize bytes, and only when gzip saves more than 10%.
// The body is held until the handler returns, which every handler here
// allows: they all build their whole answer before writing it.
func compress(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !acceptsGzip(c.Request().Header.Values("Accept-Encoding")) || c.Request().Method == http.MethodHead {
			return next(c)
		}
		res := c.Response()
		orig := res.Writer
		buf := &bufferedWriter{header: orig.Header(), status: http.StatusOK}
		res.Writer = buf
		defer func() {
			// A panic goes on to recoverPanics, whose 500 must reach the
			// client: give the response its own writer back.
			if r := recover(); r != nil {
				res.Writer = orig
				if res.Committed {
					buf.flushTo(orig)
				}
				panic(r)
			}
		}()
		err := next(c)
		if err != nil {
			// Let the error handler write its answer through the buffer too.
			c.Error(err)
		}
		res.Writer = orig
		buf.flushTo(orig)
		return nil
	}
}

func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(item), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") {
				return true
			}
		}
	}
	return false
}

// bufferedWriter holds a response until it is known whether to compress it.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(status int)      { b.status = status }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	body := b.body.Bytes()
	mediaType, _, _ := strings.Cut(b.header.Get(echo.HeaderContentType), ";")
	level, ok := gzipLevels[strings.TrimSpace(mediaType)]
	if ok && len(body) >= compressMinSize && b.header.Get(echo.HeaderContentEncoding) == "" {
		var z bytes.Buffer
		zw, err := gzip.NewWriterLevel(&z, level)
		if err == nil {
			_, err = zw.Write(body)
		}
		if err == nil {
			err = zw.Close()
		}
		// Tiled sends the original unless the ratio beats 1/0.9.
		if err == nil && float64(len(body)) > float64(z.Len())/0.9 {
			b.header.Set(echo.HeaderContentEncoding, "gzip")
			b.header.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
			body = z.Bytes()
		}
	}
	if len(body) > 0 || b.header.Get(echo.HeaderContentLength) != "" {
		b.header.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(body)
}
