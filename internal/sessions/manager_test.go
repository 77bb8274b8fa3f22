package sessions_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store"
	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/tokens"
)

// clock is a settable time source: expiry is tested by moving it, never by sleeping.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }

type env struct {
	m   *sessions.Manager
	st  store.Store
	clk *clock
	p   identity.Principal
}

// backends runs a test against every store backend.
func backends(t *testing.T, test func(t *testing.T, newEnv func(cfg sessions.Config) *env)) {
	for _, b := range []struct{ name, uri string }{{"memory", ""}, {"postgres", "pg"}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			uri := b.uri
			if uri == "pg" {
				uri = pgtest.NewDatabase(t)
			}
			test(t, func(cfg sessions.Config) *env {
				ctx := context.Background()
				opts := store.DefaultOptions()
				opts.URI, opts.Migrate, opts.PoolSize, opts.MaxOverflow = uri, true, 2, 8
				st, err := store.Open(ctx, opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				keys, _ := tokens.NewKeys([]string{"test-key"})
				clk := newClock()
				m := &sessions.Manager{Sessions: st, Identities: st, Keys: keys, Config: cfg, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)}
				p, _, err := st.LoginIdentity(ctx, "toy", "alice-"+uuid.NewString(), []string{identity.RoleUser}, clk.Now())
				if err != nil {
					t.Fatal(err)
				}
				return &env{m: m, st: st, clk: clk, p: p}
			})
		})
	}
}

func cfg() sessions.Config {
	c := sessions.DefaultConfig()
	c.SessionMaxAge = 0
	return c
}

func TestLoginRefreshRotates(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		ctx := context.Background()
		t0, err := e.m.Start(ctx, e.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if t0.ExpiresIn != 900 || t0.RefreshTokenExpiresIn != 7*24*3600 {
			t.Fatalf("lifetimes %d %d", t0.ExpiresIn, t0.RefreshTokenExpiresIn)
		}
		c, err := e.m.VerifyAccessToken(ctx, t0.AccessToken)
		if err != nil || c.PrincipalID != e.p.ID || c.SessionID != t0.SessionID || !c.Scopes.Has(identity.ScopeReadData) {
			t.Fatalf("verify: %+v %v", c, err)
		}
		e.clk.Advance(time.Hour)
		t1, err := e.m.Refresh(ctx, t0.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if t1.RefreshToken == t0.RefreshToken || t1.SessionID != t0.SessionID {
			t.Fatal("refresh did not rotate on the same session")
		}
		// Sliding: the inactivity deadline moved with the refresh.
		s, _ := e.st.GetSession(ctx, t0.SessionID)
		if want := e.clk.Now().Add(7 * 24 * time.Hour); !s.RefreshExpiresAt.Equal(want) || s.Generation != 1 {
			t.Fatalf("refresh_expires_at %v want %v, generation %d", s.RefreshExpiresAt, want, s.Generation)
		}
	})
}

func TestRefreshGraceAndReuse(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		ctx := context.Background()
		t0, _ := e.m.Start(ctx, e.p, nil)
		t1, err := e.m.Refresh(ctx, t0.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		// A racing refresh with the same token inside the grace window gets
		// the very token the winner got: both end on the same session.
		e.clk.Advance(5 * time.Second)
		late, err := e.m.Refresh(ctx, t0.RefreshToken)
		if err != nil {
			t.Fatalf("refresh inside grace: %v", err)
		}
		if late.RefreshToken != t1.RefreshToken || late.SessionID != t1.SessionID {
			t.Fatal("grace refresh did not converge on the winner's token")
		}
		// The winner's token still works afterwards.
		t2, err := e.m.Refresh(ctx, t1.RefreshToken)
		if err != nil {
			t.Fatalf("winner's next refresh: %v", err)
		}
		// Reusing an old token after the window revokes the whole session.
		e.clk.Advance(time.Minute)
		if _, err := e.m.Refresh(ctx, t0.RefreshToken); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("reuse after grace: %v", err)
		}
		if _, err := e.m.Refresh(ctx, t2.RefreshToken); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("current token after reuse detection: %v", err)
		}
		if _, err := e.m.VerifyAccessToken(ctx, t2.AccessToken); !errors.Is(err, authn.ErrSessionEnded) {
			t.Fatalf("access token after reuse detection: %v", err)
		}
	})
}

func TestRefreshRace(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		ctx := context.Background()
		t0, _ := e.m.Start(ctx, e.p, nil)
		const n = 20
		var wg sync.WaitGroup
		got := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tk, err := e.m.Refresh(ctx, t0.RefreshToken)
				got[i], errs[i] = tk.RefreshToken, err
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("racer %d: %v", i, errs[i])
			}
			if got[i] != got[0] {
				t.Fatalf("racers ended on different tokens")
			}
		}
		s, _ := e.st.GetSession(ctx, t0.SessionID)
		if s.Generation != 1 || s.RevokedAt != nil {
			t.Fatalf("generation %d revoked %v: want exactly one rotation", s.Generation, s.RevokedAt)
		}
	})
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func() sessions.Config
		advance []time.Duration // refresh after each
		wantErr bool
	}{
		{"active within max inactive", cfg, []time.Duration{6 * 24 * time.Hour}, false},
		{"inactive too long", cfg, []time.Duration{7*24*time.Hour + time.Second}, true},
		{"exactly at max inactive is expired", cfg, []time.Duration{7 * 24 * time.Hour}, true},
		{"sliding keeps an active session alive", cfg, []time.Duration{6 * 24 * time.Hour, 6 * 24 * time.Hour, 6 * 24 * time.Hour}, false},
		{"session max age caps sliding", func() sessions.Config {
			c := cfg()
			c.SessionMaxAge = 10 * 24 * time.Hour
			return c
		}, []time.Duration{6 * 24 * time.Hour, 5 * 24 * time.Hour}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
				e := newEnv(tt.cfg())
				ctx := context.Background()
				tk, _ := e.m.Start(ctx, e.p, nil)
				var err error
				for _, d := range tt.advance {
					e.clk.Advance(d)
					var next sessions.Tokens
					next, err = e.m.Refresh(ctx, tk.RefreshToken)
					if err != nil {
						break
					}
					tk = next
				}
				if (err != nil) != tt.wantErr {
					t.Fatalf("err = %v, want error %v", err, tt.wantErr)
				}
				if err != nil && !errors.Is(err, sessions.ErrEnded) {
					t.Fatalf("err = %v, want ErrEnded", err)
				}
			})
		})
	}
}

func TestAccessTokenLifetime(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		c := cfg()
		c.SessionMaxAge = 10 * time.Minute
		e := newEnv(c)
		ctx := context.Background()
		tk, _ := e.m.Start(ctx, e.p, nil)
		// An access token never outlives its session.
		if tk.ExpiresIn != 600 {
			t.Fatalf("expires_in %d, want 600", tk.ExpiresIn)
		}
		// Verified once, the token is remembered; that never stretches its
		// life: accepted up to its expiry, refused at the instant itself.
		if _, err := e.m.VerifyAccessToken(ctx, tk.AccessToken); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(10*time.Minute - time.Microsecond)
		if _, err := e.m.VerifyAccessToken(ctx, tk.AccessToken); err != nil {
			t.Fatalf("a microsecond before expiry: %v", err)
		}
		e.clk.Advance(time.Microsecond)
		if _, err := e.m.VerifyAccessToken(ctx, tk.AccessToken); !errors.Is(err, authn.ErrExpiredToken) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestRememberedTokenStillRevocable: a token remembered as verified is
// still refused once its session is revoked, and a copy of the caller the
// remembered one gives cannot change what the next request sees.
func TestRememberedTokenStillRevocable(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		ctx := context.Background()
		tk, _ := e.m.Start(ctx, e.p, nil)
		c1, err := e.m.VerifyAccessToken(ctx, tk.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		for s := range c1.Scopes {
			delete(c1.Scopes, s)
		}
		c2, err := e.m.VerifyAccessToken(ctx, tk.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if len(c2.Scopes) == 0 || c2.SessionID != tk.SessionID {
			t.Fatalf("second caller %+v: scopes or session lost", c2)
		}
		if err := e.st.RevokeSession(ctx, tk.SessionID, "test", e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.VerifyAccessToken(ctx, tk.AccessToken); !errors.Is(err, authn.ErrSessionEnded) {
			t.Fatalf("remembered token of a revoked session: %v, want ErrSessionEnded", err)
		}
	})
}

func TestRevoke(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		ctx := context.Background()
		a, _ := e.m.Start(ctx, e.p, nil)
		b, _ := e.m.Start(ctx, e.p, nil)
		owner := &authn.Caller{Kind: authn.Session, PrincipalID: e.p.ID}
		stranger := &authn.Caller{Kind: authn.Session, PrincipalID: uuid.New()}
		if err := e.m.Revoke(ctx, stranger, a.SessionID); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("stranger revoked: %v", err)
		}
		if err := e.m.Revoke(ctx, owner, a.SessionID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.VerifyAccessToken(ctx, a.AccessToken); !errors.Is(err, authn.ErrSessionEnded) {
			t.Fatalf("revoked access token: %v", err)
		}
		if _, err := e.m.Refresh(ctx, a.RefreshToken); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("revoked refresh: %v", err)
		}
		if _, err := e.m.RevokeByRefreshToken(ctx, b.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Refresh(ctx, b.RefreshToken); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("refresh after revoke by token: %v", err)
		}
		if _, err := e.m.RevokeByRefreshToken(ctx, "garbage"); !errors.Is(err, sessions.ErrMalformed) {
			t.Fatalf("garbage: %v", err)
		}
		admin := &authn.Caller{Kind: authn.Session, PrincipalID: uuid.New(), Admin: true}
		c, _ := e.m.Start(ctx, e.p, nil)
		if err := e.m.Revoke(ctx, admin, c.SessionID); err != nil {
			t.Fatalf("admin revoke: %v", err)
		}
	})
}

func TestSessionLimit(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		c := cfg()
		c.MaxSessions = 3
		e := newEnv(c)
		ctx := context.Background()
		for range 3 {
			if _, err := e.m.Start(ctx, e.p, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.m.Start(ctx, e.p, nil); !errors.Is(err, sessions.ErrTooManySessions) {
			t.Fatalf("4th session: %v", err)
		}
	})
}

func TestMalformedRefresh(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		for _, tok := range []string{"", "abc", "a.b.c"} {
			if _, err := e.m.Refresh(context.Background(), tok); !errors.Is(err, sessions.ErrMalformed) {
				t.Errorf("%q: %v", tok, err)
			}
		}
		// Well formed, unknown session: ended, not malformed (Tiled's message).
		keys, _ := tokens.NewKeys([]string{"test-key"})
		if _, err := e.m.Refresh(context.Background(), keys.Refresh(uuid.New(), 0).String()); !errors.Is(err, sessions.ErrEnded) {
			t.Errorf("unknown session: %v", err)
		}
	})
}

// TestRefreshGraceEdge: the previous token is handed the current one at
// exactly the end of the grace window, and one microsecond later it is
// reuse, which revokes the session.
func TestRefreshGraceEdge(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		for _, tc := range []struct {
			name    string
			after   time.Duration
			revoked bool
		}{
			{"inside", 10*time.Second - time.Microsecond, false},
			{"at the edge", 10 * time.Second, false},
			{"one microsecond after", 10*time.Second + time.Microsecond, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := cfg()
				c.Grace = 10 * time.Second
				e := newEnv(c)
				ctx := context.Background()
				t0, _ := e.m.Start(ctx, e.p, nil)
				t1, err := e.m.Refresh(ctx, t0.RefreshToken)
				if err != nil {
					t.Fatal(err)
				}
				e.clk.Advance(tc.after)
				late, err := e.m.Refresh(ctx, t0.RefreshToken)
				s, _ := e.st.GetSession(ctx, t0.SessionID)
				if tc.revoked {
					if !errors.Is(err, sessions.ErrEnded) || s.RevokedAt == nil {
						t.Fatalf("previous token %s after rotation: %v, revoked_at %v; want the session revoked", tc.after, err, s.RevokedAt)
					}
					return
				}
				if err != nil || late.RefreshToken != t1.RefreshToken || s.RevokedAt != nil {
					t.Fatalf("previous token %s after rotation: %v (same token: %v), revoked_at %v; want the winner's token",
						tc.after, err, late.RefreshToken == t1.RefreshToken, s.RevokedAt)
				}
			})
		}
	})
}

// answerLost is a store whose rotations commit but whose answer never
// arrives: the database stalled past the statement bound, or the connection
// dropped after the commit. The request answers an error.
type answerLost struct {
	sessions.Store
	lose atomic.Bool
}

func (a *answerLost) RotateRefresh(ctx context.Context, r sessions.Rotation) (sessions.Rotated, error) {
	rot, err := a.Store.RotateRefresh(ctx, r)
	if err == nil && a.lose.Load() {
		return sessions.Rotated{}, errors.New("statement timed out (the commit happened anyway)")
	}
	return rot, err
}

// TestRefreshAfterLostAnswer: a refresh that answered an error never leaves
// its token unusable, however long the client takes to retry; once the
// chain moves on, the old token is reuse again.
func TestRefreshAfterLostAnswer(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		lost := &answerLost{Store: e.st}
		e.m.Sessions = lost
		ctx := context.Background()
		t0, _ := e.m.Start(ctx, e.p, nil)

		lost.lose.Store(true)
		if _, err := e.m.Refresh(ctx, t0.RefreshToken); err == nil {
			t.Fatal("the refresh whose answer was lost succeeded")
		}
		lost.lose.Store(false)
		if s, _ := e.st.GetSession(ctx, t0.SessionID); s.Generation != 1 || !s.RotationPending {
			t.Fatalf("after the lost answer: generation %d, pending %v; want the rotation committed and pending", s.Generation, s.RotationPending)
		}

		// Far past the grace window: the client's retry with the token it
		// still holds continues the chain.
		e.clk.Advance(time.Hour)
		t1, err := e.m.Refresh(ctx, t0.RefreshToken)
		if err != nil {
			t.Fatalf("retry an hour after the lost answer: %v", err)
		}
		s, _ := e.st.GetSession(ctx, t0.SessionID)
		if s.Generation != 1 || s.RotationPending || s.RevokedAt != nil {
			t.Fatalf("after the retry: generation %d, pending %v, revoked %v; want generation 1 confirmed", s.Generation, s.RotationPending, s.RevokedAt)
		}
		if _, err := e.m.VerifyAccessToken(ctx, t1.AccessToken); err != nil {
			t.Fatalf("access token of the retry: %v", err)
		}

		// The rotation is confirmed now: the old token past the window is reuse.
		e.clk.Advance(time.Hour)
		if _, err := e.m.Refresh(ctx, t0.RefreshToken); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("old token after the confirmed hand-back: %v", err)
		}
		if _, err := e.m.Refresh(ctx, t1.RefreshToken); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("current token after reuse detection: %v", err)
		}
	})
}

// TestConfirmationsBatched: with a ConfirmBatcher, rotations are pending
// until a flush writes them; a superseded rotation is left alone.
func TestConfirmationsBatched(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		b := &sessions.ConfirmBatcher{Store: e.st, MaxBatch: 2}
		e.m.Confirmations = b
		ctx := context.Background()
		var ids []uuid.UUID
		for range 3 {
			tk, _ := e.m.Start(ctx, e.p, nil)
			if _, err := e.m.Refresh(ctx, tk.RefreshToken); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, tk.SessionID)
		}
		for _, id := range ids {
			if s, _ := e.st.GetSession(ctx, id); !s.RotationPending {
				t.Fatalf("session %s confirmed before any flush", id)
			}
		}
		if n := b.Flush(ctx); n != 2 {
			t.Fatalf("first flush wrote %d, want a batch of 2", n)
		}
		if n := b.Flush(ctx); n != 1 {
			t.Fatalf("second flush wrote %d, want the last one", n)
		}
		for _, id := range ids {
			if s, _ := e.st.GetSession(ctx, id); s.RotationPending {
				t.Fatalf("session %s still pending after the flushes", id)
			}
		}
		if n := b.Flush(ctx); n != 0 {
			t.Fatalf("empty flush wrote %d", n)
		}
	})
}

// failingConfirms fails ConfirmRotations until told otherwise.
type failingConfirms struct {
	sessions.Store
	fail  atomic.Bool
	calls atomic.Int32
}

func (f *failingConfirms) ConfirmRotations(ctx context.Context, refs []sessions.RotationRef) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errors.New("database unreachable")
	}
	return f.Store.ConfirmRotations(ctx, refs)
}

// TestConfirmBatcherRetries: a failed flush keeps its batch for the next
// one; beyond MaxPending the oldest are dropped (they stay pending, the
// lenient state), and Run writes what is left when it stops.
func TestConfirmBatcherRetries(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		fc := &failingConfirms{Store: e.st}
		b2 := &sessions.ConfirmBatcher{Store: fc, MaxBatch: 10, MaxPending: 2, Interval: time.Hour}
		e.m.Confirmations = b2
		ctx := context.Background()
		var pending []uuid.UUID
		for range 3 {
			tk, _ := e.m.Start(ctx, e.p, nil)
			if _, err := e.m.Refresh(ctx, tk.RefreshToken); err != nil {
				t.Fatal(err)
			}
			pending = append(pending, tk.SessionID)
		}
		fc.fail.Store(true)
		if n := b2.Flush(ctx); n != 0 || fc.calls.Load() != 1 {
			t.Fatalf("flush against a failing store wrote %d in %d calls", n, fc.calls.Load())
		}
		fc.fail.Store(false)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); b2.Run(runCtx) }()
		stop()
		<-done
		// MaxPending 2: the oldest of the three was dropped and stays pending.
		for i, id := range pending {
			s, _ := e.st.GetSession(ctx, id)
			if want := i == 0; s.RotationPending != want {
				t.Errorf("session %d pending = %v, want %v", i, s.RotationPending, want)
			}
		}
	})
}

// TestForgedRefreshTokens: a well-formed refresh token for a real session,
// made with another server's key (anyone who learned a session id can make
// one) or with its generation edited, neither revokes the session nor
// refreshes it, nor counts as reuse.
func TestForgedRefreshTokens(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		ctx := context.Background()
		t0, _ := e.m.Start(ctx, e.p, nil)
		t1, err := e.m.Refresh(ctx, t0.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := tokens.NewKeys([]string{"another-servers-key"})
		e.clk.Advance(time.Hour) // past the grace window: a genuine old token here would be reuse
		for _, gen := range []int64{0, 1, 2} {
			forged := other.Refresh(t0.SessionID, gen).String()
			if _, err := e.m.RevokeByRefreshToken(ctx, forged); !errors.Is(err, sessions.ErrMalformed) {
				t.Fatalf("revoke with a forged generation-%d token: %v, want ErrMalformed", gen, err)
			}
			if _, err := e.m.Refresh(ctx, forged); !errors.Is(err, sessions.ErrMalformed) {
				t.Fatalf("refresh with a forged generation-%d token: %v, want ErrMalformed", gen, err)
			}
		}
		// The current secret under an edited generation is not a token this
		// server issued: it must not rotate the session (a rotation would
		// put the session on a generation whose token nobody holds).
		cur, err := tokens.ParseRefresh(t1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		for _, gen := range []int64{cur.Generation + 1, cur.Generation + 7, 0} {
			edited := tokens.RefreshToken{SessionID: cur.SessionID, Generation: gen, Secret: cur.Secret}
			if _, err := e.m.Refresh(ctx, edited.String()); !errors.Is(err, sessions.ErrMalformed) {
				t.Fatalf("refresh with the current secret under generation %d: %v, want ErrMalformed", gen, err)
			}
		}
		s, _ := e.st.GetSession(ctx, t0.SessionID)
		if s.RevokedAt != nil || s.Generation != 1 {
			t.Fatalf("after forgeries: revoked %v, generation %d; want the session untouched", s.RevokedAt, s.Generation)
		}
		if _, err := e.m.Refresh(ctx, t1.RefreshToken); err != nil {
			t.Fatalf("the genuine token after forgeries: %v", err)
		}
	})
}

// outcomes records what RefreshObserver is told.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) Refresh(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, outcome)
}

// TestRefreshDuringKeyRotation: while a new signing key rolls out, a replica
// that does not hold it yet cannot re-derive the token a newer replica
// minted; a racing refresh there is told to retry, never taken for reuse.
func TestRefreshDuringKeyRotation(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func(sessions.Config) *env) {
		e := newEnv(cfg())
		ctx := context.Background()
		oldKeys, _ := tokens.NewKeys([]string{"test-key"})
		newKeys, _ := tokens.NewKeys([]string{"rotated-in", "test-key"})
		updated := &sessions.Manager{Sessions: e.st, Identities: e.st, Keys: newKeys, Config: e.m.Config, Now: e.m.Now, Logger: e.m.Logger}
		rec := &outcomes{}
		e.m.Keys, e.m.Observe = oldKeys, rec

		t0, _ := e.m.Start(ctx, e.p, nil)
		if _, err := updated.Refresh(ctx, t0.RefreshToken); err != nil {
			t.Fatalf("refresh on the updated replica: %v", err)
		}
		e.clk.Advance(time.Second)
		if _, err := e.m.Refresh(ctx, t0.RefreshToken); !errors.Is(err, sessions.ErrNewerKey) {
			t.Fatalf("racing refresh on the replica without the new key: %v, want ErrNewerKey", err)
		}
		if s, _ := e.st.GetSession(ctx, t0.SessionID); s.RevokedAt != nil {
			t.Fatal("the racing refresh revoked the session")
		}
		if _, err := updated.Refresh(ctx, t0.RefreshToken); err != nil {
			t.Fatalf("the retry on the updated replica: %v", err)
		}
		e.clk.Advance(time.Hour)
		if _, err := e.m.Refresh(ctx, "garbage"); !errors.Is(err, sessions.ErrMalformed) {
			t.Fatal(err)
		}
		if _, err := e.m.Refresh(ctx, t0.RefreshToken); !errors.Is(err, sessions.ErrEnded) {
			t.Fatalf("old token after the window: %v", err)
		}
		want := []string{"newer_key", "malformed", "reuse"}
		if !slices.Equal(rec.got, want) {
			t.Fatalf("outcomes %v, want %v", rec.got, want)
		}
	})
}
