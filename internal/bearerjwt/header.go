package bearerjwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// header is the part of a JWS header (RFC 7515 section 4) read before any
// key is looked up.
type header struct {
	Alg string `json:"alg"`
	Kid any    `json:"kid"`
	// Crit lists extensions the token says must be understood (RFC 7515
	// section 4.1.11); this server understands none, so any is refused.
	Crit any `json:"crit"`
}

// parseHeader reads the header of a compact JWS, refusing shapes that no
// issuer produces: not three parts, a header that is not a JSON object, an
// alg that is not a string, a kid that is not a non-empty string.
func parseHeader(raw string) (alg, kid string, err error) {
	first, rest, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return "", "", errors.New("not a compact JWS (three dot-separated parts)")
	}
	b, err := base64.RawURLEncoding.DecodeString(first)
	if err != nil {
		return "", "", errors.New("header is not base64url")
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return "", "", errors.New("header is not a JSON object")
	}
	if h.Alg == "" {
		return "", "", errors.New("header has no alg")
	}
	if h.Crit != nil {
		return "", "", errors.New("header has crit extensions, which are not supported")
	}
	if h.Kid != nil {
		s, ok := h.Kid.(string)
		if !ok || s == "" {
			return "", "", errors.New("kid is not a non-empty string")
		}
		kid = s
	}
	return h.Alg, kid, nil
}
