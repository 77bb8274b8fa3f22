package e2e

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// capture is one exchange recorded from real Tiled.
type capture struct {
	name   string
	method string
	url    string // as recorded, with Tiled's host and port
	header http.Header
	body   []byte // request body
	status int
	resp   http.Header
	rbody  []byte
}

func loadCapture(t *testing.T, name string) capture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "captures", name))
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	c := capture{name: name, method: http.MethodGet, header: http.Header{}}
	first, rest, ok := bytes.Cut(raw, []byte("\n"))
	if !ok || !bytes.HasPrefix(first, []byte("$ curl ")) {
		t.Fatalf("capture %s: no curl line", name)
	}
	parseCurl(t, &c, strings.Fields(string(first))[2:])

	head, body, ok := bytes.Cut(rest, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("capture %s: no header/body separator", name)
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("capture %s: %v", name, err)
	}
	parts := strings.SplitN(status, " ", 3)
	if len(parts) < 2 {
		t.Fatalf("capture %s: bad status line %q", name, status)
	}
	if c.status, err = strconv.Atoi(parts[1]); err != nil {
		t.Fatalf("capture %s: bad status line %q", name, status)
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("capture %s: headers: %v", name, err)
	}
	c.resp = http.Header(mh)
	// The recorder appended a newline after the body; Content-Length says
	// where the body really ends.
	if n, err := strconv.Atoi(c.resp.Get("Content-Length")); err == nil && n <= len(body) {
		body = body[:n]
	} else {
		body = bytes.TrimSuffix(body, []byte("\n"))
	}
	c.rbody = body
	return c
}

// parseCurl reads the recorder's unquoted curl arguments: -X METHOD,
// -H Name: value words..., -d BODY, and the URL.
func parseCurl(t *testing.T, c *capture, args []string) {
	t.Helper()
	isFlag := func(s string) bool {
		return s == "-X" || s == "-H" || s == "-d" || s == "-b" || strings.HasPrefix(s, "http://")
	}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-X" && i+1 < len(args):
			c.method = args[i+1]
			i++
		case a == "-d" && i+1 < len(args):
			c.body = []byte(args[i+1])
			i++
		case a == "-H" && i+1 < len(args):
			name := strings.TrimSuffix(args[i+1], ":")
			i++
			var value []string
			for i+1 < len(args) && !isFlag(args[i+1]) {
				value = append(value, args[i+1])
				i++
			}
			c.header.Add(name, strings.Join(value, " "))
		case strings.HasPrefix(a, "http://"):
			c.url = a
		default:
			t.Fatalf("capture %s: cannot read curl argument %q", c.name, a)
		}
	}
	if c.url == "" {
		t.Fatalf("capture %s: no URL", c.name)
	}
}

// origin is "http://host:port" of the recorded URL.
func (c capture) origin() string {
	rest := strings.TrimPrefix(c.url, "http://")
	host, _, _ := strings.Cut(rest, "/")
	return "http://" + host
}

// replay re-issues a recorded request against s, with the recorded API key
// replaced by key (when the capture carried one), and compares the answer:
// status, media type, WWW-Authenticate when Tiled sent one, a tiled_api_key
// cookie when Tiled set one, and the body (JSON compared member by member
// with Tiled's host replaced by ours, numbers as written; else bytes).
func replay(t *testing.T, s *server, name, recordedKey, key string) {
	t.Helper()
	c := loadCapture(t, name)
	sub := func(v string) string {
		v = strings.ReplaceAll(v, c.origin(), s.base)
		if recordedKey != "" {
			v = strings.ReplaceAll(v, recordedKey, key)
		}
		return v
	}
	h := http.Header{}
	for k, vs := range c.header {
		for _, v := range vs {
			h.Add(k, sub(v))
		}
	}
	got := s.client(t).do(c.method, sub(c.url), h, c.body)

	if got.Status != c.status {
		t.Errorf("%s: status %d, Tiled %d: %s", name, got.Status, c.status, got)
		return
	}
	if want := mediaTypeOf(c.resp.Get("Content-Type")); want != "" && mediaType(got.Header) != want {
		t.Errorf("%s: Content-Type %q, Tiled %q", name, got.Header.Get("Content-Type"), c.resp.Get("Content-Type"))
	}
	if want := c.resp.Get("Www-Authenticate"); want != "" && got.Header.Get("Www-Authenticate") != want {
		t.Errorf("%s: WWW-Authenticate %q, Tiled %q", name, got.Header.Get("Www-Authenticate"), want)
	}
	if findCookie(reply{Header: c.resp}, "tiled_api_key") != nil {
		ck := findCookie(got, "tiled_api_key")
		if ck == nil || ck.Value != key {
			t.Errorf("%s: Tiled sets cookie tiled_api_key=KEY, got Set-Cookie %q", name, got.Header.Values("Set-Cookie"))
		}
	}
	wantBody := []byte(sub(string(c.rbody)))
	if mediaTypeOf(c.resp.Get("Content-Type")) == "application/json" && len(wantBody) > 0 {
		want, err := decodeBytes(wantBody)
		if err != nil {
			t.Fatalf("%s: capture body: %v", name, err)
		}
		gotV, err := decodeBytes(got.Body)
		if err != nil {
			t.Errorf("%s: body is not JSON (%v): %s", name, err, got)
			return
		}
		if d := jsonDiff("body", want, gotV); len(d) > 0 {
			t.Errorf("%s: body differs from Tiled's:\n%s", name, strings.Join(d, "\n"))
		}
		return
	}
	if !bytes.Equal(got.Body, wantBody) {
		t.Errorf("%s: body differs from Tiled's\n got: %s\nwant: %s", name, truncate(got.Body, 400), truncate(wantBody, 400))
	}
}

// replayAll replays each named capture in its own subtest.
func replayAll(t *testing.T, s *server, recordedKey, key string, names ...string) {
	t.Helper()
	for _, name := range names {
		t.Run(name, func(t *testing.T) { replay(t, s, name, recordedKey, key) })
	}
}

func mediaTypeOf(ct string) string {
	return mediaType(http.Header{"Content-Type": {ct}})
}
