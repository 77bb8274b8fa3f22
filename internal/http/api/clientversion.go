package api

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
)

// minimumClientVersion is Tiled's MINIMUM_SUPPORTED_PYTHON_CLIENT_VERSION:
// older Python clients are refused (tiled/server/app.py).
var minimumClientVersion = mustVersion("0.1.0a104")

// checkClientVersion answers Tiled's 400 to a python-tiled client older
// than the oldest one Tiled talks to (development releases are let
// through, as Tiled does; a version that does not parse is ignored).
func (s *Server) checkClientVersion(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isProbe(c) {
			return next(c)
		}
		if v, ok := pythonClientVersion(c.Request()); ok && !v.isDev() && v.compare(minimumClientVersion) < 0 {
			return httperr.BadRequest(fmt.Sprintf(
				"Python Tiled client reports version %s. Version %s or higher is needed to communicate with this Tiled server.",
				v, minimumClientVersion))
		}
		return next(c)
	}
}

// pythonClientVersion reads the version of a User-Agent
// "python-tiled/VERSION", as Tiled's parse_python_tiled_client_version.
func pythonClientVersion(r *http.Request) (pyVersion, bool) {
	raw, ok := strings.CutPrefix(r.UserAgent(), "python-tiled/")
	if !ok {
		return pyVersion{}, false
	}
	return parseVersion(raw)
}

// pyVersion is a PEP 440 version, as Python's packaging.version.Version
// parses and orders it.
type pyVersion struct {
	epoch   uint64
	release []uint64
	pre     string // "a", "b" or "rc"; "" for none
	preN    uint64
	post    *uint64
	dev     *uint64
	local   string
}

var versionRE = regexp.MustCompile(`(?i)^\s*v?(?:(\d+)!)?(\d+(?:\.\d+)*)` +
	`(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d+)?)?` +
	`(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d+)?)?` +
	`(?:[-_.]?(dev)[-_.]?(\d+)?)?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$`)

func parseVersion(s string) (pyVersion, bool) {
	if len(s) > 256 {
		return pyVersion{}, false
	}
	m := versionRE.FindStringSubmatchIndex(s)
	if m == nil {
		return pyVersion{}, false
	}
	group := func(i int) (string, bool) {
		if m[2*i] < 0 {
			return "", false
		}
		return s[m[2*i]:m[2*i+1]], true
	}
	num := func(t string) (uint64, bool) {
		if t == "" {
			return 0, true
		}
		n, err := strconv.ParseUint(t, 10, 64)
		return n, err == nil
	}
	var v pyVersion
	ok := true
	var n uint64
	if e, has := group(1); has {
		v.epoch, ok = num(e)
	}
	rel, _ := group(2)
	for _, p := range strings.Split(rel, ".") {
		if n, ok = num(p); !ok {
			return pyVersion{}, false
		}
		v.release = append(v.release, n)
	}
	if l, has := group(3); has {
		switch strings.ToLower(l) {
		case "a", "alpha":
			v.pre = "a"
		case "b", "beta":
			v.pre = "b"
		default:
			v.pre = "rc"
		}
		pn, _ := group(4)
		if v.preN, ok = num(pn); !ok {
			return pyVersion{}, false
		}
	}
	if p, has := group(5); has {
		if n, ok = num(p); !ok {
			return pyVersion{}, false
		}
		v.post = &n
	} else if _, has := group(6); has {
		p, _ := group(7)
		var pn uint64
		if pn, ok = num(p); !ok {
			return pyVersion{}, false
		}
		v.post = &pn
	}
	if _, has := group(8); has {
		d, _ := group(9)
		var dn uint64
		if dn, ok = num(d); !ok {
			return pyVersion{}, false
		}
		v.dev = &dn
	}
	if l, has := group(10); has {
		v.local = strings.ToLower(l)
	}
	return v, ok
}

func mustVersion(s string) pyVersion {
	v, ok := parseVersion(s)
	if !ok {
		panic("api: bad version literal " + s)
	}
	return v
}

func (v pyVersion) isDev() bool { return v.dev != nil }

// String is the normalized form packaging prints.
func (v pyVersion) String() string {
	var b strings.Builder
	if v.epoch != 0 {
		fmt.Fprintf(&b, "%d!", v.epoch)
	}
	for i, n := range v.release {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprintf(&b, "%d", n)
	}
	if v.pre != "" {
		fmt.Fprintf(&b, "%s%d", v.pre, v.preN)
	}
	if v.post != nil {
		fmt.Fprintf(&b, ".post%d", *v.post)
	}
	if v.dev != nil {
		fmt.Fprintf(&b, ".dev%d", *v.dev)
	}
	if v.local != "" {
		b.WriteString("+" + v.local)
	}
	return b.String()
}

// compare orders versions as packaging does: epoch, release (trailing
// zeros ignored), then pre-release (a dev release of the final version
// sorts before its pre-releases), post-release, development release.
func (v pyVersion) compare(o pyVersion) int {
	if c := cmpUint(v.epoch, o.epoch); c != 0 {
		return c
	}
	for i := 0; i < max(len(v.release), len(o.release)); i++ {
		var a, b uint64
		if i < len(v.release) {
			a = v.release[i]
		}
		if i < len(o.release) {
			b = o.release[i]
		}
		if c := cmpUint(a, b); c != 0 {
			return c
		}
	}
	if c := cmpRank(v.preRank(), o.preRank()); c != 0 {
		return c
	}
	if c := cmpOpt(v.post, o.post, -1); c != 0 {
		return c
	}
	return cmpOpt(v.dev, o.dev, 1)
}

// preRank places the pre-release: a dev-only release first, then a, b, rc
// in order with their numbers, then no pre-release.
func (v pyVersion) preRank() [2]uint64 {
	switch {
	case v.pre == "" && v.post == nil && v.dev != nil:
		return [2]uint64{0, 0}
	case v.pre == "a":
		return [2]uint64{1, v.preN}
	case v.pre == "b":
		return [2]uint64{2, v.preN}
	case v.pre == "rc":
		return [2]uint64{3, v.preN}
	}
	return [2]uint64{4, 0}
}

func cmpRank(a, b [2]uint64) int {
	if c := cmpUint(a[0], b[0]); c != 0 {
		return c
	}
	return cmpUint(a[1], b[1])
}

// cmpOpt compares optional numbers; absent sorts as missing (−1: before any
// number, as for post-releases; +1: after, as for dev releases).
func cmpOpt(a, b *uint64, missing int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return missing
	case b == nil:
		return -missing
	}
	return cmpUint(*a, *b)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
