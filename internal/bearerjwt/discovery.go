package bearerjwt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Metadata is what this server reads of an OpenID Connect discovery
// document (OpenID Connect Discovery 1.0 section 3, RFC 8414, RFC 8628).
type Metadata struct {
	Issuer                      string   `json:"issuer"`
	JWKSURI                     string   `json:"jwks_uri"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint,omitempty"`
	EndSessionEndpoint          string   `json:"end_session_endpoint,omitempty"`
	SigningAlgorithms           []string `json:"id_token_signing_alg_values_supported,omitempty"`
}

// Discover fetches and checks the discovery document at wellKnown. When
// issuer is not empty the document must name it (trailing slashes aside,
// since providers differ on them); the document's own spelling is kept, as
// it is what tokens carry.
func Discover(ctx context.Context, client *http.Client, wellKnown, issuer string) (Metadata, error) {
	var m Metadata
	body, err := fetch(ctx, client, wellKnown)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("discovery document %s: %w", wellKnown, err)
	}
	if err := checkURL(m.Issuer); err != nil {
		return m, fmt.Errorf("discovery document %s: issuer: %w", wellKnown, err)
	}
	if err := checkURL(m.JWKSURI); err != nil {
		return m, fmt.Errorf("discovery document %s: jwks_uri: %w", wellKnown, err)
	}
	if issuer != "" && strings.TrimSuffix(m.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return m, fmt.Errorf("discovery document %s names issuer %q, not the configured %q", wellKnown, m.Issuer, issuer)
	}
	return m, nil
}

// fetch GETs a JSON document, bounded in size.
func fetch(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", u, resp.Status)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("fetch %s: larger than %d bytes", u, maxDocumentBytes)
	}
	return body, nil
}
