package authapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/http/api"
	"github.com/tiledgo/server/internal/http/authapi"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/tokens"
)

// fuzzTarget is a multi-user server in one process: the real middleware,
// error mapping, handlers and store, with one logged-in session and one key.
type fuzzTarget struct {
	h               http.Handler
	access, refresh string
	key             string
}

func newFuzzTarget(f *testing.F) *fuzzTarget {
	f.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	keys, _ := tokens.NewKeys([]string{"fuzz-key"})
	logger := slog.New(slog.DiscardHandler)
	mgr := &sessions.Manager{Sessions: st, Identities: st, Keys: keys, Config: sessions.DefaultConfig(), Now: time.Now, Logger: logger}
	keySvc := &apikeys.Service{Identities: st, Now: time.Now, Logger: logger}
	h := &authapi.Handlers{
		Providers: []authapi.Provider{
			{Name: "toy", Password: authenticator.NewDictionary(map[string]string{"alice": "secret1"})},
			{Name: "any", Password: authenticator.Dummy{}},
		},
		Admins:  []authapi.AdminIdentity{{Provider: "toy", ID: "alice"}},
		Manager: mgr, Sessions: st, Identities: st, APIKeys: keySvc,
		LoginLimit: authapi.LoginLimit{PerUserAddress: 1000, PerAddress: 100000, Window: time.Minute},
		Now:        time.Now, Logger: logger,
	}
	srv := api.New(api.Deps{
		Logger: logger, Resolver: &authn.Resolver{Tokens: mgr, APIKeys: keySvc},
		Surfaces: []api.Registrar{h},
	})
	p, _, err := st.LoginIdentity(ctx, "toy", "alice", []string{identity.RoleUser, identity.RoleAdmin}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	t, err := mgr.Start(ctx, p, nil)
	if err != nil {
		f.Fatal(err)
	}
	k, err := keySvc.Issue(ctx, p, apikeys.Grant{Scopes: identity.ScopesOfRoles(p.Roles)}, apikeys.Request{})
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzTarget{h: srv.Handler(), access: t.AccessToken, refresh: t.RefreshToken, key: k.Secret}
}

var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/auth/provider/toy/token"},
	{"POST", "/api/v1/auth/provider/any/token"},
	{"POST", "/api/v1/auth/provider/nope/token"},
	{"POST", "/api/v1/auth/session/refresh"},
	{"POST", "/api/v1/auth/session/revoke"},
	{"DELETE", "/api/v1/auth/session/revoke/"},
	{"POST", "/api/v1/auth/logout"},
	{"GET", "/api/v1/auth/whoami"},
	{"POST", "/api/v1/auth/apikey"},
	{"GET", "/api/v1/auth/apikey"},
	{"DELETE", "/api/v1/auth/apikey"},
	{"GET", "/api/v1/auth/principal"},
	{"POST", "/api/v1/auth/principal"},
	{"GET", "/api/v1/auth/principal/"},
	{"POST", "/api/v1/auth/principal/"},
	{"DELETE", "/api/v1/auth/principal/"},
}

var contentTypes = []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", ""}

// FuzzAuthRoutes sends arbitrary bodies, queries, content types and
// credentials to every auth route: the answer is never a 5xx and never a
// panic (the recover middleware would turn one into a 500).
func FuzzAuthRoutes(f *testing.F) {
	ft := newFuzzTarget(f)
	auths := func(sel uint8) string {
		switch sel % 5 {
		case 0:
			return ""
		case 1:
			return "Bearer " + ft.access
		case 2:
			return "Apikey " + ft.key
		case 3:
			return "Bearer garbage.token.here"
		default:
			return "Basic eA=="
		}
	}
	for i := range fuzzRoutes {
		for _, body := range []string{``, `{}`, `null`, `[]`, `{"refresh_token":"` + ft.refresh + `"}`,
			`{"refresh_token":7}`, `username=alice&password=secret1`, `username=alice&password=x&grant_type=nope`,
			`{"scopes":["read:data"],"expires_in":60,"note":"n"}`, `{"scopes":"read:data","expires_in":-1.5}`,
			`{"scopes":null,"access_tags":["t"]}`, `{"expires_in":1e309}`} {
			f.Add(uint8(i), uint8(i), uint8(i), "x?first_eight=abc&role=user&page[offset]=-1", []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, route, ct, auth uint8, suffix string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req, err := http.NewRequest(r.method, "http://127.0.0.1"+r.path, bytes.NewReader(body))
		if err != nil {
			return
		}
		if u, err := req.URL.Parse(r.path + suffix); err == nil {
			req.URL = u
		}
		req.Header.Set("Content-Type", contentTypes[int(ct)%len(contentTypes)])
		if a := auths(auth); a != "" {
			req.Header.Set("Authorization", a)
		}
		rec := httptest.NewRecorder()
		ft.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%q): %d %s", req.Method, req.URL, body, rec.Code, rec.Body)
		}
	})
}
