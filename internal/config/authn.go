package config

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tiledgo/server/internal/identity"
)

// Kind is the authenticator behind a provider.
type Kind int

// Kinds of authenticator this server implements.
const (
	KindUnknown Kind = iota
	KindDictionary
	KindPAM
	KindOIDC
	KindDummy
	// KindProxiedOIDC and KindEntra validate bearer tokens the identity
	// provider itself issued (a proxy or the client did the login).
	KindProxiedOIDC
	KindEntra
)

var kindNames = map[Kind]string{
	KindUnknown: "unknown", KindDictionary: "dictionary", KindPAM: "pam", KindOIDC: "oidc", KindDummy: "dummy",
	KindProxiedOIDC: "proxied_oidc", KindEntra: "entra",
}

func (k Kind) String() string { return kindNames[k] }

// External reports whether the person logs in at another site (Tiled's
// "external" mode) rather than giving a password to this server.
func (k Kind) External() bool { return k == KindOIDC || k.Proxied() }

// Proxied reports whether the provider's own tokens are accepted as bearer
// tokens (Tiled's ProxiedOIDCAuthenticator and its EntraAuthenticator).
func (k Kind) Proxied() bool { return k == KindProxiedOIDC || k == KindEntra }

// authenticatorKinds maps Tiled's class paths and our short names.
var authenticatorKinds = map[string]Kind{
	"tiled.authenticators:DictionaryAuthenticator":  KindDictionary,
	"tiled.authenticators:PAMAuthenticator":         KindPAM,
	"tiled.authenticators:OIDCAuthenticator":        KindOIDC,
	"tiled.authenticators:DummyAuthenticator":       KindDummy,
	"tiled.authenticators:ProxiedOIDCAuthenticator": KindProxiedOIDC,
	"tiled.authenticators:EntraAuthenticator":       KindEntra,
	"dictionary":   KindDictionary,
	"pam":          KindPAM,
	"oidc":         KindOIDC,
	"dummy":        KindDummy,
	"proxied_oidc": KindProxiedOIDC,
	"entra":        KindEntra,
}

// ParseKind resolves an authenticator as written in a config file.
func ParseKind(s string) (Kind, bool) {
	k, ok := authenticatorKinds[s]
	if !ok {
		k, ok = authenticatorKinds[strings.ToLower(s)]
		ok = ok && !strings.Contains(s, ":")
	}
	return k, ok
}

// Provider is one authentication.providers entry. Exactly one of the
// argument structs is set, per Kind (none for dummy).
type Provider struct {
	// Name is the "provider" key, used in URLs (/auth/provider/NAME/...).
	Name string `yaml:"provider"`
	// Authenticator is the value as written (a Tiled class path or a short
	// name); Kind is what it means.
	Authenticator       string          `yaml:"authenticator"`
	Kind                Kind            `yaml:"kind"`
	ConfirmationMessage string          `yaml:"confirmation_message"`
	Dictionary          *DictionaryArgs `yaml:"dictionary,omitempty"`
	PAM                 *PAMArgs        `yaml:"pam,omitempty"`
	OIDC                *OIDCArgs       `yaml:"oidc,omitempty"`
	Proxied             *ProxiedArgs    `yaml:"proxied,omitempty"`

	at origin
}

// ProxiedArgs are ProxiedOIDCAuthenticator's and EntraAuthenticator's
// arguments (tiled/authenticators.py, Tiled 0.2.16).
type ProxiedArgs struct {
	// Entra applies EntraAuthenticator's claims: principal id
	// uuid5(NAMESPACE_URL, "iss|sub"), identity id the user name.
	Entra bool `yaml:"entra"`
	// Audience must be among the token's aud.
	Audience     string `yaml:"audience"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// WellKnownURI is the discovery document; its issuer is expected.
	WellKnownURI string `yaml:"well_known_uri"`
	// DeviceFlowClientID is the client the Tiled Python client uses for
	// the device flow at the provider, advertised in the about document.
	DeviceFlowClientID string `yaml:"device_flow_client_id"`
	// Scopes every request must hold (Tiled's check_scopes), on top of the
	// route's own; with ScopesMap, its Tiled scopes are added.
	Scopes []string `yaml:"scopes"`
	// ScopesMap translates the provider's scopes (scp) into Tiled scopes.
	ScopesMap         map[string][]string `yaml:"scopes_map"`
	ExtraScopes       []string            `yaml:"extra_scopes,omitempty"`
	UserIDClaim       string              `yaml:"user_id_claim"`
	RedirectOnSuccess string              `yaml:"redirect_on_success,omitempty"`
	RedirectOnFailure string              `yaml:"redirect_on_failure,omitempty"`
}

// RequiredScopes is Tiled's ProxiedOIDCAuthenticator.scopes: the configured
// scopes and every Tiled scope scopes_map grants, sorted.
func (a *ProxiedArgs) RequiredScopes() []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range a.Scopes {
		add(s)
	}
	for _, list := range a.ScopesMap {
		for _, s := range list {
			add(s)
		}
	}
	slices.Sort(out)
	return out
}

// issuerHint is the issuer the well-known URI implies, for clash checks.
func (a *ProxiedArgs) issuerHint() string {
	return strings.TrimSuffix(a.WellKnownURI, "/.well-known/openid-configuration")
}

// DictionaryArgs are DictionaryAuthenticator's arguments.
type DictionaryArgs struct {
	UsersToPasswords map[string]Secret `yaml:"users_to_passwords"`
}

// Passwords returns users_to_passwords in clear, for the authenticator.
func (a *DictionaryArgs) Passwords() map[string]string {
	out := make(map[string]string, len(a.UsersToPasswords))
	for u, p := range a.UsersToPasswords {
		out[u] = p.Reveal()
	}
	return out
}

// PAMArgs are PAMAuthenticator's arguments.
type PAMArgs struct {
	// Service is the PAM service, "login" by default as in Tiled.
	Service string `yaml:"service"`
}

// OIDCArgs are OIDCAuthenticator's arguments. Either WellKnownURI is set
// (Tiled 0.2's form, endpoints and keys discovered), or TokenURI,
// AuthorizationEndpoint and PublicKeys are (seed 000's older form).
type OIDCArgs struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// Audience is checked against the ID token's aud; Tiled requires it,
	// the older form had none, so it defaults to ClientID.
	Audience              string           `yaml:"audience"`
	WellKnownURI          string           `yaml:"well_known_uri,omitempty"`
	TokenURI              string           `yaml:"token_uri,omitempty"`
	AuthorizationEndpoint string           `yaml:"authorization_endpoint,omitempty"`
	PublicKeys            []map[string]any `yaml:"public_keys,omitempty"`
	RedirectOnSuccess     string           `yaml:"redirect_on_success,omitempty"`
	RedirectOnFailure     string           `yaml:"redirect_on_failure,omitempty"`
	// UserIDClaim names the ID token claim used as the identity id.
	UserIDClaim string   `yaml:"user_id_claim"`
	ExtraScopes []string `yaml:"extra_scopes,omitempty"`
	// TokenEndpointAuthMethod (this server's, not Tiled's) is how the
	// client authenticates at the token endpoint: client_secret_basic,
	// client_secret_post or none; empty chooses from discovery.
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method,omitempty"`
}

// Token endpoint authentication methods an OIDC provider entry may name.
var tokenEndpointAuthMethods = []string{"client_secret_basic", "client_secret_post", "none"}

// Discovery reports whether endpoints and keys come from WellKnownURI.
func (a *OIDCArgs) Discovery() bool { return a.WellKnownURI != "" }

var providerNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (d *decoder) providers(n *yaml.Node, path string) []Provider {
	var out []Provider
	d.list(n, path, func(item *yaml.Node, p string, _ int) {
		// Keep a named provider even when its arguments are wrong, so that
		// checks on names (uniqueness, tiled_admins) still run and do not
		// report it as missing; the config is refused anyway.
		if pr, _ := d.provider(item, p); pr.Name != "" {
			out = append(out, pr)
		}
	})
	return out
}

func (d *decoder) provider(n *yaml.Node, path string) (Provider, bool) {
	f, ok := d.object(n, path, []string{"provider", "authenticator", "args"})
	if !ok {
		return Provider{}, false
	}
	good := d.require(f, "provider", "authenticator")
	pr := Provider{at: d.origin(f.node)}
	if v, p := f.get("provider"); v != nil {
		if s, ok := d.str(v, p); ok {
			// Tiled's schema: "Unique URL-friendly string"; it is a path
			// segment of /auth/provider/NAME/...
			if !providerNameRE.MatchString(s) || s == "." || s == ".." {
				d.add(v, p, "must be a URL-friendly name: letters, digits, '.', '_' or '-'")
				good = false
			}
			pr.Name = s
		} else {
			good = false
		}
	}
	v, p := f.get("authenticator")
	if v == nil {
		return pr, false
	}
	s, ok := d.str(v, p)
	if !ok {
		return pr, false
	}
	pr.Authenticator = s
	pr.Kind, ok = ParseKind(s)
	if !ok {
		d.add(v, p, "unsupported authenticator %q; this server implements tiled.authenticators:DictionaryAuthenticator, "+
			"PAMAuthenticator, OIDCAuthenticator, ProxiedOIDCAuthenticator, EntraAuthenticator and DummyAuthenticator "+
			"(or: dictionary, pam, oidc, proxied_oidc, entra, dummy)", s)
		return pr, false
	}
	args, argsPath := f.get("args")
	if !d.providerArgs(&pr, args, argsPath, f.node) {
		good = false
	}
	return pr, good
}

// Arguments per authenticator, from the constructors in
// tiled/authenticators.py (plus the older OIDC form of seed 000).
var argKeys = map[Kind][]string{
	KindDictionary: {"users_to_passwords", "confirmation_message"},
	KindPAM:        {"service", "confirmation_message"},
	KindDummy:      {"confirmation_message"},
	KindOIDC: {
		"audience", "client_id", "client_secret", "well_known_uri",
		"token_uri", "authorization_endpoint", "public_keys",
		"confirmation_message", "redirect_on_success", "redirect_on_failure",
		"user_id_claim", "extra_scopes", "device_flow_client_id", "token_endpoint_auth_method",
	},
	// ProxiedOIDCAuthenticator.__init__ and EntraAuthenticator.__init__.
	KindProxiedOIDC: {
		"audience", "client_id", "well_known_uri", "device_flow_client_id", "client_secret",
		"scopes", "scopes_map", "confirmation_message", "redirect_on_success", "redirect_on_failure",
		"user_id_claim",
	},
	KindEntra: {
		"audience", "client_id", "well_known_uri", "device_flow_client_id", "extra_scopes",
		"scopes_map", "confirmation_message", "client_secret", "redirect_on_success",
	},
}

func (d *decoder) providerArgs(pr *Provider, n *yaml.Node, path string, parent *yaml.Node) bool {
	var f fields
	if n != nil {
		var ok bool
		if f, ok = d.object(n, path, argKeys[pr.Kind]); !ok {
			return false
		}
	} else {
		// No args: the defaults, and any required argument is missing.
		f = fields{node: parent, path: path, vals: map[string]*yaml.Node{}}
	}
	d.setStr(f, "confirmation_message", &pr.ConfirmationMessage)
	switch pr.Kind {
	case KindDictionary:
		return d.dictionaryArgs(pr, f)
	case KindPAM:
		pr.PAM = &PAMArgs{Service: "login"}
		d.setStr(f, "service", &pr.PAM.Service)
		if pr.PAM.Service == "" {
			v, p := f.get("service")
			d.add(v, p, "must not be empty")
			return false
		}
	case KindOIDC:
		return d.oidcArgs(pr, f)
	case KindProxiedOIDC, KindEntra:
		return d.proxiedArgs(pr, f)
	}
	return true
}

func (d *decoder) proxiedArgs(pr *Provider, f fields) bool {
	a := &ProxiedArgs{Entra: pr.Kind == KindEntra, UserIDClaim: "sub", ScopesMap: map[string][]string{}}
	pr.Proxied = a
	// Required as Tiled's constructors require them (no defaults).
	good := d.require(f, "audience", "client_id", "well_known_uri", "device_flow_client_id")
	d.setStr(f, "audience", &a.Audience)
	d.setStr(f, "client_id", &a.ClientID)
	d.setStr(f, "device_flow_client_id", &a.DeviceFlowClientID)
	var secret string
	d.setStr(f, "client_secret", &secret)
	a.ClientSecret = Secret(secret)
	d.setStr(f, "user_id_claim", &a.UserIDClaim)
	for _, u := range []struct {
		key string
		dst *string
	}{
		{"well_known_uri", &a.WellKnownURI},
		{"redirect_on_success", &a.RedirectOnSuccess},
		{"redirect_on_failure", &a.RedirectOnFailure},
	} {
		if v, p := f.get(u.key); v != nil {
			if s, ok := d.str(v, p); ok && d.absoluteURL(v, p, s) {
				*u.dst = s
			} else {
				good = false
			}
		}
	}
	d.setStrList(f, "scopes", &a.Scopes)
	d.setStrList(f, "extra_scopes", &a.ExtraScopes)
	if v, p := f.get("scopes_map"); v != nil {
		good = d.scopesMap(v, p, a.ScopesMap) && good
	}
	return good
}

// scopesMap reads {provider scope: [Tiled scopes]}; the Tiled scopes must
// be ones this server knows, or the mapping would silently grant nothing.
func (d *decoder) scopesMap(n *yaml.Node, path string, dst map[string][]string) bool {
	n = d.visit(n, path)
	if n == nil {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.expected(n, path, "a mapping of provider scopes to lists of Tiled scopes")
		return false
	}
	good := true
	for _, p := range d.pairs(n, path, 0) {
		kp := join(path, p.key)
		list, ok := d.strList(p.valNode, kp)
		if !ok {
			good = false
			continue
		}
		for i, s := range list {
			if !slices.Contains(identity.AllScopes(), s) {
				d.add(d.peek(p.valNode), index(kp, i), "unknown Tiled scope %q", s)
				good = false
			}
		}
		dst[p.key] = list
	}
	return good
}

func (d *decoder) dictionaryArgs(pr *Provider, f fields) bool {
	pr.Dictionary = &DictionaryArgs{UsersToPasswords: map[string]Secret{}}
	if !d.require(f, "users_to_passwords") {
		return false
	}
	v, p := f.get("users_to_passwords")
	m, ok := d.strMap(v, p)
	for user, pw := range m {
		if pw == "" {
			// Tiled treats an empty password as "no such user".
			d.warn(v, join(p, user), "empty password: this user cannot log in")
		}
		pr.Dictionary.UsersToPasswords[user] = Secret(pw)
	}
	return ok
}

func (d *decoder) oidcArgs(pr *Provider, f fields) bool {
	a := &OIDCArgs{UserIDClaim: "sub"}
	pr.OIDC = a
	good := true
	if v, p := f.get("token_endpoint_auth_method"); v != nil {
		if s, ok := d.str(v, p); ok && contains(tokenEndpointAuthMethods, s) {
			a.TokenEndpointAuthMethod = s
		} else if ok {
			d.add(v, p, "must be one of %s", strings.Join(tokenEndpointAuthMethods, ", "))
			good = false
		}
	}
	if a.TokenEndpointAuthMethod == "none" {
		// A public client: PKCE alone proves the code is ours.
		good = d.require(f, "client_id")
		if v, p := f.get("client_secret"); v != nil {
			d.add(v, p, "must not be given with token_endpoint_auth_method none (a public client has no secret)")
			good = false
		}
	} else {
		good = d.require(f, "client_id", "client_secret") && good
	}
	d.setStr(f, "client_id", &a.ClientID)
	var secret string
	d.setStr(f, "client_secret", &secret)
	a.ClientSecret = Secret(secret)
	d.setStr(f, "audience", &a.Audience)
	if a.Audience == "" {
		a.Audience = a.ClientID
	}
	d.setStr(f, "user_id_claim", &a.UserIDClaim)
	for _, u := range []struct {
		key string
		dst *string
	}{
		{"well_known_uri", &a.WellKnownURI},
		{"token_uri", &a.TokenURI},
		{"authorization_endpoint", &a.AuthorizationEndpoint},
		{"redirect_on_success", &a.RedirectOnSuccess},
		{"redirect_on_failure", &a.RedirectOnFailure},
	} {
		if v, p := f.get(u.key); v != nil {
			if s, ok := d.str(v, p); ok && d.absoluteURL(v, p, s) {
				*u.dst = s
			} else {
				good = false
			}
		}
	}
	if v, p := f.get("extra_scopes"); v != nil {
		a.ExtraScopes, _ = d.strList(v, p)
	}
	if v, p := f.get("device_flow_client_id"); v != nil {
		// ProxiedOIDCAuthenticator's; the device flow here needs no
		// separate client.
		d.str(v, p)
		d.ignore(v, p)
	}
	if v, p := f.get("public_keys"); v != nil {
		a.PublicKeys = d.jwks(v, p)
	}
	legacy := []string{"token_uri", "authorization_endpoint", "public_keys"}
	var given []string
	for _, k := range legacy {
		if f.vals[k] != nil {
			given = append(given, k)
		}
	}
	switch {
	case f.vals["well_known_uri"] != nil && len(given) > 0:
		d.add(f.node, f.path, "give either well_known_uri or %s, not both", strings.Join(legacy, " + "))
		good = false
	case f.vals["well_known_uri"] == nil && len(given) == 0:
		d.add(f.node, join(f.path, "well_known_uri"), "is required (or the older token_uri + authorization_endpoint + public_keys)")
		good = false
	case f.vals["well_known_uri"] == nil:
		good = d.require(f, legacy...) && good
	}
	return good
}

func (d *decoder) absoluteURL(n *yaml.Node, path, s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.add(n, path, "must be an absolute http:// or https:// URL")
		return false
	}
	return true
}

// JWK members that hold private key material (RFC 7518 section 6): a
// public key list must not carry them.
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

func (d *decoder) jwks(n *yaml.Node, path string) []map[string]any {
	var out []map[string]any
	d.list(n, path, func(item *yaml.Node, p string, _ int) {
		m, ok := d.freeMap(item, p)
		if !ok {
			return
		}
		if kty, _ := m["kty"].(string); kty == "" {
			d.add(d.peek(item), join(p, "kty"), "is required (a JSON Web Key, RFC 7517)")
			return
		}
		for _, priv := range privateJWKMembers {
			if _, has := m[priv]; has {
				d.add(d.peek(item), join(p, priv), "private key material does not belong in public_keys")
				return
			}
		}
		out = append(out, m)
	})
	return out
}

func (d *decoder) admins(n *yaml.Node, path string) []Admin {
	var out []Admin
	d.list(n, path, func(item *yaml.Node, p string, _ int) {
		f, ok := d.object(item, p, []string{"provider", "id"})
		if !ok {
			return
		}
		a := Admin{at: d.origin(f.node)}
		d.require(f, "provider", "id")
		d.setStr(f, "provider", &a.Provider)
		d.setStr(f, "id", &a.ID)
		if a.Provider != "" && a.ID != "" {
			out = append(out, a)
		}
	})
	return out
}
