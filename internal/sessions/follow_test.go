package sessions_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/sessions"
)

func TestRevocationPayloadRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 8, 0, 0, 123456000, time.UTC)
	for _, e := range []sessions.Revocation{
		{Seq: 1, Kind: sessions.RevokedSession, SessionID: uuid.New(), RevokedAt: at},
		{Seq: 1 << 40, Kind: sessions.DeletedAPIKey, PrincipalID: uuid.New(), APIKeyID: uuid.New(), RevokedAt: at},
		{Seq: 7, Kind: sessions.DeletedPrincipal, PrincipalID: uuid.New(), RevokedAt: at},
	} {
		got, err := sessions.ParseRevocationPayload(e.Payload())
		if err != nil || got != e {
			t.Fatalf("round trip of %+v: %+v, %v", e, got, err)
		}
	}
	for _, bad := range []string{"", "1 session", "0 session " + uuid.Nil.String() + " " + uuid.Nil.String() + " " + uuid.Nil.String() + " 1",
		"x session " + uuid.Nil.String() + " " + uuid.Nil.String() + " " + uuid.Nil.String() + " 1",
		"1 session nope " + uuid.Nil.String() + " " + uuid.Nil.String() + " 1"} {
		if _, err := sessions.ParseRevocationPayload(bad); err == nil {
			t.Errorf("payload %q: no error", bad)
		}
	}
}

func FuzzRevocationPayload(f *testing.F) {
	f.Add((sessions.Revocation{Seq: 3, Kind: sessions.RevokedSession, SessionID: uuid.New(), RevokedAt: time.Now()}).Payload())
	f.Add("1 x y z w 2")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := sessions.ParseRevocationPayload(s)
		if err != nil {
			return
		}
		again, err := sessions.ParseRevocationPayload(e.Payload())
		if err != nil || again != e {
			t.Fatalf("%q parsed to %+v, which does not round-trip: %+v, %v", s, e, again, err)
		}
	})
}
