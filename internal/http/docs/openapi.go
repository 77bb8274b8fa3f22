package docs

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/bearerjwt"
)

// Options shape the document.
type Options struct {
	Title, Version string
	// ServerURL is where this server is reached (with any root path).
	ServerURL string
	OAuth2    *OAuth2
}

// Security scheme names.
const (
	schemeBearer      = "bearer"
	schemeAPIKey      = "apikey"
	schemeAPIKeyQuery = "apikeyQuery"
	schemeAdminToken  = "adminToken"
	schemeOIDC        = "oidc"
)

// Build describes the registered routes. A route missing from Operations
// is still listed, marked undocumented (the test refuses that).
func Build(routes []*echo.Route, o Options) *openapi3.T {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{Title: o.Title, Version: o.Version,
			Description: "The Tiled HTTP API as this server speaks it. Credentials: `Authorization: Bearer TOKEN` " +
				"(this server's access tokens, or a JWT of a configured OIDC issuer), `Authorization: Apikey KEY` or `?api_key=KEY`."},
		Paths:      openapi3.NewPaths(),
		Components: &openapi3.Components{SecuritySchemes: openapi3.SecuritySchemes{}},
	}
	if o.ServerURL != "" {
		doc.Servers = openapi3.Servers{{URL: o.ServerURL}}
	}
	ss := doc.Components.SecuritySchemes
	ss[schemeBearer] = &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().
		WithDescription("An access token from this server's login routes, or a JWT minted by the configured OIDC issuer (resource-server mode).")}
	ss[schemeAPIKey] = &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").
		WithName("Authorization").WithDescription("An API key, written as `Apikey SECRET`.")}
	ss[schemeAPIKeyQuery] = &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("query").
		WithName("api_key").WithDescription("An API key in the query string.")}
	ss[schemeAdminToken] = &openapi3.SecuritySchemeRef{Value: openapi3.NewSecurityScheme().WithType("apiKey").WithIn("header").
		WithName("X-Admin-Token").WithDescription("The admin token (TILED_ADMIN_TOKEN), for POST /api/v1/reload.")}
	if o.OAuth2 != nil {
		ss[schemeOIDC] = &openapi3.SecuritySchemeRef{Value: openapi3.NewOIDCSecurityScheme(
			strings.TrimSuffix(o.OAuth2.Issuer, "/") + bearerjwt.WellKnownSuffix).
			WithDescription("Sign in at the identity provider (authorization code with PKCE); the access token is sent as a bearer token.")}
	}

	seen := map[string]bool{}
	sort.Slice(routes, func(i, j int) bool {
		if routes[i].Path != routes[j].Path {
			return routes[i].Path < routes[j].Path
		}
		return routes[i].Method < routes[j].Method
	})
	for _, r := range routes {
		if r.Method == http.MethodHead || strings.HasPrefix(r.Method, "echo_route") || r.Method == echo.RouteNotFound {
			continue
		}
		key := r.Method + " " + r.Path
		if seen[key] {
			continue
		}
		seen[key] = true
		op, documented := Operations[key]
		path, params := openAPIPath(r.Path, op.Params)
		item := doc.Paths.Value(path)
		if item == nil {
			item = &openapi3.PathItem{}
			doc.Paths.Set(path, item)
		}
		item.SetOperation(r.Method, operation(r.Method, r.Path, op, documented, params, o.OAuth2 != nil))
	}
	return doc
}

// openAPIPath turns Echo's template into OpenAPI's: ":name" is "{name}",
// the trailing "*" is "{path}" (or the documented rest parameter).
func openAPIPath(p string, documented []Param) (string, []Param) {
	var params []Param
	segs := strings.Split(p, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, ":"):
			segs[i] = "{" + s[1:] + "}"
			params = append(params, pathParam(s[1:]))
		case s == "*":
			name := "path"
			for _, d := range documented {
				if d.Rest {
					name = d.Name
				}
			}
			segs[i] = "{" + name + "}"
			params = append(params, pathRest(name))
		}
	}
	for _, d := range documented {
		if d.In == "query" {
			params = append(params, d)
		}
	}
	return strings.Join(segs, "/"), params
}

func operation(method, path string, op Operation, documented bool, params []Param, oidc bool) *openapi3.Operation {
	id := strings.ToLower(method) + strings.NewReplacer("/", "_", ":", "", "*", "rest", ".", "_", "[", "_", "]", "").Replace(path)
	out := &openapi3.Operation{OperationID: id, Summary: op.Summary, Responses: openapi3.NewResponses()}
	if !documented {
		out.Summary = "Undocumented route"
		out.Description = "UNDOCUMENTED: add this route to internal/http/docs.Operations."
	}
	if op.Tag != "" {
		out.Tags = []string{op.Tag}
	}
	for _, p := range params {
		var prm *openapi3.Parameter
		if p.In == "path" {
			prm = openapi3.NewPathParameter(p.Name)
			if p.Rest {
				prm.Description = "A path of keys separated by '/', possibly empty."
			}
		} else {
			prm = openapi3.NewQueryParameter(p.Name)
		}
		out.Parameters = append(out.Parameters, &openapi3.ParameterRef{Value: prm.WithSchema(openapi3.NewStringSchema())})
	}
	switch {
	case op.JSONBody:
		out.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithJSONSchema(openapi3.NewObjectSchema())}
	case op.Form:
		out.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().
			WithFormDataSchema(openapi3.NewObjectSchema())}
	}
	ok := openapi3.NewResponse().WithDescription("OK")
	switch {
	case op.NoContent:
		out.Responses.Set("204", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("Done")})
	case op.Redirect:
		out.Responses.Set("307", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("Redirect to the identity provider")})
	case op.HTML:
		out.Responses.Set("200", &openapi3.ResponseRef{Value: ok.WithContent(openapi3.Content{"text/html": &openapi3.MediaType{}})})
	case op.Raw:
		out.Responses.Set("200", &openapi3.ResponseRef{Value: ok.WithDescription("The data, in the media type negotiated with Accept or ?format=")})
	default:
		out.Responses.Set("200", &openapi3.ResponseRef{Value: ok.WithJSONSchema(openapi3.NewSchema())})
	}
	for _, code := range op.Errors {
		out.Responses.Set(fmt.Sprint(code), &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription(http.StatusText(code) + `: {"detail": ...}; 401 and 403 carry WWW-Authenticate`).
			WithJSONSchema(openapi3.NewObjectSchema())})
	}
	if op.Access != Open {
		sec := openapi3.NewSecurityRequirements()
		sec.With(openapi3.NewSecurityRequirement().Authenticate(schemeBearer))
		sec.With(openapi3.NewSecurityRequirement().Authenticate(schemeAPIKey))
		sec.With(openapi3.NewSecurityRequirement().Authenticate(schemeAPIKeyQuery))
		if oidc {
			sec.With(openapi3.NewSecurityRequirement().Authenticate(schemeOIDC))
		}
		if op.Access == Reload {
			sec.With(openapi3.NewSecurityRequirement().Authenticate(schemeAdminToken))
		}
		if op.Access == Read {
			// Public servers (allow_anonymous_access, anonymous_read).
			sec.With(openapi3.NewSecurityRequirement())
		}
		out.Security = sec
	} else {
		// Open, but credentials sent are read (whoami answers who).
		sec := openapi3.NewSecurityRequirements()
		sec.With(openapi3.NewSecurityRequirement())
		sec.With(openapi3.NewSecurityRequirement().Authenticate(schemeBearer))
		if oidc {
			sec.With(openapi3.NewSecurityRequirement().Authenticate(schemeOIDC))
		}
		out.Security = sec
	}
	return out
}
