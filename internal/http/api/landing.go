package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/http/view"
)

// landing is the page at GET /, open in every mode (seed 000: "users must
// log in to access anything other than the root GET / ..."). In
// single-user mode, the start-up URL with ?api_key= lands here in a
// browser, and the page says the browser is signed in.
func (s *Server) landing(c echo.Context) error {
	r := c.Request()
	caller := authn.FromContext(r.Context())
	d := view.Landing{
		URL: links.Base(r), API: links.API(r),
		SignIn:             len(s.deps.Providers) > 0 && s.deps.Pages != nil,
		Public:             s.deps.Resolver != nil && s.deps.Resolver.AllowAnonymous,
		SingleUserSignedIn: caller != nil && caller.Kind == authn.SingleUser,
	}
	var nav *view.Nav
	if d.SingleUserSignedIn && s.deps.Pages != nil {
		nav = &view.Nav{Name: "single-user key", SignOut: true}
	}
	return s.deps.View.Render(c, http.StatusOK, "landing", view.Page{Nav: nav, Data: d})
}

// browserLanding says whether a request for the API root is a person's
// browser opening the single-user start-up URL: it is then sent to the
// landing page (the key now in its cookie, and out of the address bar)
// rather than shown the about JSON. Scripts and the Python client ask for
// JSON and get it.
func (s *Server) browserLanding(r *http.Request) bool {
	caller := authn.FromContext(r.Context())
	return caller != nil && caller.Kind == authn.SingleUser && r.URL.Query().Has(authn.APIKeyQuery) &&
		s.plantsKeyCookie(r) && r.Header.Get("Sec-Fetch-Mode") == "navigate" &&
		view.WantsHTML(r)
}

func apiBase(c echo.Context) string { return links.API(c.Request()) }
