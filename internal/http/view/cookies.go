package view

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/forwarded"
)

// SetCookie sets one of the server's cookies, all under one policy:
// HttpOnly (no script reads them), SameSite=Lax, and Secure whenever the
// client reached the server (or its first trusted proxy) over HTTPS.
// maxAge follows http.Cookie: 0 for a browser-session cookie, negative to
// delete it.
func SetCookie(c echo.Context, name, value, path string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: forwarded.Scheme(c.Request()) == "https",
	})
}
