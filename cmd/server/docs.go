package main

import (
	"github.com/tiledgo/server/internal/config"
	"github.com/tiledgo/server/internal/http/api"
	"github.com/tiledgo/server/internal/http/docs"
	"github.com/tiledgo/server/internal/version"
)

// docsSurface serves the OpenAPI document and Swagger UI, with the
// [swagger.oauth2] sign-in when configured.
func docsSurface(cfg *config.Config) api.Registrar {
	s := &docs.Surface{Title: "Tiled", Version: version.Get().Version}
	if o := cfg.Swagger.OAuth2; o != nil {
		s.OAuth2 = &docs.OAuth2{Issuer: o.Issuer, ClientID: o.ClientID, Scopes: o.Scopes}
	}
	return s
}
