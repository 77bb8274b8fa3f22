package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/identity"
)

func TestExtract(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		query      string
		cookie     string
		wantKey    string
		wantSource Source
		wantBearer string
		wantStatus int
	}{
		{name: "nothing"},
		{name: "bearer", header: "Bearer tok", wantBearer: "tok"},
		{name: "bearer, any case", header: "bearer tok", wantBearer: "tok"},
		{name: "apikey header", header: "Apikey k", wantKey: "k", wantSource: FromHeader},
		{name: "apikey header, lower case", header: "apikey k", wantKey: "k", wantSource: FromHeader},
		{name: "query beats header", header: "Apikey h", query: "q", wantKey: "q", wantSource: FromQuery},
		{name: "header beats cookie", header: "Apikey h", cookie: "c", wantKey: "h", wantSource: FromHeader},
		{name: "cookie", cookie: "c", wantKey: "c", wantSource: FromCookie},
		{name: "an API key wins over a bearer token", header: "Bearer tok", cookie: "c", wantKey: "c", wantSource: FromCookie},
		{name: "other scheme", header: "Basic eA==", wantStatus: 400},
		{name: "scheme only", header: "Token", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			if tt.query != "" {
				r = httptest.NewRequest("GET", "/x?api_key="+tt.query, nil)
			}
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: APIKeyCookie, Value: tt.cookie})
			}
			got, err := Extract(r)
			var he *httperr.Error
			if tt.wantStatus != 0 {
				if !errors.As(err, &he) || he.Status != tt.wantStatus {
					t.Fatalf("err = %v, want status %d", err, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.APIKey != tt.wantKey || got.APIKeySource != tt.wantSource || got.Bearer != tt.wantBearer {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestResolveSingleUser(t *testing.T) {
	r := &Resolver{SingleUserKey: "secret"}
	ctx := context.Background()
	tests := []struct {
		name   string
		creds  Credentials
		kind   Kind
		status int
		detail string
	}{
		{"right key", Credentials{APIKey: "secret"}, SingleUser, 0, ""},
		{"wrong key", Credentials{APIKey: "secreT"}, 0, 401, MsgInvalidAPIKey},
		{"prefix of the key", Credentials{APIKey: "secre"}, 0, 401, MsgInvalidAPIKey},
		{"bearer in single-user mode", Credentials{Bearer: "secret"}, 0, 401, MsgBadCredentials},
		{"nothing", Credentials{}, Anonymous, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.Resolve(ctx, tt.creds)
			if tt.status != 0 {
				var he *httperr.Error
				if !errors.As(err, &he) || he.Status != tt.status || he.Detail != tt.detail {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || c.Kind != tt.kind {
				t.Fatalf("caller %+v, err %v", c, err)
			}
		})
	}
	if c, _ := r.Resolve(ctx, Credentials{}); len(c.Scopes) != 0 {
		t.Fatalf("anonymous on a private server has scopes %v", c.Scopes.Sorted())
	}
	pub := &Resolver{SingleUserKey: "secret", AllowAnonymous: true}
	if c, _ := pub.Resolve(ctx, Credentials{}); !c.Scopes.Has("read:metadata", "read:data") || c.Scopes.Has("write:data") {
		t.Fatalf("anonymous on a public server: %v", c.Scopes.Sorted())
	}
}

func TestPyList(t *testing.T) {
	for in, want := range map[string]string{"": "[]", "a": "['a']", "a,b": "['a', 'b']", "it's": `['it\'s']`} {
		var items []string
		if in != "" {
			items = strings.Split(in, ",")
		}
		if got := PyList(items); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func FuzzExtract(f *testing.F) {
	for _, s := range []string{"", "Bearer x", "Apikey y", "Basic z", "bearer", " Apikey  k ", "\x00"} {
		f.Add(s, "q", "c")
	}
	f.Fuzz(func(t *testing.T, header, query, cookie string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", header)
		q := r.URL.Query()
		q.Set("api_key", query)
		r.URL.RawQuery = q.Encode()
		r.Header.Set("Cookie", APIKeyCookie+"="+cookie)
		c, err := Extract(r)
		if err == nil && c.APIKey != "" && c.Bearer != "" {
			t.Fatalf("both an API key and a bearer token: %+v", c)
		}
	})
}

// named is a verifier that says who it is.
type named string

func (n named) VerifyAccessToken(context.Context, string) (*Caller, error) {
	return &Caller{Kind: Session, Identities: []identity.Identity{{ID: string(n)}}}, nil
}

// TestBearerRouting: HS256 tokens are this server's own (Tiled tries its
// keys first); any other token goes to the external verifier.
func TestBearerRouting(t *testing.T) {
	enc := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30.sig" }
	r := &Resolver{Tokens: named("own"), External: named("external")}
	for tok, want := range map[string]string{
		enc(`{"alg":"HS256","typ":"JWT"}`): "own",
		enc(`{"alg":"RS256","kid":"k"}`):   "external",
		enc(`{"alg":"none"}`):              "external",
		enc(`{"alg":"HS512"}`):             "external",
		"garbage":                          "external",
	} {
		c, err := r.Resolve(context.Background(), Credentials{Bearer: tok})
		if err != nil || c.Name() != want {
			t.Errorf("%s: %v %v, want %s", tok, c.Name(), err, want)
		}
	}
	if c, _ := (&Resolver{External: named("external")}).Resolve(context.Background(), Credentials{Bearer: enc(`{"alg":"HS256"}`)}); c.Name() != "external" {
		t.Errorf("without session tokens, HS256 goes to the external verifier (which refuses it): %v", c.Name())
	}
}

// TestOwnToken: this server's own tokens (HS256) go to the session
// verifier, whatever order their header's members come in; every other
// algorithm, and anything that is not a JWT, goes elsewhere.
func TestOwnToken(t *testing.T) {
	enc := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30.sig" }
	for _, tc := range []struct {
		name  string
		token string
		want  bool
	}{
		{"the header this server signs with", ownHeader + ".e30.sig", true},
		{"the same header, members swapped", enc(`{"typ":"JWT","alg":"HS256"}`), true},
		{"HS256 without typ", enc(`{"alg":"HS256"}`), true},
		{"HS512", enc(`{"alg":"HS512","typ":"JWT"}`), false},
		{"RS256", enc(`{"alg":"RS256","typ":"JWT","kid":"k"}`), false},
		{"alg none", enc(`{"alg":"none"}`), false},
		{"alg in lower case", enc(`{"alg":"hs256"}`), false},
		{"header not JSON", enc(`HS256`), false},
		{"header not base64", "!!!.e30.sig", false},
		{"no dot", ownHeader, false},
		{"the fast path's header with one byte more", ownHeader + "A.e30.sig", false},
		{"header over 1 KiB", enc(`{"alg":"HS256","x":"` + strings.Repeat("a", 1024) + `"}`), false},
	} {
		if got := ownToken(tc.token); got != tc.want {
			t.Errorf("%s: ownToken = %v, want %v", tc.name, got, tc.want)
		}
	}
	if b, err := base64.RawURLEncoding.DecodeString(ownHeader); err != nil || string(b) != `{"alg":"HS256","typ":"JWT"}` {
		t.Errorf("ownHeader decodes to %q (%v)", b, err)
	}
}
