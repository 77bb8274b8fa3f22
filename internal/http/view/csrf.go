package view

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
)

// CSRFCookie is Tiled's double-submit cookie (tiled/server/app.py). The
// pages use the same cookie for their forms, so a browser holds one token
// whichever way it came in.
const CSRFCookie = "tiled_csrf"

// CSRFField is the form field each page form repeats the token in.
const CSRFField = "csrf"

// csrfKey holds, in the echo.Context, a token set on this very response:
// the request did not carry the cookie yet.
const csrfKey = "tiled.csrf.issued"

// NewCSRFCookie makes a fresh token, sets it on the response and remembers
// it for the rest of the request, so a page rendered in the same response
// embeds the token the browser is about to hold.
func NewCSRFCookie(c echo.Context) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	SetCookie(c, CSRFCookie, tok, "/", 0)
	c.Set(csrfKey, tok)
	return tok
}

// CSRFToken is the token a form on this page must post back.
func CSRFToken(c echo.Context) string {
	if tok, ok := c.Get(csrfKey).(string); ok && tok != "" {
		return tok
	}
	if ck, err := c.Request().Cookie(CSRFCookie); err == nil && ck.Value != "" {
		return ck.Value
	}
	return NewCSRFCookie(c)
}

// CheckForm refuses a form post that did not come from one of our pages:
// the posted token must equal the cookie's (double submit), and a browser
// that says where the post came from must say this origin (Fetch Metadata
// and Origin), which stops a cross-site form even where a cookie leaked.
func CheckForm(c echo.Context, posted string) error {
	r := c.Request()
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin":
	case "":
		// An older browser: fall back to Origin, where it sends one. (Not
		// checked when Fetch Metadata is there: a proxy that rewrites Host
		// would make a same-site post look foreign.)
		if o := r.Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, links.Base(r)) {
			return httperr.Forbidden(msgForeignForm)
		}
	default:
		return httperr.Forbidden(msgForeignForm)
	}
	ck, err := r.Cookie(CSRFCookie)
	if err != nil || ck.Value == "" || posted == "" ||
		subtle.ConstantTimeCompare([]byte(posted), []byte(ck.Value)) != 1 {
		return httperr.Forbidden("This form has expired or did not come from this server. Reload the page and try again.")
	}
	return nil
}

const msgForeignForm = "This form was posted from another site. Open the page on this server and submit it there."

// sameOrigin compares an Origin header with the server's base URL by
// scheme and host.
func sameOrigin(origin, base string) bool {
	o, err1 := url.Parse(origin)
	b, err2 := url.Parse(base)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(o.Scheme, b.Scheme) && strings.EqualFold(o.Host, b.Host)
}
