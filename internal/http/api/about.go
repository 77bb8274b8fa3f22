package api

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/http/render"
	"github.com/tiledgo/server/internal/http/view"
	"github.com/tiledgo/server/internal/version"
)

// about answers GET /api/v1/ in the shape of Tiled's About schema
// (tiled/schemas.py). It is always open: clients read it before they log in.
func (s *Server) about(c echo.Context) error {
	r := c.Request()
	if s.browserLanding(r) {
		return c.Redirect(http.StatusSeeOther, view.RootPath(r)+"/")
	}
	base := links.API(r)
	internalMode := "internal"
	if clientOlderThanInternalMode(r.UserAgent()) {
		internalMode = "password"
	}
	providers := make([]map[string]any, 0, len(s.deps.Providers))
	var proxied *ProxiedInfo
	for _, p := range s.deps.Providers {
		// extra_scopes is null, as Tiled's about schema serialises it.
		spec := map[string]any{"provider": p.Name, "confirmation_message": p.ConfirmationMessage, "extra_scopes": nil}
		if p.Proxied != nil {
			// tiled/server/router.py: the client logs in at the provider.
			info := p.Proxied()
			proxied = &info
			extra := info.ExtraScopes
			if extra == nil {
				extra = []string{}
			}
			spec["mode"] = "external"
			spec["extra_scopes"] = extra
			spec["links"] = map[string]any{
				// Tiled also links its own code-flow route (authorize_endpoint),
				// which its client does not use; this server does not serve
				// that route for proxied providers, so it is not linked.
				"auth_endpoint":  nullable(info.DeviceAuthorizationEndpoint),
				"client_id":      info.DeviceFlowClientID,
				"token_endpoint": nullable(info.TokenEndpoint),
			}
			providers = append(providers, spec)
			continue
		}
		if p.External {
			spec["mode"] = "external"
			spec["links"] = map[string]string{"auth_endpoint": base + "/auth/provider/" + p.Name + "/authorize"}
		} else {
			spec["mode"] = internalMode
			spec["links"] = map[string]string{"auth_endpoint": base + "/auth/provider/" + p.Name + "/token"}
		}
		providers = append(providers, spec)
	}
	auth := map[string]any{
		"required":  !s.deps.Resolver.AllowAnonymous,
		"providers": providers,
		"links":     nil,
	}
	if len(providers) > 0 {
		links := map[string]any{
			"whoami":          base + "/auth/whoami",
			"apikey":          base + "/auth/apikey",
			"refresh_session": base + "/auth/session/refresh",
			"revoke_session":  base + "/auth/session/revoke/{session_id}",
			"logout":          base + "/auth/logout",
		}
		if proxied != nil {
			// Sessions are the provider's: refresh and log out there.
			links["refresh_session"] = nullable(proxied.TokenEndpoint)
			links["logout"] = nullable(proxied.EndSessionEndpoint)
		}
		auth["links"] = links
	}
	formats := s.deps.Formats
	if formats == nil {
		formats = map[string][]string{}
	}
	aliases := s.deps.Aliases
	if aliases == nil {
		aliases = map[string]map[string][]string{}
	}
	queries := s.deps.Queries
	if queries == nil {
		queries = []string{}
	}
	// Tiled marks the document fresh for ten minutes.
	c.Response().Header().Set("Expires", now().UTC().Add(10*time.Minute).Format(http.TimeFormat))
	return render.JSONOrMsgpack(c, map[string]any{
		"api_version":     0,
		"library_version": version.TiledAPIVersion,
		"formats":         formats,
		"aliases":         aliases,
		"queries":         queries,
		"authentication":  auth,
		"links":           map[string]string{"self": base, "documentation": base + "/docs"},
		"meta":            map[string]any{"root_path": "/api"},
	})
}

// nullable is s, or JSON null when it is empty (an endpoint not known).
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var clientVersionRE = regexp.MustCompile(`python-tiled/(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)(\d+))?`)

// clientOlderThanInternalMode reports whether the User-Agent is a Tiled
// Python client older than 0.1.0b17, which knows password providers by the
// mode name "password" instead of "internal" (tiled/server/router.py).
func clientOlderThanInternalMode(ua string) bool {
	m := clientVersionRE.FindStringSubmatch(ua)
	if m == nil {
		return false
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	rel := [3]int{n(m[1]), n(m[2]), n(m[3])}
	if rel != [3]int{0, 1, 0} {
		return rel[0] == 0 && (rel[1] < 1 || (rel[1] == 1 && rel[2] == 0))
	}
	switch m[4] {
	case "":
		return false // 0.1.0 final
	case "a":
		return true
	case "b":
		return n(m[5]) < 17
	default: // rc
		return false
	}
}

func encodeURLSafe(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
