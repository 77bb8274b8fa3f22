package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/audit"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/storeerr"
)

func testCascade(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	p := newPrincipal(t, st, t0, identity.RoleUser, identity.RoleAdmin)
	keep := newPrincipal(t, st, t0, identity.RoleUser)
	ok(t, st.AddIdentity(ctx, p.ID, "toy", "alice"), "add identity")
	ok(t, st.AddIdentity(ctx, keep.ID, "toy", "bob"), "add identity")
	ok(t, st.CreateAPIKey(ctx, newKey(p.ID, "aaaaaaaa", 0, nil), 0), "create key")
	ok(t, st.CreateAPIKey(ctx, newKey(keep.ID, "aaaaaaaa", 0, nil), 0), "create key")
	s1, s2 := newSession(t, st, p.ID), newSession(t, st, p.ID)
	keptSession := newSession(t, st, keep.ID)
	approved := newPending(t, st, "toy", "CASC-ADE1")
	ok(t, st.ApprovePendingDevice(ctx, "toy", "CASC-ADE1", s1.ID, at(time.Minute)), "approve")
	unapproved := newPending(t, st, "toy", "CASC-ADE2")

	ok(t, st.DeletePrincipal(ctx, p.ID), "delete principal")

	for _, s := range []sessions.Session{s1, s2} {
		_, err := st.GetSession(ctx, s.ID)
		isErr(t, err, storeerr.ErrNotFound, "session of a deleted principal")
	}
	_, err := st.TakePendingDevice(ctx, "toy", approved.DeviceCodeHash, at(time.Minute))
	isErr(t, err, storeerr.ErrNotFound, "pending login approved with a deleted session")
	_, err = st.TakePendingDevice(ctx, "toy", unapproved.DeviceCodeHash, at(time.Minute))
	ok(t, err, "an unapproved pending login belongs to nobody yet")
	keys, err := st.APIKeysByFirstEight(ctx, "aaaaaaaa", t0)
	ok(t, err, "keys by first eight")
	equal(t, len(keys), 1, "only the other principal's key is left")
	equal(t, keys[0].PrincipalID, keep.ID, "the other principal's key")
	_, err = st.GetSession(ctx, keptSession.ID)
	ok(t, err, "the other principal's session")

	// Re-creating the same id shows nothing of the old principal survived.
	again, err := st.CreatePrincipal(ctx, identity.Principal{ID: p.ID, Type: identity.TypeUser, CreatedAt: t0})
	ok(t, err, "re-create the deleted id")
	equal(t, len(again.Roles)+len(again.Identities), 0, "roles and identities of the deleted principal")
	keys, err = st.ListAPIKeys(ctx, p.ID)
	ok(t, err, "list keys")
	equal(t, len(keys), 0, "keys of the deleted principal")
	list, err := st.ListSessions(ctx, p.ID)
	ok(t, err, "list sessions")
	equal(t, len(list), 0, "sessions of the deleted principal")
	ok(t, st.AddIdentity(ctx, keep.ID, "toy", "alice"), "the deleted principal's identity is free")
}

func testGC(t *testing.T, st store.Store) {
	ctx := ctxFor(t)
	day := func(n float64) time.Time { return at(time.Duration(n * float64(24*time.Hour))) }
	now, retain := day(30), 7*24*time.Hour // sessions and the log are kept until day 23 has passed
	p := newPrincipal(t, st, t0)

	type fixture struct {
		name                  string
		expires, refreshUntil *time.Time
		revoked               *time.Time
		gone                  bool
	}
	fixtures := []fixture{
		{name: "active", refreshUntil: ptr(day(31))},
		{name: "revoked before the cutoff", refreshUntil: ptr(day(31)), revoked: ptr(day(20)), gone: true},
		{name: "revoked at the cutoff", refreshUntil: ptr(day(31)), revoked: ptr(day(23)), gone: true},
		{name: "revoked inside retain", refreshUntil: ptr(day(31)), revoked: ptr(day(25))},
		{name: "refresh expired before the cutoff", refreshUntil: ptr(day(22)), gone: true},
		{name: "refresh expired inside retain", refreshUntil: ptr(day(29))},
		{name: "hard expired before the cutoff", refreshUntil: ptr(day(31)), expires: ptr(day(10)), gone: true},
		{name: "hard expired inside retain", refreshUntil: ptr(day(31)), expires: ptr(day(24))},
	}
	ids := make([]uuid.UUID, len(fixtures))
	for i, f := range fixtures {
		ids[i] = newSession(t, st, p.ID, func(s *sessions.Session) {
			s.RefreshExpiresAt, s.ExpiresAt = *f.refreshUntil, f.expires
		}).ID
		if f.revoked != nil {
			ok(t, st.RevokeSession(ctx, ids[i], "gc fixture", *f.revoked), "revoke")
		}
	}
	// An unexpired pending login approved with a session GC deletes goes
	// with it (by cascade, not counted as a pending login).
	linked := sessions.PendingDevice{ID: uuid.New(), Provider: "toy", DeviceCodeHash: hash("linked"), UserCode: "LINK-ED00",
		CreatedAt: day(29), ExpiresAt: day(31)}
	ok(t, st.CreatePendingDevice(ctx, linked), "create pending")
	ok(t, st.ApprovePendingDevice(ctx, "toy", "LINK-ED00", ids[1], day(29)), "approve")

	pending := func(code string, expires time.Time) sessions.PendingDevice {
		d := sessions.PendingDevice{ID: uuid.New(), Provider: "toy", DeviceCodeHash: hash(code), UserCode: code,
			CreatedAt: day(29), ExpiresAt: expires}
		ok(t, st.CreatePendingDevice(ctx, d), "create pending")
		return d
	}
	pendingGone, pendingKept := pending("GONE-0000", now), pending("KEPT-0000", day(31))

	state := func(expires time.Time) sessions.AuthState {
		s := newAuthState("toy", 0)
		s.CreatedAt, s.ExpiresAt = day(29), expires
		ok(t, st.PutAuthState(ctx, s), "put auth state")
		return s
	}
	stateGone, stateKept := state(now), state(day(31))

	_, err := st.TakeLoginAttempt(ctx, "closed", now.Add(-10*time.Minute), 10*time.Minute, 10)
	ok(t, err, "take login attempt")
	_, err = st.TakeLoginAttempt(ctx, "open", now.Add(-time.Minute), 10*time.Minute, 10)
	ok(t, err, "take login attempt")

	for i, exp := range []*time.Time{ptr(now), ptr(day(1)), ptr(day(31)), nil} {
		ok(t, st.CreateAPIKey(ctx, newKey(p.ID, []string{"00000000", "11111111", "22222222", "33333333"}[i], time.Duration(i)*time.Second, exp), 0), "create key")
	}

	// Audit events: five older than the audit retention (a batch of 2
	// takes three statements), one exactly that old and one newer, kept.
	const auditRetain = 90 * 24 * time.Hour
	for i, age := range []time.Duration{auditRetain + 5*time.Second, auditRetain + 4*time.Second, auditRetain + 3*time.Second,
		auditRetain + 2*time.Second, auditRetain + time.Microsecond, auditRetain, time.Hour} {
		ok(t, st.AppendAuditEvent(ctx, audit.Event{At: now.Add(-age), Name: audit.Login, Outcome: audit.Success,
			Detail: map[string]any{"i": i}}), "append audit event")
	}

	_, err = st.GC(ctx, now, sessions.GCPolicy{Retain: retain, Batch: 0})
	if err == nil {
		t.Fatal("gc with batch 0: no error")
	}
	_, err = st.GC(ctx, now, sessions.GCPolicy{Retain: retain, AuditRetain: -time.Second, Batch: 10})
	if err == nil {
		t.Fatal("gc with a negative audit retention: no error")
	}
	res, err := st.GC(ctx, now, sessions.GCPolicy{Retain: retain, Batch: 2}) // no audit retention: kept for ever
	ok(t, err, "gc")
	equal(t, res, sessions.GCResult{Sessions: 4, PendingDevices: 1, AuthStates: 1, LoginAttempts: 1, APIKeys: 2, Revocations: 2}, "deleted")
	events, err := st.AuditEvents(ctx, time.Time{}, 100)
	ok(t, err, "audit events")
	equal(t, len(events), 7, "audit events without a retention")
	res, err = st.GC(ctx, now, sessions.GCPolicy{Retain: retain, AuditRetain: auditRetain, Batch: 2})
	ok(t, err, "gc of audit events")
	equal(t, res, sessions.GCResult{AuditEvents: 5}, "audit events older than the retention, in batches")
	events, err = st.AuditEvents(ctx, time.Time{}, 100)
	ok(t, err, "audit events")
	equal(t, len(events), 2, "audit events left")
	sameTime(t, events[0].At, now.Add(-auditRetain), "the event exactly as old as the retention is kept")

	for i, f := range fixtures {
		_, err := st.GetSession(ctx, ids[i])
		if f.gone {
			isErr(t, err, storeerr.ErrNotFound, "collected session: "+f.name)
		} else {
			ok(t, err, "kept session: "+f.name)
		}
	}
	log, err := st.RevocationsSince(ctx, 0, 10)
	ok(t, err, "revocation log")
	equal(t, len(log), 1, "log entries left")
	equal(t, log[0].SessionID, ids[3], "the entry inside retain")

	_, err = st.TakePendingDevice(ctx, "toy", linked.DeviceCodeHash, day(29))
	isErr(t, err, storeerr.ErrNotFound, "pending login of a collected session")
	_, err = st.TakePendingDevice(ctx, "toy", pendingGone.DeviceCodeHash, day(29))
	isErr(t, err, storeerr.ErrNotFound, "collected pending login")
	_, err = st.TakePendingDevice(ctx, "toy", pendingKept.DeviceCodeHash, day(29))
	ok(t, err, "kept pending login")
	_, err = st.TakeAuthState(ctx, stateGone.StateHash, day(29))
	isErr(t, err, storeerr.ErrNotFound, "collected auth state")
	_, err = st.TakeAuthState(ctx, stateKept.StateHash, day(29))
	ok(t, err, "kept auth state")
	a, err := st.TakeLoginAttempt(ctx, "open", now, 10*time.Minute, 10)
	ok(t, err, "take login attempt")
	equal(t, a.Count, 2, "open window kept")
	a, err = st.TakeLoginAttempt(ctx, "closed", now.Add(-time.Minute), 10*time.Minute, 10)
	ok(t, err, "take login attempt")
	equal(t, a.Count, 1, "the collected counter starts over")
	keys, err := st.ListAPIKeys(ctx, p.ID)
	ok(t, err, "list keys")
	equal(t, []string{keys[0].FirstEight, keys[1].FirstEight}, []string{"22222222", "33333333"}, "kept keys")

	res, err = st.GC(ctx, now, sessions.GCPolicy{Retain: retain, AuditRetain: auditRetain, Batch: 100})
	ok(t, err, "second gc")
	equal(t, res, sessions.GCResult{}, "second pass deletes nothing")
}
