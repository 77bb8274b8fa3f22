package authn

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/http/links"
	"github.com/tiledgo/server/internal/identity"
)

// RequireScopes checks that the caller of r holds every scope in want. If not
// it returns Tiled's 401 (tiled/server/authentication.py:check_scopes): the
// message lists required and held scopes as Python lists, WWW-Authenticate
// names the required scopes and X-Tiled-Root points at the API.
func RequireScopes(r *http.Request, want ...identity.Scope) error {
	c, err := Current(r.Context())
	if err != nil {
		return err
	}
	if c.Scopes.Has(want...) {
		return nil
	}
	held := c.Scopes.Sorted()
	e := httperr.New(http.StatusUnauthorized, fmt.Sprintf(
		"Not enough permissions. Requires scopes %s. Request had scopes %s",
		PyList(want), PyList(held)))
	e.WithHeader("WWW-Authenticate", fmt.Sprintf("Bearer scope=%q", strings.Join(want, " ")))
	e.WithHeader("X-Tiled-Root", links.API(r))
	return e
}

// PyList formats strings as Python's repr of a list, ['a', 'b'], because
// Tiled's error messages are built that way and clients match on them.
func PyList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
