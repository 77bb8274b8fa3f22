package sessions

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/storeerr"
)

// TokensForSession mints tokens for an existing, active session to a caller
// that holds none of its tokens. It serves the device-code flow: the session
// is opened when the person finishes the login in a browser (which is never
// given its tokens) and handed, once, to the polling device, which proves
// itself with the device code instead (the store's TakePendingDevice makes
// that once). The refresh token is the session's current one, re-derived, as
// tokens are never stored. ErrEnded if the session is unknown, revoked or
// expired, or its refresh token was made with a key no longer configured.
func (m *Manager) TokensForSession(ctx context.Context, id uuid.UUID) (Tokens, error) {
	now := m.now()
	s, err := m.Sessions.GetSession(ctx, id)
	if errors.Is(err, storeerr.ErrNotFound) {
		return Tokens{}, ErrEnded
	} else if err != nil {
		return Tokens{}, fmt.Errorf("read session: %w", err)
	}
	if !s.Active(now) {
		return Tokens{}, ErrEnded
	}
	rt, ok := m.Keys.RefreshForHash(s.ID, s.Generation, s.RefreshHash)
	if !ok {
		return Tokens{}, ErrEnded
	}
	return m.issueFor(ctx, s, rt, now)
}
