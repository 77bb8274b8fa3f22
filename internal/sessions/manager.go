package sessions

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"

	"github.com/tiledgo/server/internal/authn"
	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/storeerr"
	"github.com/tiledgo/server/internal/tokens"
)

// TracerName names this package's spans.
const TracerName = "github.com/tiledgo/server/internal/sessions"

// Errors the Manager returns; the HTTP layer maps them to Tiled's answers.
var (
	// ErrEnded: the session is unknown, revoked or expired. Tiled answers all
	// three alike so that a revocation is not revealed.
	ErrEnded = errors.New("session ended")
	// ErrMalformed: the refresh token is not one of ours in form.
	ErrMalformed = errors.New("malformed refresh token")
	// ErrTooManySessions: the principal reached the session limit.
	ErrTooManySessions = errors.New("too many sessions")
	// ErrNewerKey: a racing refresh was entitled to the session's current
	// token, but another replica minted it under a signing key this one
	// does not hold yet (a key rotation rolling out). Retrying reaches a
	// replica that holds it; the session is left alone.
	ErrNewerKey = errors.New("session refreshed under a signing key this replica does not hold")
)

// ReusedError is the ErrEnded of a refresh that presented a rotated token
// after the grace window: the session it names has been revoked. It tells
// the caller whose session, for the audit trail; the client is answered as
// for any ended session.
type ReusedError struct {
	SessionID, PrincipalID uuid.UUID
}

func (e *ReusedError) Error() string {
	return "refresh token reused: session " + e.SessionID.String() + " revoked"
}

// Is makes errors.Is(err, ErrEnded) true.
func (e *ReusedError) Is(target error) bool { return target == ErrEnded }

// Limits and lifetimes. Zero SessionMaxAge means sessions never hit a hard
// cap (seed 000's default); they still end after RefreshMaxAge of inactivity.
type Config struct {
	AccessTokenMaxAge time.Duration
	// RefreshMaxAge is the max inactive age: each refresh moves the deadline.
	RefreshMaxAge time.Duration
	SessionMaxAge time.Duration
	// Grace is how long the previous refresh token of a session still works
	// after a rotation, for racing refreshes (two tabs, a retry behind a load
	// balancer). Reuse after it revokes the session (OAuth 2.0 Security BCP).
	Grace time.Duration
	// MaxSessions per principal (Tiled: 200).
	MaxSessions int
}

// DefaultConfig returns Tiled's defaults (seed 000: 15 min, 1 week, unlimited).
func DefaultConfig() Config {
	return Config{
		AccessTokenMaxAge: 15 * time.Minute,
		RefreshMaxAge:     7 * 24 * time.Hour,
		Grace:             10 * time.Second,
		MaxSessions:       200,
	}
}

// Manager runs sliding sessions on top of the stores.
type Manager struct {
	Sessions   Store
	Identities identity.Store
	Keys       tokens.Keys
	Config     Config
	Now        func() time.Time
	Logger     *slog.Logger
	// Confirmations records answered rotations off the request path (see
	// Refresh); nil confirms each one in the request, one more round trip.
	Confirmations Confirmer
	// Observe counts refresh outcomes (metrics); nil counts nothing.
	Observe RefreshObserver
	// Revocations answers, from this replica's memory, whether an access
	// token's session was revoked; nil (or a cache not in sync) reads the
	// session from the database on every bearer request.
	Revocations RevocationCache
	// Principals holds, in this replica's memory, what tokens need of
	// principals, following the revocation log; with it a refresh's
	// rotation need not read the principal. nil reads it in the rotation.
	Principals PrincipalCache
	// VerifiedTokens bounds how many checked access tokens are remembered
	// (see verifiedTokens): 0 means 10,000, negative none.
	VerifiedTokens int

	verified verifiedTokens
}

// RefreshObserver counts how refreshes end: "rotated", "grace" (a racing
// refresh handed the winner's token), "pending" (the previous token of an
// unconfirmed rotation handed the current one), "reuse" (session revoked),
// "ended", "malformed", "newer_key" or "error".
type RefreshObserver interface {
	Refresh(outcome string)
}

// PrincipalCache is a replica's memory of principals that follows the
// revocation log (authcache.Cache). It is exact up to the log position it
// reports: every change to a principal is logged in the transaction that
// makes it, and a cached principal is dropped when its change is applied.
type PrincipalCache interface {
	// Applied returns the log position through which every entry has been
	// applied, and false while the cache is not in sync with the log.
	Applied() (int64, bool)
	// Principal returns the cached principal id (treat it as read-only).
	Principal(id uuid.UUID) (identity.Principal, bool)
	// PrincipalEpoch is read before a principal is read from the store and
	// handed to PutPrincipal after: a change applied in between keeps the
	// read out of the cache, since it may predate the change.
	PrincipalEpoch() uint64
	PutPrincipal(epoch uint64, p identity.Principal)
}

// Confirmer takes note that a rotation was answered, to be written with
// Store.ConfirmRotations later (ConfirmBatcher).
type Confirmer interface {
	Confirm(RotationRef)
}

// now is the clock at the stores' precision (microseconds), so that a
// deadline computed here and one read back from a store agree exactly.
func (m *Manager) now() time.Time { return m.Now().UTC().Truncate(time.Microsecond) }

// Tokens is what a login or refresh returns (Tiled's token response).
type Tokens struct {
	AccessToken           string
	ExpiresIn             int64
	RefreshToken          string
	RefreshTokenExpiresIn int64
	SessionID             uuid.UUID
	Principal             identity.Principal
}

// Start opens a session for p (already found or created by a login) and
// returns its first tokens.
func (m *Manager) Start(ctx context.Context, p identity.Principal, state map[string]any) (Tokens, error) {
	now := m.now()
	if state == nil {
		state = map[string]any{}
	}
	s := Session{
		ID: uuid.New(), PrincipalID: p.ID, CreatedAt: now, LastUsedAt: now,
		RefreshExpiresAt: now.Add(m.Config.RefreshMaxAge), State: state,
	}
	if m.Config.SessionMaxAge > 0 {
		exp := now.Add(m.Config.SessionMaxAge)
		s.ExpiresAt = &exp
	}
	rt := m.Keys.Refresh(s.ID, 0)
	s.RefreshHash = rt.Hash()
	// The store counts and inserts atomically: concurrent logins cannot
	// take a principal past the limit together.
	if err := m.Sessions.CreateSession(ctx, s, m.Config.MaxSessions); errors.Is(err, storeerr.ErrLimit) {
		return Tokens{}, fmt.Errorf("%w: %w", ErrTooManySessions, err)
	} else if err != nil {
		return Tokens{}, fmt.Errorf("create session: %w", err)
	}
	return m.issue(ctx, s, p, rt, now)
}

// Refresh exchanges a refresh token for new tokens, rotating it.
//
// The store applies the rotation in one conditional update, so of many
// concurrent refreshes with the same token exactly one rotates. The others,
// if they arrive within the grace window, are handed the very token the
// winner got (re-derived, never stored), so every caller ends on the same
// session. A genuine old token presented after the window is a replay:
// the session is revoked and every holder must log in again.
//
// A rotation stays pending until this server has the database's answer and
// has minted the tokens; only then is it confirmed (off the request path).
// While it is pending, the previous token is handed the current one however
// late it comes, because nobody may have received the new token: the request
// may have answered an error (503 after the statement bound) while its
// statement was still in flight and committed when the database came back,
// or committed and lost its answer. Taking that client's retry for reuse
// would revoke the session of a client that did nothing wrong. Measuring the
// grace window on the database's clock would fix only the first of those two
// cases, and a longer window only outages shorter than it. The cost is that
// a stolen previous token of an unconfirmed rotation is exchanged too; the
// thief and the client then hold the same token, and whichever refreshes
// second is caught as reuse, which revokes the session, as before.
func (m *Manager) Refresh(ctx context.Context, token string) (t Tokens, err error) {
	outcome := "error"
	if m.Observe != nil {
		defer func() { m.Observe.Refresh(outcome) }()
	}
	t, outcome, err = m.refresh(ctx, token)
	return t, err
}

func (m *Manager) refresh(ctx context.Context, token string) (Tokens, string, error) {
	rt, err := tokens.ParseRefresh(token)
	// The secret is derived from the session and generation: a token whose
	// generation was edited (or whose parts were spliced) is not one this
	// server issued, even when its secret is the session's current one,
	// and must not rotate the session onto a generation it never issued.
	if err != nil || !m.Keys.IssuedRefresh(rt) {
		return Tokens{}, "malformed", ErrMalformed
	}
	now := m.now()
	next := m.Keys.Refresh(rt.SessionID, rt.Generation+1)
	r := Rotation{
		SessionID: rt.SessionID, PresentedHash: rt.Hash(), NewHash: next.Hash(),
		Now: now, NewRefreshExpiresAt: now.Add(m.Config.RefreshMaxAge),
	}
	// One round trip: the rotation returns the principal the tokens need,
	// or, while this replica's cache follows the log, whether the cache
	// may lack a change the rotation could see.
	if m.Principals != nil {
		r.LogCursor, r.SkipPrincipal = m.Principals.Applied()
	}
	rot, err := m.Sessions.RotateRefresh(ctx, r)
	s, p := rot.Session, rot.Principal
	if err == nil && r.SkipPrincipal {
		if p, err = m.cachedPrincipal(ctx, s.PrincipalID, rot.LogAhead); errors.Is(err, ErrEnded) {
			return Tokens{}, "ended", err
		} else if err != nil {
			return Tokens{}, "error", err
		}
	}
	switch {
	case err == nil:
		t, err := m.issue(ctx, s, p, next, now)
		if err != nil {
			return Tokens{}, "error", err
		}
		m.confirm(ctx, s)
		return t, "rotated", nil
	case errors.Is(err, storeerr.ErrNotFound):
		return Tokens{}, "ended", ErrEnded
	case !errors.Is(err, ErrStaleRefresh):
		return Tokens{}, "error", fmt.Errorf("rotate refresh token: %w", err)
	}

	// Someone rotated this token first; s is the session as they left it.
	if !s.Active(now) {
		return Tokens{}, "ended", ErrEnded
	}
	if rt.Generation == s.Generation-1 && subtle.ConstantTimeCompare(rt.Hash(), s.PrevRefreshHash) == 1 &&
		(s.RotationPending || s.RotatedAt != nil && now.Sub(*s.RotatedAt) <= m.Config.Grace) {
		cur, ok := m.Keys.RefreshForHash(s.ID, s.Generation, s.RefreshHash)
		if !ok {
			// Entitled to the current token, but it was minted under a key
			// this replica lacks: never reuse, so never a revocation.
			return Tokens{}, "newer_key", ErrNewerKey
		}
		t, err := m.issueFor(ctx, s, cur, now)
		if err != nil {
			return Tokens{}, "error", err
		}
		outcome := "grace"
		if s.RotationPending {
			outcome = "pending"
			m.confirm(ctx, s)
		}
		return t, outcome, nil
	}
	if rt.Generation < s.Generation {
		if err := m.revoke(ctx, s.ID, "refresh token reuse"); err != nil && !errors.Is(err, storeerr.ErrNotFound) {
			return Tokens{}, "error", fmt.Errorf("revoke reused session: %w", err)
		}
		m.Logger.WarnContext(ctx, "refresh token reused after rotation; session revoked",
			"session", s.ID, "principal", s.PrincipalID, "presented_generation", rt.Generation, "generation", s.Generation)
		return Tokens{}, "reuse", &ReusedError{SessionID: s.ID, PrincipalID: s.PrincipalID}
	}
	return Tokens{}, "ended", ErrEnded
}

// cachedPrincipal returns principal id from this replica's cache, unless
// the cache may be behind the rotation that asks (logAhead) or does not
// hold it: then from the store, keeping the read for the next refresh.
// The rotation has committed by now; an error here answers the request
// with an error and leaves the rotation pending, which its retry survives.
func (m *Manager) cachedPrincipal(ctx context.Context, id uuid.UUID, logAhead bool) (identity.Principal, error) {
	if !logAhead {
		if p, ok := m.Principals.Principal(id); ok {
			return p, nil
		}
	}
	epoch := m.Principals.PrincipalEpoch()
	p, err := m.Identities.GetPrincipal(ctx, id)
	if errors.Is(err, storeerr.ErrNotFound) {
		return identity.Principal{}, fmt.Errorf("read principal %s: %w", id, ErrEnded)
	} else if err != nil {
		return identity.Principal{}, fmt.Errorf("read principal: %w", err)
	}
	m.Principals.PutPrincipal(epoch, p)
	return p, nil
}

// confirm records that s's current refresh token has been handed out.
func (m *Manager) confirm(ctx context.Context, s Session) {
	ref := RotationRef{SessionID: s.ID, Generation: s.Generation}
	if m.Confirmations != nil {
		m.Confirmations.Confirm(ref)
		return
	}
	// Failing leaves the rotation pending, which is the lenient state: the
	// tokens are good, so the request still succeeds.
	if err := m.Sessions.ConfirmRotations(ctx, []RotationRef{ref}); err != nil {
		m.Logger.WarnContext(ctx, "confirm rotation", "session", s.ID, "error", err)
	}
}

// RevokeByRefreshToken ends the session a refresh token belongs to. It needs
// only the token, as Tiled's POST /auth/session/revoke: holding the token is
// proof enough. ErrEnded if the token matches no session.
func (m *Manager) RevokeByRefreshToken(ctx context.Context, token string) (uuid.UUID, error) {
	rt, err := tokens.ParseRefresh(token)
	if err != nil || !m.Keys.IssuedRefresh(rt) {
		return uuid.Nil, ErrMalformed
	}
	s, err := m.Sessions.GetSession(ctx, rt.SessionID)
	if errors.Is(err, storeerr.ErrNotFound) {
		return rt.SessionID, ErrEnded
	} else if err != nil {
		return rt.SessionID, fmt.Errorf("read session: %w", err)
	}
	if err := m.revoke(ctx, s.ID, "revoked by refresh token holder"); err != nil {
		if errors.Is(err, storeerr.ErrNotFound) {
			return s.ID, ErrEnded
		}
		return s.ID, fmt.Errorf("revoke session: %w", err)
	}
	return s.ID, nil
}

// Revoke ends a session by id on behalf of caller: its own sessions, or any
// with admin rights. Sessions of others answer ErrEnded, as if absent.
func (m *Manager) Revoke(ctx context.Context, caller *authn.Caller, id uuid.UUID) error {
	s, err := m.Sessions.GetSession(ctx, id)
	if errors.Is(err, storeerr.ErrNotFound) {
		return ErrEnded
	} else if err != nil {
		return fmt.Errorf("read session: %w", err)
	}
	if s.PrincipalID != caller.PrincipalID && !caller.Admin {
		return ErrEnded
	}
	if err := m.revoke(ctx, id, "revoked"); err != nil {
		if errors.Is(err, storeerr.ErrNotFound) {
			return ErrEnded
		}
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// revoke ends a session in the store and, at once, in this replica's cache
// (the store's own feed brings it there too; this covers a cache whose feed
// is not wired to this store, as in tests).
func (m *Manager) revoke(ctx context.Context, id uuid.UUID, reason string) error {
	now := m.now()
	if err := m.Sessions.RevokeSession(ctx, id, reason, now); err != nil {
		return err
	}
	if m.Revocations != nil {
		m.Revocations.Revoke(id, now)
	}
	return nil
}

// VerifyAccessToken implements authn.TokenVerifier. Besides the signature
// and expiry it checks that the session is still live, so a revocation stops
// the session's access tokens on every replica at once rather than after
// access_token_max_age, as in Tiled. With a RevocationCache in sync that
// check is a lookup in this replica's memory, exact because the cache
// follows the revocation log; otherwise it reads the session.
func (m *Manager) VerifyAccessToken(ctx context.Context, token string) (*authn.Caller, error) {
	now := m.now()
	caller, hash, ok := m.verified.get(token, now, m.VerifiedTokens)
	if !ok {
		_, span := otel.Tracer(TracerName).Start(ctx, "tokens.verify")
		c, err := m.Keys.VerifyAccess(token, now)
		span.End()
		switch {
		case errors.Is(err, tokens.ErrExpired):
			return nil, authn.ErrExpiredToken
		case err != nil:
			return nil, authn.ErrInvalidToken
		}
		pid, _ := c.PrincipalID()
		caller = &authn.Caller{
			Kind: authn.Session, PrincipalID: pid, PrincipalType: identity.PrincipalType(c.SubjectType),
			Scopes: identity.NewScopeSet(c.Scopes...),
		}
		for _, i := range c.Identities {
			caller.Identities = append(caller.Identities, identity.Identity{ID: i.ID, Provider: i.IDP, PrincipalID: pid})
		}
		caller.Admin = caller.Scopes.Has(identity.ScopeWritePrincipals)
		if c.SessionID != "" {
			sid, err := uuid.Parse(c.SessionID)
			if err != nil {
				return nil, authn.ErrInvalidToken
			}
			caller.SessionID = sid
		}
		m.verified.put(hash, caller, time.Unix(c.ExpiresAt, 0), now, m.VerifiedTokens)
	}
	if sid, pid := caller.SessionID, caller.PrincipalID; sid != uuid.Nil {
		caller.SessionID = uuid.Nil // set again only once the session is known live
		if m.Revocations != nil {
			revoked, known := m.Revocations.Revoked(sid, pid)
			if revoked {
				return nil, authn.ErrSessionEnded
			}
			if known {
				caller.SessionID = sid
				return caller, nil
			}
		}
		s, err := m.Sessions.GetSession(ctx, sid)
		if errors.Is(err, storeerr.ErrNotFound) {
			return nil, authn.ErrSessionEnded
		} else if err != nil {
			return nil, fmt.Errorf("check session: %w", err)
		}
		if s.RevokedAt != nil || s.PrincipalID != pid {
			return nil, authn.ErrSessionEnded
		}
		caller.SessionID = sid
	}
	return caller, nil
}

// issueFor reloads the principal (roles and identities may have changed
// since the session began) and mints tokens for session s.
func (m *Manager) issueFor(ctx context.Context, s Session, rt tokens.RefreshToken, now time.Time) (Tokens, error) {
	p, err := m.Identities.GetPrincipal(ctx, s.PrincipalID)
	if errors.Is(err, storeerr.ErrNotFound) {
		return Tokens{}, ErrEnded
	} else if err != nil {
		return Tokens{}, fmt.Errorf("read principal: %w", err)
	}
	return m.issue(ctx, s, p, rt, now)
}

func (m *Manager) issue(ctx context.Context, s Session, p identity.Principal, rt tokens.RefreshToken, now time.Time) (Tokens, error) {
	_, span := otel.Tracer(TracerName).Start(ctx, "tokens.sign")
	defer span.End()
	accessExp := now.Add(m.Config.AccessTokenMaxAge)
	refreshExp := s.RefreshExpiresAt
	if s.ExpiresAt != nil {
		if s.ExpiresAt.Before(refreshExp) {
			refreshExp = *s.ExpiresAt
		}
		// An access token never outlives its session.
		if s.ExpiresAt.Before(accessExp) {
			accessExp = *s.ExpiresAt
		}
	}
	claims := tokens.AccessClaims{
		Subject: strings.ReplaceAll(p.ID.String(), "-", ""), SubjectType: string(p.Type),
		Scopes: identity.ScopesOfRoles(p.Roles).Sorted(), State: s.State, SessionID: s.ID.String(),
	}
	for _, i := range p.Identities {
		claims.Identities = append(claims.Identities, tokens.Identity{ID: i.ID, IDP: i.Provider})
	}
	access, err := m.Keys.SignAccess(claims, now, accessExp)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{
		AccessToken: access, ExpiresIn: seconds(accessExp.Sub(now)),
		RefreshToken: rt.String(), RefreshTokenExpiresIn: seconds(refreshExp.Sub(now)),
		SessionID: s.ID, Principal: p,
	}, nil
}

// seconds rounds a lifetime to whole seconds, as clients are told it.
func seconds(d time.Duration) int64 { return int64(d.Round(time.Second) / time.Second) }
