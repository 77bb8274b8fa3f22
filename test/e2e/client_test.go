package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// reply is a response read in full.
type reply struct {
	Method string
	URL    string
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.URL, r.Status, truncate(r.Body, 300))
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + fmt.Sprintf("...(%d bytes)", len(b))
}

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func apikey(key string) http.Header { return hdr("Authorization", "Apikey "+key) }

// with adds name/value pairs to a copy of h.
func with(h http.Header, kv ...string) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Add(kv[i], kv[i+1])
	}
	return out
}

// client is how tests talk to a server: it never follows redirects unless
// given a jar, and it checks every response against the rules that hold for
// all of them (no 5xx; errors are JSON {"detail": ...}).
type client struct {
	t    *testing.T
	s    *server
	http *http.Client
}

func (s *server) client(t *testing.T) *client {
	return &client{t: t, s: s, http: &http.Client{
		Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// browser follows redirects and keeps cookies, as a web browser does.
func (s *server) browser(t *testing.T) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, s: s, http: &http.Client{Timeout: 15 * time.Second, Jar: jar}}
}

func (c *client) get(path string, h http.Header) reply {
	c.t.Helper()
	return c.do(http.MethodGet, path, h, nil)
}

// do sends one request to path (relative to the server, or an absolute URL)
// and reads the whole answer.
func (c *client) do(method, path string, h http.Header, body []byte) reply {
	c.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http://") {
		url = c.s.base + path
	}
	// Failures are reported with Errorf, not Fatalf, so that do may run on
	// goroutines other than the test's; the zero status then fails the
	// caller's status check too.
	failed := reply{Method: method, URL: url}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		c.t.Errorf("request %s %s: %v", method, url, err)
		return failed
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Errorf("%s %s: %v", method, url, err)
		return failed
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Errorf("%s %s: read body: %v", method, url, err)
		return failed
	}
	r := reply{Method: method, URL: resp.Request.URL.String(), Status: resp.StatusCode, Header: resp.Header, Body: b}
	checkReply(c.t, r)
	return r
}

// checkReply holds for every answer: never a server error, and every error
// in FastAPI's shape, a JSON object with a "detail" member.
func checkReply(t *testing.T, r reply) {
	t.Helper()
	if r.Status >= 500 {
		t.Errorf("server error: %s", r)
		return
	}
	if r.Status < 400 {
		return
	}
	if mt := mediaType(r.Header); mt != "application/json" {
		t.Errorf("error response has Content-Type %q, want application/json: %s", r.Header.Get("Content-Type"), r)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Errorf("error response body is not a JSON object (%v): %s", err, r)
		return
	}
	if _, ok := body["detail"]; !ok {
		t.Errorf(`error response body has no "detail": %s`, r)
	}
}

func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// expectStatus fails the test unless r has the wanted status.
func expectStatus(t *testing.T, r reply, want int) bool {
	t.Helper()
	if r.Status != want {
		t.Errorf("status %d, want %d: %s", r.Status, want, r)
		return false
	}
	return true
}

// expectDetail checks the status and the exact "detail" string.
func expectDetail(t *testing.T, r reply, status int, detail string) {
	t.Helper()
	if !expectStatus(t, r, status) {
		return
	}
	var body struct {
		Detail any `json:"detail"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Errorf("body is not JSON: %v: %s", err, r)
		return
	}
	if body.Detail != detail {
		t.Errorf("detail %q, want %q: %s", body.Detail, detail, r)
	}
}

// decode parses a JSON body, keeping numbers as written (json.Number), so
// that 1 and 1.0 stay different, as they are for Python clients.
func decode(t *testing.T, r reply) any {
	t.Helper()
	v, err := decodeBytes(r.Body)
	if err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r)
	}
	return v
}

func decodeBytes(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// object decodes a body that must be a JSON object.
func object(t *testing.T, r reply) map[string]any {
	t.Helper()
	m, ok := decode(t, r).(map[string]any)
	if !ok {
		t.Fatalf("body is not a JSON object: %s", r)
	}
	return m
}

// at walks a decoded JSON value along keys (string) and indexes (int).
func at(v any, path ...any) (any, bool) {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil, false
			}
			v = a[k]
		}
	}
	return v, true
}

// expectAt checks the value at path against want, which is written as
// plain Go (numbers as json.Number or untyped literals converted by norm).
func expectAt(t *testing.T, v any, want any, path ...any) {
	t.Helper()
	got, ok := at(v, path...)
	if !ok {
		t.Errorf("%s: missing", pathString(path))
		return
	}
	if d := jsonDiff(pathString(path), norm(want), got); len(d) > 0 {
		t.Errorf("%s", strings.Join(d, "\n"))
	}
}

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			b.WriteString("." + k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}

// norm turns a Go literal (ints, floats, []int...) into what decode yields,
// by a round trip through encoding/json. Floats that are whole keep a ".0"
// so that they compare as floats.
func norm(v any) any {
	b, err := json.Marshal(floatsWithPoint(v))
	if err != nil {
		panic(err)
	}
	out, err := decodeBytes(b)
	if err != nil {
		panic(err)
	}
	return out
}

// floatsWithPoint replaces float64 values by json.Number literals that
// always carry a decimal point, as Python and numpy print them.
func floatsWithPoint(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Float32, reflect.Float64:
		return json.Number(pyFloat(rv.Float()))
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return v
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = floatsWithPoint(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range rv.MapKeys() {
			out[fmt.Sprint(k.Interface())] = floatsWithPoint(rv.MapIndex(k).Interface())
		}
		return out
	}
	return v
}

// pyFloat formats f as Python's repr does for the values used here.
func pyFloat(f float64) string {
	s := fmt.Sprintf("%v", f)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// jsonDiff lists where got differs from want, one line per difference.
func jsonDiff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an object %s", path, compact(got), compact(want))}
		}
		var out []string
		for _, k := range sortedKeys(w) {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing, want %s", path, k, compact(w[k])))
				continue
			}
			out = append(out, jsonDiff(path+"."+k, w[k], gv)...)
		}
		for _, k := range sortedKeys(g) {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: unexpected member %s", path, k, compact(g[k])))
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an array %s", path, compact(got), compact(want))}
		}
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %d elements %s, want %d %s", path, len(g), compact(got), len(w), compact(want))}
		}
		var out []string
		for i := range w {
			out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, compact(got), compact(want))}
		}
		return nil
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return truncate(b, 200)
}

// findCookie returns the named cookie set by r, if any.
func findCookie(r reply, name string) *http.Cookie {
	resp := http.Response{Header: r.Header}
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// getJSON GETs path and decodes its body, when the answer is 200.
func (c *client) getJSON(path string, h http.Header) (any, bool) {
	c.t.Helper()
	r := c.get(path, h)
	if !expectStatus(c.t, r, http.StatusOK) {
		return nil, false
	}
	return decode(c.t, r), true
}

// getObject GETs path and decodes its body as a JSON object, when the
// answer is 200.
func (c *client) getObject(path string, h http.Header) (map[string]any, bool) {
	c.t.Helper()
	r := c.get(path, h)
	if !expectStatus(c.t, r, http.StatusOK) {
		return nil, false
	}
	return object(c.t, r), true
}

// getBytes GETs path with Accept: mediaType and returns the body, when the
// answer is 200 of that media type.
func (c *client) getBytes(path string, h http.Header, mediaType string) ([]byte, bool) {
	c.t.Helper()
	r := c.get(path, with(h, "Accept", mediaType))
	if !expectStatus(c.t, r, http.StatusOK) {
		return nil, false
	}
	expectMediaType(c.t, r, mediaType)
	return r.Body, true
}
