package tokens

import (
	"testing"

	"github.com/google/uuid"
)

// TestGoldenTokens pins the bytes of both tokens this server mints: a
// refresh token is re-derived from its session and generation, so a change
// of derivation would end every session at an upgrade, and replicas of two
// versions must mint the same access token for the same claims.
func TestGoldenTokens(t *testing.T) {
	k := mustKeys(t, "golden-key", "older-key")
	sid := uuid.MustParse("0b6f3d0e-9c1a-4f4e-8d52-3f0c6a1e2b7d")
	if got, want := k.Refresh(sid, 41).String(), goldenRefresh; got != want {
		t.Errorf("refresh token of generation 41:\n got %s\nwant %s", got, want)
	}
	access, err := k.SignAccess(AccessClaims{Subject: "0b6f3d0e9c1a4f4e8d523f0c6a1e2b7d", SubjectType: "user",
		Scopes: []string{"read:data", "read:metadata"}, Identities: []Identity{{ID: "alice", IDP: "toy"}},
		SessionID: sid.String()}, t0, t0.Add(15*60e9))
	if err != nil {
		t.Fatal(err)
	}
	if access != goldenAccess {
		t.Errorf("access token:\n got %s\nwant %s", access, goldenAccess)
	}
}

const (
	goldenRefresh = "0b6f3d0e9c1a4f4e8d523f0c6a1e2b7d.41.vtceRRXXZGg6KYxMNlPylcwFjdcMLRsZcu9l3ydrcXg"
	goldenAccess  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwYjZmM2QwZTljMWE0ZjRlOGQ1MjNmMGM2YTFlMmI3ZCIsInN1Yl90eXAiOiJ1c2VyIiwic2NwIjpbInJlYWQ6ZGF0YSIsInJlYWQ6bWV0YWRhdGEiXSwic3RhdGUiOnt9LCJpZHMiOlt7ImlkIjoiYWxpY2UiLCJpZHAiOiJ0b3kifV0sInNpZCI6IjBiNmYzZDBlLTljMWEtNGY0ZS04ZDUyLTNmMGM2YTFlMmI3ZCIsInR5cGUiOiJhY2Nlc3MiLCJpYXQiOjE3OTU1OTM2MDAsImV4cCI6MTc5NTU5NDUwMH0.3OuFIMkzrjmh1I7GjNlNfkrQ1iICMivVPVtKmHLRlG8"
)
