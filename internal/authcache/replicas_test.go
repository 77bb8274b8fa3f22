package authcache_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/apikeys"
	"github.com/tiledgo/server/internal/authcache"
	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/testing/tcpproxy"
	"github.com/tiledgo/server/internal/tokens"
)

// replica is one server's authentication layer over its own connections
// to the shared database, as cmd/server assembles it.
type replica struct {
	name  string
	st    store.Store
	cache *authcache.Cache
	mgr   *sessions.Manager
	keys  *apikeys.Service
	proxy *tcpproxy.Proxy // between this replica and the database; nil if direct
}

var testKeys, _ = tokens.NewKeys([]string{"replica-test-key"})

func openStore(t *testing.T, uri string) store.Store {
	t.Helper()
	opts := store.DefaultOptions()
	opts.URI, opts.Migrate, opts.PoolSize, opts.MaxOverflow = uri, true, 2, 4
	opts.StatementTimeout = 2 * time.Second
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newReplica starts a replica whose cache follows st.
func newReplica(t *testing.T, name string, st store.Store, proxy *tcpproxy.Proxy) *replica {
	t.Helper()
	cache, err := authcache.New(authcache.Config{AccessTokenMaxAge: 15 * time.Minute,
		Logger: slog.New(slog.DiscardHandler).With("replica", name)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cache.Follow(ctx, st) }()
	t.Cleanup(func() { cancel(); <-done })
	r := &replica{name: name, st: st, cache: cache, proxy: proxy,
		mgr: &sessions.Manager{Sessions: st, Identities: st, Keys: testKeys, Config: sessions.DefaultConfig(),
			Now: time.Now, Logger: slog.New(slog.DiscardHandler), Revocations: cache, Principals: cache},
		keys: &apikeys.Service{Identities: st, Now: time.Now, Logger: slog.New(slog.DiscardHandler), Cache: cache},
	}
	eventually(t, name+" in sync at start", cache.InSync)
	return r
}

// threeReplicas: A and B connect directly, C through a proxy that tests cut.
func threeReplicas(t *testing.T) []*replica {
	t.Helper()
	uri := pgtest.NewDatabase(t)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	a := newReplica(t, "A", openStore(t, uri), nil)
	b := newReplica(t, "B", openStore(t, uri), nil)
	c := newReplica(t, "C", openStore(t, u.String()), proxy)
	return []*replica{a, b, c}
}

// eventually polls cond until it holds, for at most 15 seconds. It waits for
// something asynchronous (a notification, a reconnection); it times nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 15s", what)
		}
	}
}

func login(t *testing.T, r *replica, name string, roles ...string) (identity.Principal, sessions.Tokens) {
	t.Helper()
	ctx := context.Background()
	p, _, err := r.st.LoginIdentity(ctx, "toy", name+"-"+uuid.NewString(), roles, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.mgr.Start(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, tok
}

func refused(r *replica, token string) bool {
	_, err := r.mgr.VerifyAccessToken(context.Background(), token)
	return errors.Is(err, authn.ErrSessionEnded)
}

func mustAccept(t *testing.T, r *replica, token string) {
	t.Helper()
	if _, err := r.mgr.VerifyAccessToken(context.Background(), token); err != nil {
		t.Fatalf("replica %s refuses a live token: %v", r.name, err)
	}
}

// TestRevokedTokenRefusedOnEveryReplica: a revocation on A is refused by A
// at once (its own write) and by B and C from their memory once the
// notification arrives, without reading the session.
func TestRevokedTokenRefusedOnEveryReplica(t *testing.T) {
	t.Parallel()
	rs := threeReplicas(t)
	a := rs[0]
	p, tok := login(t, a, "alice", identity.RoleUser)
	for _, r := range rs {
		mustAccept(t, r, tok.AccessToken)
	}
	if err := a.mgr.Revoke(context.Background(), &authn.Caller{PrincipalID: p.ID}, tok.SessionID); err != nil {
		t.Fatal(err)
	}
	if !refused(a, tok.AccessToken) {
		t.Fatal("A accepts a token of the session it has just revoked")
	}
	for _, r := range rs {
		eventually(t, "replica "+r.name+" refuses the revoked token", func() bool { return refused(r, tok.AccessToken) })
		if revoked, known := r.cache.Revoked(tok.SessionID, p.ID); !revoked || !known {
			t.Fatalf("replica %s: cache says revoked=%v known=%v, want it to hold the revocation", r.name, revoked, known)
		}
	}
	// A session not revoked is still accepted everywhere, from memory.
	_, other := login(t, a, "bob", identity.RoleUser)
	for _, r := range rs {
		mustAccept(t, r, other.AccessToken)
	}
}

// TestDeletedPrincipalRefusedOnEveryReplica: deleting a principal (which
// cascades its sessions away) refuses its tokens everywhere.
func TestDeletedPrincipalRefusedOnEveryReplica(t *testing.T) {
	t.Parallel()
	rs := threeReplicas(t)
	p, tok := login(t, rs[1], "carol", identity.RoleUser)
	for _, r := range rs {
		mustAccept(t, r, tok.AccessToken)
	}
	if err := rs[1].st.DeletePrincipal(context.Background(), p.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		eventually(t, "replica "+r.name+" refuses the deleted principal's token", func() bool { return refused(r, tok.AccessToken) })
	}
}

// TestRevocationsMissedWhileDisconnected: what is revoked while a replica's
// listener is away is refused once it is back, because the cache is rebuilt
// from the log; meanwhile the replica is not in sync. Both ways a connection
// fails: reset (the listener errors out) and blackholed (silent: only the
// heartbeat notices).
func TestRevocationsMissedWhileDisconnected(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"reset", "blackhole"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			rs := threeReplicas(t)
			a, c := rs[0], rs[2]
			p, tok := login(t, a, "dave", identity.RoleUser)
			mustAccept(t, c, tok.AccessToken)
			switch mode {
			case "reset":
				c.proxy.Blackhole() // hold the reconnection until the revocation is in
				c.proxy.Reset()
			case "blackhole":
				c.proxy.Blackhole()
				eventually(t, "C notices its silent listener", func() bool { return !c.cache.InSync() })
			}
			if err := a.mgr.Revoke(context.Background(), &authn.Caller{PrincipalID: p.ID}, tok.SessionID); err != nil {
				t.Fatal(err)
			}
			if c.cache.InSync() {
				t.Fatal("C says it is in sync while its listener cannot reach the database")
			}
			if revoked, known := c.cache.Revoked(tok.SessionID, p.ID); revoked || known {
				t.Fatalf("C out of sync answers revoked=%v known=%v for a session it cannot know about; want unknown", revoked, known)
			}
			c.proxy.Heal()
			eventually(t, "C back in sync", c.cache.InSync)
			if revoked, known := c.cache.Revoked(tok.SessionID, p.ID); !revoked || !known {
				t.Fatalf("C after reconnecting: revoked=%v known=%v; want the revocation made while it was away", revoked, known)
			}
			if !refused(c, tok.AccessToken) {
				t.Fatal("C accepts a token revoked while its listener was away")
			}
			// And it follows new revocations again.
			p2, tok2 := login(t, a, "erin", identity.RoleUser)
			mustAccept(t, c, tok2.AccessToken)
			if err := a.mgr.Revoke(context.Background(), &authn.Caller{PrincipalID: p2.ID}, tok2.SessionID); err != nil {
				t.Fatal(err)
			}
			eventually(t, "C refuses a token revoked after it came back", func() bool {
				revoked, known := c.cache.Revoked(tok2.SessionID, p2.ID)
				return revoked && known
			})
		})
	}
}

// TestOutOfSyncReadsTheDatabase: a replica whose cache is not in sync (it
// never was: no feed) asks the database, and so refuses a session revoked
// elsewhere although its memory knows nothing of it.
func TestOutOfSyncReadsTheDatabase(t *testing.T) {
	t.Parallel()
	uri := pgtest.NewDatabase(t)
	a := newReplica(t, "A", openStore(t, uri), nil)
	st := openStore(t, uri)
	cache, err := authcache.New(authcache.Config{AccessTokenMaxAge: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	lone := &replica{name: "unsynced", st: st, cache: cache, mgr: &sessions.Manager{Sessions: st, Identities: st,
		Keys: testKeys, Config: sessions.DefaultConfig(), Now: time.Now, Logger: slog.New(slog.DiscardHandler), Revocations: cache}}
	p, tok := login(t, a, "frank", identity.RoleUser)
	mustAccept(t, lone, tok.AccessToken)
	if err := a.st.RevokeSession(context.Background(), tok.SessionID, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if revoked, known := cache.Revoked(tok.SessionID, p.ID); revoked || known {
		t.Fatalf("a cache that never synced: revoked=%v known=%v, want unknown", revoked, known)
	}
	if !refused(lone, tok.AccessToken) {
		t.Fatal("an out-of-sync replica accepts a revoked session: it must read the database")
	}
}

func issueKey(t *testing.T, r *replica, p identity.Principal, scopes []string) string {
	t.Helper()
	k, err := r.keys.Issue(context.Background(), p, apikeys.Grant{Scopes: identity.ScopesOfRoles(p.Roles)}, apikeys.Request{Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

func verifyKey(r *replica, secret string) (*authn.Caller, error) {
	return r.keys.VerifyAPIKey(context.Background(), secret)
}

// TestDeletedKeyRefusedOnEveryReplica: a key each replica has cached is
// refused everywhere once deleted.
func TestDeletedKeyRefusedOnEveryReplica(t *testing.T) {
	t.Parallel()
	rs := threeReplicas(t)
	p, _ := login(t, rs[0], "gina", identity.RoleUser)
	secret := issueKey(t, rs[0], p, nil)
	_, hash, _ := tokens.ParseAPIKey(secret)
	for _, r := range rs {
		if _, err := verifyKey(r, secret); err != nil {
			t.Fatalf("replica %s: %v", r.name, err)
		}
		if _, ok := r.cache.Key([32]byte(hash)); !ok {
			t.Fatalf("replica %s did not cache a verified key", r.name)
		}
	}
	if err := rs[0].st.DeleteAPIKey(context.Background(), p.ID, secret[:8]); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		eventually(t, "replica "+r.name+" refuses the deleted key", func() bool {
			_, err := verifyKey(r, secret)
			return errors.Is(err, authn.ErrInvalidAPIKey)
		})
	}
}

// TestRoleChangeSeenByCachedKeys: an inheriting key's scopes follow its
// owner's roles on every replica, including one whose listener dropped
// while the role changed.
func TestRoleChangeSeenByCachedKeys(t *testing.T) {
	t.Parallel()
	rs := threeReplicas(t)
	a, c := rs[0], rs[2]
	p, _ := login(t, a, "hank", identity.RoleUser)
	secret := issueKey(t, a, p, nil) // inherit
	admin := func(r *replica) bool {
		caller, err := verifyKey(r, secret)
		return err == nil && caller.Admin && caller.Scopes.Has(identity.ScopeWritePrincipals)
	}
	for _, r := range rs {
		if admin(r) {
			t.Fatalf("replica %s: a user's key has admin scopes", r.name)
		}
	}
	if err := a.st.GrantRole(context.Background(), p.ID, identity.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		eventually(t, "replica "+r.name+" sees the granted role", func() bool { return admin(r) })
	}

	c.proxy.Blackhole()
	c.proxy.Reset()
	eventually(t, "C out of sync", func() bool { return !c.cache.InSync() })
	if err := a.st.RevokeRole(context.Background(), p.ID, identity.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	c.proxy.Heal()
	eventually(t, "C back in sync", c.cache.InSync)
	if admin(c) {
		t.Fatal("C keeps a role revoked while its listener was away")
	}
	for _, r := range rs {
		eventually(t, "replica "+r.name+" sees the revoked role", func() bool {
			caller, err := verifyKey(r, secret)
			return err == nil && !caller.Admin
		})
	}
}

// TestInProcessFeed: on SQLite the cache is updated in process, before the
// write returns.
func TestInProcessFeed(t *testing.T) {
	t.Parallel()
	st := openStore(t, "")
	r := newReplica(t, "sqlite", st, nil)
	p, tok := login(t, r, "ivy", identity.RoleUser)
	secret := issueKey(t, r, p, nil)
	if _, err := verifyKey(r, secret); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSession(context.Background(), tok.SessionID, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if revoked, known := r.cache.Revoked(tok.SessionID, p.ID); !revoked || !known {
		t.Fatalf("after the write returned: revoked=%v known=%v", revoked, known)
	}
	if err := st.DeleteAPIKey(context.Background(), p.ID, secret[:8]); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyKey(r, secret); !errors.Is(err, authn.ErrInvalidAPIKey) {
		t.Fatalf("deleted key: %v, want ErrInvalidAPIKey", err)
	}
}

// scopesAfterRefresh refreshes tok on r and returns the new tokens and
// the scopes their access token carries.
func scopesAfterRefresh(t *testing.T, r *replica, tok sessions.Tokens) (sessions.Tokens, identity.ScopeSet) {
	t.Helper()
	next, err := r.mgr.Refresh(context.Background(), tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh on %s: %v", r.name, err)
	}
	caller, err := r.mgr.VerifyAccessToken(context.Background(), next.AccessToken)
	if err != nil {
		t.Fatalf("verify on %s: %v", r.name, err)
	}
	return next, caller.Scopes
}

// TestRoleChangeSeenByRefresh: a refresh takes the principal from the
// replica's memory, yet a role granted on another replica is in the very
// next refresh everywhere, whether or not the notification has arrived:
// the rotation says when the log has moved past what the cache applied.
func TestRoleChangeSeenByRefresh(t *testing.T) {
	t.Parallel()
	rs := threeReplicas(t)
	a, b := rs[0], rs[1]
	p, tok := login(t, a, "ida", identity.RoleUser)
	tok, scopes := scopesAfterRefresh(t, b, tok)
	if scopes.Has(identity.ScopeWritePrincipals) {
		t.Fatal("a user's refreshed token has admin scopes")
	}
	hits := b.cache.Stats().PrincipalHits
	tok, _ = scopesAfterRefresh(t, b, tok)
	if b.cache.Stats().PrincipalHits != hits+1 {
		t.Fatal("the second refresh on B did not take the principal from memory")
	}

	if err := a.st.GrantRole(context.Background(), p.ID, identity.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	// At once, on every replica (the notification may not have come yet).
	for _, r := range rs {
		if tok, scopes = scopesAfterRefresh(t, r, tok); !scopes.Has(identity.ScopeWritePrincipals) {
			t.Fatalf("replica %s: the refresh right after a role grant lacks its scopes", r.name)
		}
	}
	// And once the notification has come and the cache answers again.
	for _, r := range rs {
		eventually(t, "replica "+r.name+" has applied the grant", func() bool {
			cur, ok := r.cache.Applied()
			ahead, err := r.st.RevocationsSince(context.Background(), cur, 1)
			return ok && err == nil && len(ahead) == 0
		})
	}
	if err := a.st.RevokeRole(context.Background(), p.ID, identity.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		eventually(t, "replica "+r.name+" has applied the revocation", func() bool {
			cur, ok := r.cache.Applied()
			ahead, err := r.st.RevocationsSince(context.Background(), cur, 1)
			return ok && err == nil && len(ahead) == 0
		})
		if tok, scopes = scopesAfterRefresh(t, r, tok); scopes.Has(identity.ScopeWritePrincipals) {
			t.Fatalf("replica %s: a refresh after the role was revoked keeps its scopes", r.name)
		}
	}
}

// TestRefreshTrustsNoCacheBehindTheLog: a replica whose cache is in sync
// but has not heard of a change (its feed is slow) still refreshes with the
// change, because the rotation reports the log ahead of the cache; once
// the cache has applied the change, it answers from memory again.
func TestRefreshTrustsNoCacheBehindTheLog(t *testing.T) {
	t.Parallel()
	st := openStore(t, pgtest.NewDatabase(t))
	cache, err := authcache.New(authcache.Config{AccessTokenMaxAge: 15 * time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// In sync, with no feed: it learns of changes only when told to.
	if err := cache.Resync(ctx, st); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: "slow", st: st, cache: cache,
		mgr: &sessions.Manager{Sessions: st, Identities: st, Keys: testKeys, Config: sessions.DefaultConfig(),
			Now: time.Now, Logger: slog.New(slog.DiscardHandler), Revocations: cache, Principals: cache}}
	p, tok := login(t, r, "jo", identity.RoleUser)
	tok, _ = scopesAfterRefresh(t, r, tok)
	if _, ok := cache.Principal(p.ID); !ok {
		t.Fatal("a refreshed principal is not remembered")
	}

	if err := st.GrantRole(ctx, p.ID, identity.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	tok, scopes := scopesAfterRefresh(t, r, tok)
	if !scopes.Has(identity.ScopeWritePrincipals) {
		t.Fatal("a refresh answered from a cache that had not applied a role grant")
	}
	if err := cache.CatchUp(ctx, st); err != nil {
		t.Fatal(err)
	}
	// Applying the grant dropped what was read meanwhile; the next refresh
	// reads it once more, and the one after answers from memory.
	for i := range 2 {
		hits := cache.Stats().PrincipalHits
		tok, scopes = scopesAfterRefresh(t, r, tok)
		if !scopes.Has(identity.ScopeWritePrincipals) {
			t.Fatal("a refresh after catching up lost the granted role")
		}
		if got := cache.Stats().PrincipalHits - hits; got != uint64(i) {
			t.Fatalf("refresh %d after catching up: %d principals from memory, want %d", i+1, got, i)
		}
	}
}
