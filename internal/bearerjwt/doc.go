// Package bearerjwt validates bearer JWTs minted by an external OpenID
// Connect issuer, for the server acting as an OAuth 2.0 resource server
// (seed 001's [auth] block, Tiled's ProxiedOIDCAuthenticator and
// EntraAuthenticator). It owns one job: given a token string, say whether
// the issuer vouches for it and what it says (subject, scopes, tenant).
// Turning a token into a principal is the caller's business.
//
// What it checks, in order (RFC 7519, RFC 8725, RFC 9068):
//
//   - the header: alg must be on the configured allow-list, which may hold
//     only RS*, PS* and ES* algorithms ("none" and HS* are refused when the
//     validator is built, so algorithm confusion cannot be configured in);
//   - the signature, with the issuer's key named by kid (every key of the
//     right type when the token names none), taken from the JWKS the
//     discovery document points at;
//   - iss equal to the issuer, aud containing the audience (unless none is
//     configured), exp required, nbf and iat honoured, all three with the
//     configured leeway;
//   - the tenant claim (an RFC 6901 JSON pointer into the claims) against
//     the allowed tenants, when configured.
//
// Keys are fetched at Start, refreshed in the background every
// RefreshInterval (at least a minute) until the context given to Start
// ends, and kept when a refresh fails, so a provider outage does not
// become ours. A token naming an unknown kid triggers a refetch, at most
// one per MinRefetchInterval for the whole validator, shared by every
// concurrent request (singleflight), so a provider's key rotation needs no
// restart and a flood of forged kids cannot hammer the provider.
//
// Discovery and the JWKS are fetched here rather than with go-oidc's
// RemoteKeySet: that set refetches on every unknown kid with no lower bound
// on the interval, offers no background refresh, and hides fetch failures
// in error text; the resource server needs all three under its control.
// Token parsing and signature checks are golang-jwt/jwt/v5's, with an
// explicit method allow-list.
package bearerjwt
