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
		// One spelling per token: the same bytes written another way are
		// not the token (the fuzzer found upper-case hex accepted).
		"upper-case session id":                    strings.ToUpper(p[0]) + "." + p[1] + "." + p[2],
		"one upper-case hex digit":                 upperFirstLetter(p[0]) + "." + p[1] + "." + p[2],
		"secret's last character's spare bits set": p[0] + "." + p[1] + "." + spareBits(p[2]),
	} {
		if _, err := ParseRefresh(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// upperFirstLetter upper-cases the first a-f of a hex string (a fresh
// UUID's 32 digits hold one but for a 1-in-2^32 chance; then it repeats a
// known one).
func upperFirstLetter(h string) string {
	if i := strings.IndexAny(h, "abcdef"); i >= 0 {
		return h[:i] + strings.ToUpper(h[i:i+1]) + h[i+1:]
	}
	return "A" + h[1:]
}

// spareBits rewrites the last character of an unpadded base64 encoding of
// 32 bytes so that its two unused low bits are set: it decodes to the same
// bytes unless decoding is strict.
func spareBits(b64 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, b64[len(b64)-1])
	return b64[:len(b64)-1] + string(alphabet[i|3])
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

// FuzzParseRefresh: what parses round-trips, and IssuedRefresh accepts a
// token exactly when its secret is the one this server derives for its
// session and generation (under any of its keys), never another.
func FuzzParseRefresh(f *testing.F) {
	k, _ := NewKeys([]string{"k", "old"})
	old, _ := NewKeys([]string{"old"})
	other, _ := NewKeys([]string{"someone-else"})
	sid := uuid.New()
	f.Add(k.Refresh(sid, 7).String())
	f.Add(old.Refresh(sid, 7).String())   // issued under the previous key
	f.Add(other.Refresh(sid, 7).String()) // well formed, not ours
	f.Add(k.Refresh(sid, 8).Secret)
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
		ours := tok.Secret == k.Refresh(tok.SessionID, tok.Generation).Secret ||
			tok.Secret == old.Refresh(tok.SessionID, tok.Generation).Secret
		if got := k.IssuedRefresh(tok); got != ours {
			t.Fatalf("IssuedRefresh(%q) = %v, want %v", s, got, ours)
		}
		if got, want := other.IssuedRefresh(tok), tok.Secret == other.Refresh(tok.SessionID, tok.Generation).Secret; got != want {
			t.Fatalf("another server's IssuedRefresh(%q) = %v, want %v", s, got, want)
		}
		if cur, ok := k.RefreshForHash(tok.SessionID, tok.Generation, tok.Hash()); ok != ours || (ok && cur.String() != s) {
			t.Fatalf("RefreshForHash(%q) = %q, %v; want it found exactly when ours", s, cur, ok)
		}
	})
}

// FuzzVerifyAccess signs fuzzer-chosen claims with a fuzzer-chosen key and
// algorithm, so that its assertions are reached: a token verifies exactly
// when it is HS256 under one of our keys, of type access, for a principal
// uuid, and unexpired; then it reads back what was signed. A final raw
// string checks that arbitrary input never panics or verifies.
func FuzzVerifyAccess(f *testing.F) {
	k, _ := NewKeys([]string{"k", "old"})
	other, _ := NewKeys([]string{"someone-else"})
	tok, _ := k.SignAccess(sampleClaims(), t0, t0.Add(time.Hour))
	f.Add("access", strings.ReplaceAll(uuid.NewString(), "-", ""), int64(60), uint8(0), uint8(0), tok)
	f.Add("refresh", uuid.NewString(), int64(60), uint8(0), uint8(0), "a.b.c")
	f.Add("access", "not-a-uuid", int64(60), uint8(1), uint8(0), "eyJhbGciOiJub25lIn0.e30.")
	f.Add("access", uuid.NewString(), int64(-1), uint8(0), uint8(2), "")
	f.Add("access", uuid.NewString(), int64(0), uint8(0), uint8(3), "")
	f.Fuzz(func(t *testing.T, typ, sub string, expIn int64, keyChoice, algChoice uint8, raw string) {
		if _, err := k.VerifyAccess(raw, t0); err == nil && raw != tok {
			// Only a token we signed verifies; the fuzzer cannot forge one.
			if c, _ := k.VerifyAccess(raw, t0); c.Type != "access" {
				t.Fatalf("accepted non-access token %q", raw)
			}
		}
		expIn = expIn % (1 << 32)
		claims := AccessClaims{Type: typ, Subject: sub, SubjectType: "user", IssuedAt: t0.Unix(), ExpiresAt: t0.Unix() + expIn}
		signers := [][]byte{k.keys[0], k.keys[1], other.keys[0]}
		key := signers[int(keyChoice)%len(signers)]
		methods := []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512, jwt.SigningMethodNone}
		method := methods[int(algChoice)%len(methods)]
		var signKey any = key
		if method == jwt.SigningMethodNone {
			signKey = jwt.UnsafeAllowNoneSignatureType
		}
		s, err := jwt.NewWithClaims(method, claims).SignedString(signKey)
		if err != nil {
			t.Fatal(err)
		}
		_, uerr := uuid.Parse(sub)
		ours := keyChoice%3 != 2 && method == jwt.SigningMethodHS256
		valid := ours && typ == "access" && uerr == nil && len(s) <= 16<<10
		got, err := k.VerifyAccess(s, t0)
		switch {
		case valid && expIn > 0:
			if err != nil || got.Subject != sub || got.Type != "access" || got.ExpiresAt != claims.ExpiresAt {
				t.Fatalf("a genuine token (sub %q, exp in %ds) did not verify: %v, %+v", sub, expIn, err, got)
			}
		case ours && len(s) <= 16<<10 && expIn <= 0:
			if !errors.Is(err, ErrExpired) {
				t.Fatalf("an expired genuine token (exp in %ds): %v, want ErrExpired", expIn, err)
			}
		default:
			if err == nil {
				t.Fatalf("verified a token it must refuse (type %q, sub %q, key %d, alg %s)", typ, sub, keyChoice%3, method.Alg())
			}
		}
	})
}

// TestAccessTokenHeader: every access token starts with the one header
// authn recognises without decoding (authn.ownHeader); were golang-jwt to
// encode it differently, bearer requests would take the slower path.
func TestAccessTokenHeader(t *testing.T) {
	k, err := NewKeys([]string{"header-test-key"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.SignAccess(sampleClaims(), t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."; !strings.HasPrefix(tok, want) {
		t.Fatalf("access token header %q, want %q", tok[:strings.IndexByte(tok, '.')+1], want)
	}
}
