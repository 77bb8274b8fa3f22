package tokens

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var t0 = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

func mustKeys(t *testing.T, ks ...string) Keys {
	t.Helper()
	k, err := NewKeys(ks)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sampleClaims() AccessClaims {
	return AccessClaims{
		Subject: strings.ReplaceAll(uuid.NewString(), "-", ""), SubjectType: "user",
		Scopes: []string{"read:metadata"}, Identities: []Identity{{ID: "alice", IDP: "toy"}},
		SessionID: uuid.NewString(),
	}
}

func TestAccessTokenVerify(t *testing.T) {
	signer := mustKeys(t, "new-key", "old-key")
	oldSigner := mustKeys(t, "old-key")
	other := mustKeys(t, "someone-else")
	c := sampleClaims()
	good, err := signer.SignAccess(c, t0, t0.Add(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	byOldKey, _ := oldSigner.SignAccess(c, t0, t0.Add(15*time.Minute))
	byOther, _ := other.SignAccess(c, t0, t0.Add(15*time.Minute))

	header := base64.RawURLEncoding.EncodeToString
	parts := strings.Split(good, ".")
	algNone := header([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	hs384 := jwt.NewWithClaims(jwt.SigningMethodHS384, c)
	hs384Str, _ := hs384.SignedString([]byte("new-key"))
	refreshType := c
	refreshType.Type = "refresh"
	refreshType.ExpiresAt = t0.Add(time.Hour).Unix()
	refreshTok := jwt.NewWithClaims(jwt.SigningMethodHS256, refreshType)
	refreshStr, _ := refreshTok.SignedString([]byte("new-key"))

	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"valid", good, t0.Add(time.Minute), nil},
		{"signed by a retired key still verifies", byOldKey, t0.Add(time.Minute), nil},
		{"expired", good, t0.Add(16 * time.Minute), ErrExpired},
		{"exactly at expiry is expired", good, t0.Add(15 * time.Minute), ErrExpired},
		{"unknown key", byOther, t0, ErrInvalid},
		{"alg none", algNone, t0, ErrInvalid},
		{"HS384 not allowed", hs384Str, t0, ErrInvalid},
		{"type is not access", refreshStr, t0, ErrInvalid},
		{"garbage", "abc.def.ghi", t0, ErrInvalid},
		{"not a JWT", "abc", t0, ErrMalformed},
		{"tampered payload", parts[0] + "." + header([]byte(`{"sub":"x","type":"access","exp":9999999999}`)) + "." + parts[2], t0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := signer.VerifyAccess(tt.token, tt.at)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && (got.Subject != c.Subject || got.SessionID != c.SessionID || got.Type != "access") {
				t.Fatalf("claims = %+v", got)
			}
		})
	}
}

func TestRefreshTokenRoundTrip(t *testing.T) {
	k := mustKeys(t, "k1")
	sid := uuid.New()
	tok := k.Refresh(sid, 3)
	parsed, err := ParseRefresh(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if parsed != tok {
		t.Fatalf("parsed %+v, want %+v", parsed, tok)
	}
	if !k.IssuedRefresh(parsed) {
		t.Fatal("own token not recognised")
	}
	if k.Refresh(sid, 4).Secret == tok.Secret || k.Refresh(uuid.New(), 3).Secret == tok.Secret {
		t.Fatal("secrets must differ across generations and sessions")
	}
	forged := parsed
	forged.Secret = k.Refresh(uuid.New(), 3).Secret
	if k.IssuedRefresh(forged) {
		t.Fatal("forged token accepted")
	}
	// After a key rotation the old generation's token is still found by hash.
	rotated := mustKeys(t, "k2", "k1")
	got, ok := rotated.RefreshForHash(sid, 3, tok.Hash())
	if !ok || got != tok {
		t.Fatalf("RefreshForHash after rotation = %+v, %v", got, ok)
	}
	if _, ok := rotated.RefreshForHash(sid, 4, tok.Hash()); ok {
		t.Fatal("wrong generation matched")
	}
}

func TestParseRefreshRejects(t *testing.T) {
	k := mustKeys(t, "k")
	good := k.Refresh(uuid.New(), 1).String()
	p := strings.Split(good, ".")
	for name, s := range map[string]string{
		"empty":           "",
		"jwt-like":        "abc",
		"two parts":       p[0] + "." + p[1],
		"bad hex":         strings.Repeat("z", 32) + "." + p[1] + "." + p[2],
		"negative gen":    p[0] + ".-1." + p[2],
		"padded gen":      p[0] + ".01." + p[2],
		"short secret":    p[0] + "." + p[1] + ".abc",
		"too long":        good + strings.Repeat("a", 300),
		"bad base64":      p[0] + "." + p[1] + "." + strings.Repeat("!", 43),
		"extra separator": good + ".x",
	} {
		if _, err := ParseRefresh(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	secret, first, hash := NewAPIKey()
	if len(secret) != 72 || first != secret[:8] {
		t.Fatalf("secret %q first %q", secret, first)
	}
	f2, h2, err := ParseAPIKey(secret)
	if err != nil || f2 != first || string(h2) != string(hash) {
		t.Fatalf("ParseAPIKey = %q %x %v", f2, h2, err)
	}
	for _, bad := range []string{"", "not-hex", strings.Repeat("g", 72), secret[:70]} {
		if _, _, err := ParseAPIKey(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseAPIKey(%q) err = %v", bad, err)
		}
	}
}

func TestNewKeysRejectsEmpty(t *testing.T) {
	if _, err := NewKeys(nil); err == nil {
		t.Fatal("no keys accepted")
	}
	if _, err := NewKeys([]string{"a", ""}); err == nil {
		t.Fatal("empty key accepted")
	}
}

func FuzzParseRefresh(f *testing.F) {
	k, _ := NewKeys([]string{"k"})
	f.Add(k.Refresh(uuid.New(), 7).String())
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseRefresh(s)
		if err != nil {
			return
		}
		if tok.String() != s {
			t.Fatalf("round trip %q -> %q", s, tok.String())
		}
		_ = k.IssuedRefresh(tok)
	})
}

func FuzzVerifyAccess(f *testing.F) {
	k, _ := NewKeys([]string{"k"})
	tok, _ := k.SignAccess(sampleClaims(), t0, t0.Add(time.Hour))
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := k.VerifyAccess(s, t0)
		if err == nil && c.Type != "access" {
			t.Fatalf("accepted non-access token %q", s)
		}
	})
}
