package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/store"
)

// testAuditEvents: events are stored with every field, read back oldest
// first from a time on, and need a name and a time. They name principals
// and sessions without foreign keys: an event outlives them.
func testAuditEvents(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	pid, sid := uuid.New(), uuid.New()
	full := audit.Event{
		At: at(time.Minute), Name: audit.Login, Outcome: audit.Success, PrincipalID: pid, Provider: "toy",
		IdentityID: "alice", ClientAddr: "2001:db8::1", SessionID: sid, RequestID: "0123abcd",
		Detail: map[string]any{"by": "password", "n": 3.0},
	}
	ok(t, st.AppendAuditEvent(ctx, full), "append an event of a principal and session that do not exist")
	ok(t, st.AppendAuditEvent(ctx, audit.Event{At: at(0), Name: audit.Login, Outcome: audit.Failure, IdentityID: "mallory"}), "append a sparse event")
	ok(t, st.AppendAuditEvent(ctx, audit.Event{At: at(2 * time.Minute), Name: audit.SessionRevoke}), "append")
	if err := st.AppendAuditEvent(ctx, audit.Event{At: at(0)}); err == nil {
		t.Fatal("append an event without a name: no error")
	}
	if err := st.AppendAuditEvent(ctx, audit.Event{Name: audit.Login}); err == nil {
		t.Fatal("append an event without a time: no error")
	}

	all, err := st.AuditEvents(ctx, time.Time{}, 10)
	ok(t, err, "audit events")
	equal(t, len(all), 3, "events")
	equal(t, []string{all[0].IdentityID, all[1].IdentityID, all[2].Name}, []string{"mallory", "alice", audit.SessionRevoke}, "oldest first")
	sparse := all[0]
	equal(t, [2]any{sparse.PrincipalID, sparse.SessionID}, [2]any{uuid.Nil, uuid.Nil}, "absent ids read back as zero")
	equal(t, len(sparse.Detail), 0, "absent detail reads back empty")
	got := all[1]
	sameTime(t, got.At, full.At, "time")
	got.At, got.ID = full.At, 0
	equal(t, fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", full), "every field read back")
	// Ids follow insertion: alice's event, then mallory's, then the revoke.
	if !(all[1].ID < all[0].ID && all[0].ID < all[2].ID) {
		t.Fatalf("ids %d %d %d do not follow the order of insertion", all[1].ID, all[0].ID, all[2].ID)
	}

	from, err := st.AuditEvents(ctx, at(time.Minute), 10)
	ok(t, err, "audit events from a time")
	equal(t, len(from), 2, "events at or after the minute")
	limited, err := st.AuditEvents(ctx, time.Time{}, 1)
	ok(t, err, "audit events with a limit")
	equal(t, limited[0].IdentityID, "mallory", "the limit keeps the oldest")
	if _, err := st.AuditEvents(ctx, time.Time{}, 0); err == nil {
		t.Fatal("audit events with limit 0: no error")
	}
}
