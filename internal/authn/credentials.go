package authn

import (
	"net/http"
	"strings"

	"github.com/tiledgo/server/internal/http/httperr"
)

// Cookie and parameter names, as Tiled names them (tiled/server/utils.py).
const (
	APIKeyCookie = "tiled_api_key"
	APIKeyQuery  = "api_key"
)

// Source says where an API key came from; a key from the query string is
// moved into a cookie so a browser need not carry it in URLs again.
type Source int

const (
	FromNone Source = iota
	FromQuery
	FromHeader
	FromCookie
)

// Credentials are the raw secrets a request carries. At most one of APIKey
// and Bearer is used: an API key wins, as in Tiled (get_current_scopes).
type Credentials struct {
	APIKey       string
	APIKeySource Source
	Bearer       string
}

// Empty reports whether the request carried no credentials at all.
func (c Credentials) Empty() bool { return c.APIKey == "" && c.Bearer == "" }

// errBadScheme is Tiled's answer to an Authorization header with a scheme
// other than Bearer or Apikey. The trailing space is Tiled's own.
const errBadScheme = "Authorization header must include the authorization type " +
	"followed by a space and then the secret, as in 'Bearer SECRET' or 'Apikey SECRET'. "

// Extract reads the credentials of r. The API key is taken from the query,
// then the Authorization header, then the cookie (Tiled's precedence).
func Extract(r *http.Request) (Credentials, error) {
	var c Credentials
	var headerKey string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, param, _ := strings.Cut(strings.TrimSpace(h), " ")
		param = strings.TrimSpace(param)
		switch {
		case strings.EqualFold(scheme, "bearer"):
			c.Bearer = param
		case strings.EqualFold(scheme, "apikey"):
			headerKey = param
		default:
			return Credentials{}, httperr.BadRequest(errBadScheme)
		}
	}
	if q := r.URL.Query(); q.Has(APIKeyQuery) {
		c.APIKey, c.APIKeySource = q.Get(APIKeyQuery), FromQuery
	} else if headerKey != "" {
		c.APIKey, c.APIKeySource = headerKey, FromHeader
	} else if ck, err := r.Cookie(APIKeyCookie); err == nil && ck.Value != "" {
		c.APIKey, c.APIKeySource = ck.Value, FromCookie
	}
	if c.APIKey != "" {
		c.Bearer = ""
	}
	return c, nil
}
