package sqlstore

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

const apiKeyCols = `id, principal_id, first_eight, secret_hash, scopes, access_tags, note, expires_at, created_at, latest_activity`

func scanAPIKey(r scanner) (identity.APIKey, error) {
	var k identity.APIKey
	err := r.Scan(&k.ID, &k.PrincipalID, &k.FirstEight, &k.SecretHash, jsonCol{&k.Scopes}, jsonCol{&k.AccessTags},
		&k.Note, nullTimeCol{&k.ExpiresAt}, timeCol{&k.CreatedAt}, nullTimeCol{&k.LatestActivity})
	if k.Scopes == nil {
		k.Scopes = []identity.Scope{}
	}
	return k, err
}

// CreateAPIKey implements identity.Store. With a limit, the owner's row is
// locked while its keys are counted, so concurrent creations queue and
// cannot take it past the limit together.
func (s *Store) CreateAPIKey(ctx context.Context, k identity.APIKey, limit int) (err error) {
	ctx, end := s.op(ctx, "CreateAPIKey")
	defer end(&err)
	switch {
	case k.ID == uuid.Nil:
		return errors.New("create API key: nil id")
	case len(k.FirstEight) != 8:
		return fmt.Errorf("create API key: first eight %q is not eight characters", k.FirstEight)
	case len(k.SecretHash) == 0:
		return errors.New("create API key: no secret hash")
	case k.CreatedAt.IsZero():
		return errors.New("create API key: zero creation time")
	}
	scopes := k.Scopes
	if scopes == nil {
		scopes = []identity.Scope{}
	}
	scopesJSON, err := jsonArg(scopes)
	if err != nil {
		return err
	}
	// A nil AccessTags ("no restriction") stays NULL, distinct from [].
	var tags any
	if k.AccessTags != nil {
		if tags, err = jsonArg(k.AccessTags); err != nil {
			return err
		}
	}
	insert := func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO api_keys (`+apiKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			k.ID, k.PrincipalID, k.FirstEight, k.SecretHash, scopesJSON, tags, k.Note,
			tsArg(k.ExpiresAt), ts(k.CreatedAt), tsArg(k.LatestActivity))
		return err
	}
	if limit <= 0 {
		err = insert(s.db)
	} else {
		err = s.db.InTx(ctx, func(q Querier) error {
			return s.withinLimit(ctx, q, k.PrincipalID, limit, `SELECT count(*) FROM api_keys
				WHERE principal_id = $1 AND (expires_at IS NULL OR expires_at > $2)`, ts(k.CreatedAt), insert)
		})
	}
	if err != nil {
		return fmt.Errorf("create API key for principal %s: %w", k.PrincipalID, err)
	}
	return nil
}

// withinLimit locks the principal's row, counts its rows with countQuery
// ($1 the principal, $2 now) and runs write only below limit: the lock
// makes concurrent writers for one principal take turns, so a count-then-
// write cannot let two of them past the limit together.
func (s *Store) withinLimit(ctx context.Context, q Querier, principalID uuid.UUID, limit int, countQuery string,
	now time.Time, write func(Querier) error) error {
	var one int64
	if err := q.QueryRow(ctx, `SELECT 1 FROM principals WHERE id = $1`+s.dialect.ForUpdate, principalID).Scan(&one); err != nil {
		return err
	}
	n, err := count(ctx, q, countQuery, principalID, now)
	if err != nil {
		return err
	}
	if n >= limit {
		return fmt.Errorf("%w: %d of %d", storeerr.ErrLimit, n, limit)
	}
	return write(q)
}

// APIKeysByFirstEight implements identity.Store.
func (s *Store) APIKeysByFirstEight(ctx context.Context, firstEight string, now time.Time) (_ []identity.APIKey, err error) {
	ctx, end := s.op(ctx, "APIKeysByFirstEight")
	defer end(&err)
	keys, err := collect(ctx, s.db, scanAPIKey, `SELECT `+apiKeyCols+` FROM api_keys
		WHERE first_eight = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at, id`,
		firstEight, ts(now))
	if err != nil {
		return nil, fmt.Errorf("find API keys: %w", err)
	}
	return keys, nil
}

// ListAPIKeys implements identity.Store.
func (s *Store) ListAPIKeys(ctx context.Context, principalID uuid.UUID) (_ []identity.APIKey, err error) {
	ctx, end := s.op(ctx, "ListAPIKeys")
	defer end(&err)
	keys, err := collect(ctx, s.db, scanAPIKey, `SELECT `+apiKeyCols+` FROM api_keys
		WHERE principal_id = $1 ORDER BY created_at, id`, principalID)
	if err != nil {
		return nil, fmt.Errorf("list API keys of principal %s: %w", principalID, err)
	}
	return keys, nil
}

// CountAPIKeys implements identity.Store.
func (s *Store) CountAPIKeys(ctx context.Context, principalID uuid.UUID, now time.Time) (_ int, err error) {
	ctx, end := s.op(ctx, "CountAPIKeys")
	defer end(&err)
	n, err := count(ctx, s.db, `SELECT count(*) FROM api_keys
		WHERE principal_id = $1 AND (expires_at IS NULL OR expires_at > $2)`, principalID, ts(now))
	if err != nil {
		return 0, fmt.Errorf("count API keys of principal %s: %w", principalID, err)
	}
	return n, nil
}

// DeleteAPIKey implements identity.Store; the log entry tells every replica
// to forget the key.
func (s *Store) DeleteAPIKey(ctx context.Context, principalID uuid.UUID, firstEight string) (err error) {
	ctx, end := s.op(ctx, "DeleteAPIKey")
	defer end(&err)
	err = s.inLoggedTx(ctx, func(q Querier) error {
		var id uuid.UUID
		if err := q.QueryRow(ctx, `DELETE FROM api_keys WHERE principal_id = $1 AND first_eight = $2 RETURNING id`,
			principalID, firstEight).Scan(&id); err != nil {
			return err
		}
		return s.appendLog(ctx, q, sessions.Revocation{Kind: sessions.DeletedAPIKey, PrincipalID: principalID,
			APIKeyID: id, RevokedAt: s.now()})
	})
	if err != nil {
		return fmt.Errorf("delete API key of principal %s: %w", principalID, err)
	}
	return nil
}

// TouchAPIKey implements identity.Store, like TouchPrincipal.
func (s *Store) TouchAPIKey(ctx context.Context, id uuid.UUID, now time.Time, minInterval time.Duration) error {
	return s.touch(ctx, "TouchAPIKey", "api_keys", id, now, minInterval)
}

// TouchAPIKeys implements identity.Store in one statement per call.
func (s *Store) TouchAPIKeys(ctx context.Context, ids []uuid.UUID, now time.Time, minInterval time.Duration) (err error) {
	ctx, end := s.op(ctx, "TouchAPIKeys")
	defer end(&err)
	if minInterval < 0 {
		return fmt.Errorf("touch API keys: negative interval %s", minInterval)
	}
	if len(ids) == 0 {
		return nil
	}
	args := []any{ts(now), ts(now.Add(-minInterval))}
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := s.db.Exec(ctx, `UPDATE api_keys SET latest_activity = $1
		WHERE id IN (`+placeholders(3, len(ids))+`) AND (latest_activity IS NULL OR latest_activity <= $2)`,
		args...); err != nil {
		return fmt.Errorf("touch %d API keys: %w", len(ids), err)
	}
	return nil
}
