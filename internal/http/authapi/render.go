package authapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/storeerr"
)

// timeLayout is how times appear in principal and key JSON, as Tiled sends
// the times it reads back from its database: naive ISO 8601 in UTC, to the
// second (latest_login, expiration_time, latest_activity). Scripts compare
// them with naive datetimes; an offset would make that a TypeError.
const timeLayout = "2006-01-02T15:04:05"

// awareTimeLayout is the one exception: the expiration_time of the key
// that POST /auth/apikey has just made, which Tiled sends from memory,
// with its UTC offset.
const awareTimeLayout = "2006-01-02T15:04:05+00:00"

func fmtTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

func isNotFound(err error) bool { return errors.Is(err, storeerr.ErrNotFound) }

// renderPrincipal is Tiled's Principal schema: identities, roles, API keys,
// sessions and the latest activity across all of them.
func (h *Handlers) renderPrincipal(ctx context.Context, id uuid.UUID) (map[string]any, error) {
	p, err := h.Identities.GetPrincipal(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read principal: %w", err)
	}
	keys, err := h.Identities.ListAPIKeys(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	ss, err := h.Sessions.ListSessions(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return principalJSON(p, keys, ss), nil
}

func principalJSON(p identity.Principal, keys []identity.APIKey, ss []sessions.Session) map[string]any {
	latest := p.LatestActivity
	later := func(t *time.Time) {
		if t != nil && (latest == nil || t.After(*latest)) {
			latest = t
		}
	}
	ids := make([]map[string]any, 0, len(p.Identities))
	for _, i := range p.Identities {
		ids = append(ids, map[string]any{"id": i.ID, "provider": i.Provider, "latest_login": fmtTime(i.LatestLogin)})
		later(i.LatestLogin)
	}
	roles := make([]map[string]any, 0, len(p.Roles))
	for _, r := range p.Roles {
		roles = append(roles, map[string]any{"name": r.Name, "scopes": nonNil(r.Scopes)})
	}
	apiKeys := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		apiKeys = append(apiKeys, apiKeyJSON(k))
		later(k.LatestActivity)
	}
	sess := make([]map[string]any, 0, len(ss))
	for _, s := range ss {
		exp := s.RefreshExpiresAt
		if s.ExpiresAt != nil && s.ExpiresAt.Before(exp) {
			exp = *s.ExpiresAt
		}
		state := s.State
		if state == nil {
			state = map[string]any{}
		}
		sess = append(sess, map[string]any{
			"uuid": s.ID.String(), "expiration_time": fmtTime(&exp),
			"revoked": s.RevokedAt != nil, "state": state,
		})
		lu := s.LastUsedAt
		later(&lu)
	}
	return map[string]any{
		"uuid": p.ID.String(), "type": string(p.Type), "identities": ids, "roles": roles,
		"api_keys": apiKeys, "sessions": sess, "latest_activity": fmtTime(latest),
	}
}

// apiKeyJSON is Tiled's APIKey schema (never the secret or its hash).
func apiKeyJSON(k identity.APIKey) map[string]any {
	var tags any
	if k.AccessTags != nil {
		tags = k.AccessTags
	}
	return map[string]any{
		"first_eight": k.FirstEight, "expiration_time": fmtTime(k.ExpiresAt), "note": nullable(k.Note),
		"scopes": nonNil(k.Scopes), "access_tags": tags, "latest_activity": fmtTime(k.LatestActivity),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
