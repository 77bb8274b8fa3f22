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

const principalCols = `id, type, created_at, latest_activity`

func scanPrincipal(r scanner) (identity.Principal, error) {
	var p identity.Principal
	var typ string
	err := r.Scan(&p.ID, &typ, timeCol{&p.CreatedAt}, nullTimeCol{&p.LatestActivity})
	p.Type = identity.PrincipalType(typ)
	return p, err
}

// CreatePrincipal implements identity.Store.
func (s *Store) CreatePrincipal(ctx context.Context, p identity.Principal) (_ identity.Principal, err error) {
	ctx, end := s.op(ctx, "CreatePrincipal")
	defer end(&err)
	if err := checkPrincipal(p); err != nil {
		return identity.Principal{}, err
	}
	var out identity.Principal
	err = s.db.InTx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO principals (id, type, created_at) VALUES ($1, $2, $3)`,
			p.ID, string(p.Type), ts(p.CreatedAt)); err != nil {
			return err
		}
		if err := grantRoles(ctx, q, p.ID, roleNames(p.Roles)); err != nil {
			return err
		}
		out, err = loadPrincipal(ctx, q, p.ID)
		return err
	})
	if err != nil {
		return identity.Principal{}, fmt.Errorf("create principal %s: %w", p.ID, err)
	}
	return out, nil
}

func checkPrincipal(p identity.Principal) error {
	switch {
	case p.ID == uuid.Nil:
		return errors.New("create principal: nil id")
	case p.Type != identity.TypeUser && p.Type != identity.TypeService:
		return fmt.Errorf("create principal: type %q is neither user nor service", p.Type)
	case p.CreatedAt.IsZero():
		return errors.New("create principal: zero creation time")
	}
	return nil
}

func roleNames(roles []identity.Role) []string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.Name
	}
	return names
}

func grantRoles(ctx context.Context, q Querier, id uuid.UUID, names []string) error {
	for _, name := range names {
		if name == "" {
			return errors.New("empty role name")
		}
		if _, err := q.Exec(ctx, `INSERT INTO principal_roles (principal_id, role) VALUES ($1, $2)
			ON CONFLICT (principal_id, role) DO NOTHING`, id, name); err != nil {
			return err
		}
	}
	return nil
}

// GetPrincipal implements identity.Store.
func (s *Store) GetPrincipal(ctx context.Context, id uuid.UUID) (_ identity.Principal, err error) {
	ctx, end := s.op(ctx, "GetPrincipal")
	defer end(&err)
	p, err := loadPrincipal(ctx, s.db, id)
	if err != nil {
		return identity.Principal{}, fmt.Errorf("get principal %s: %w", id, err)
	}
	return p, nil
}

func loadPrincipal(ctx context.Context, q Querier, id uuid.UUID) (identity.Principal, error) {
	p, err := scanPrincipal(q.QueryRow(ctx, `SELECT `+principalCols+` FROM principals WHERE id = $1`, id))
	if err != nil {
		return identity.Principal{}, err
	}
	ps := []identity.Principal{p}
	if err := hydrate(ctx, q, ps); err != nil {
		return identity.Principal{}, err
	}
	return ps[0], nil
}

// hydrate fills in the identities and roles of ps with one query each.
func hydrate(ctx context.Context, q Querier, ps []identity.Principal) error {
	if len(ps) == 0 {
		return nil
	}
	index := make(map[uuid.UUID]int, len(ps))
	ids := make([]any, len(ps))
	for i, p := range ps {
		index[p.ID] = i
		ids[i] = p.ID
	}
	in := placeholders(1, len(ids))
	idents, err := collect(ctx, q, scanIdentity,
		`SELECT provider, external_id, principal_id, latest_login FROM identities
		WHERE principal_id IN (`+in+`) ORDER BY provider, external_id`, ids...)
	if err != nil {
		return err
	}
	for _, ident := range idents {
		i := index[ident.PrincipalID]
		ps[i].Identities = append(ps[i].Identities, ident)
	}
	type grant struct {
		id   uuid.UUID
		role string
	}
	grants, err := collect(ctx, q, func(r scanner) (grant, error) {
		var g grant
		return g, r.Scan(&g.id, &g.role)
	}, `SELECT principal_id, role FROM principal_roles WHERE principal_id IN (`+in+`) ORDER BY role`, ids...)
	if err != nil {
		return err
	}
	for _, g := range grants {
		role, _ := identity.RoleByName(g.role)
		i := index[g.id]
		ps[i].Roles = append(ps[i].Roles, role)
	}
	return nil
}

func scanIdentity(r scanner) (identity.Identity, error) {
	var i identity.Identity
	return i, r.Scan(&i.Provider, &i.ID, &i.PrincipalID, nullTimeCol{&i.LatestLogin})
}

// ListPrincipals implements identity.Store.
func (s *Store) ListPrincipals(ctx context.Context, page identity.Page) (_ []identity.Principal, _ int, err error) {
	ctx, end := s.op(ctx, "ListPrincipals")
	defer end(&err)
	if page.Offset < 0 || page.Limit <= 0 {
		return nil, 0, fmt.Errorf("list principals: invalid page (offset %d, limit %d)", page.Offset, page.Limit)
	}
	total, err := count(ctx, s.db, `SELECT count(*) FROM principals`)
	if err != nil {
		return nil, 0, fmt.Errorf("count principals: %w", err)
	}
	ps, err := collect(ctx, s.db, scanPrincipal,
		`SELECT `+principalCols+` FROM principals ORDER BY created_at, id LIMIT $1 OFFSET $2`, page.Limit, page.Offset)
	if err == nil {
		err = hydrate(ctx, s.db, ps)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list principals: %w", err)
	}
	return ps, total, nil
}

// DeletePrincipal implements identity.Store. The schema's ON DELETE CASCADE
// removes identities, roles, API keys, sessions and their pending logins;
// the log entry tells every replica to refuse the principal's access tokens
// and forget its keys.
func (s *Store) DeletePrincipal(ctx context.Context, id uuid.UUID) (err error) {
	ctx, end := s.op(ctx, "DeletePrincipal")
	defer end(&err)
	err = s.inLoggedTx(ctx, func(q Querier) error {
		if err := mustAffect(q.Exec(ctx, `DELETE FROM principals WHERE id = $1`, id)); err != nil {
			return err
		}
		return s.logPrincipal(ctx, q, sessions.DeletedPrincipal, id)
	})
	if err != nil {
		return fmt.Errorf("delete principal %s: %w", id, err)
	}
	return nil
}

// logPrincipal appends a principal change to the revocation log.
func (s *Store) logPrincipal(ctx context.Context, q Querier, kind sessions.RevocationKind, id uuid.UUID) error {
	return s.appendLog(ctx, q, sessions.Revocation{Kind: kind, PrincipalID: id, RevokedAt: s.now()})
}

// LoginIdentity implements identity.Store. The common case (a known
// identity) is one UPDATE. For a new identity, the insert of the identity is
// ON CONFLICT DO NOTHING: if another replica inserted the same identity
// meanwhile, PostgreSQL waits for its transaction and reports no row, and
// this transaction removes the principal it had just created and uses the
// other one. Either way the two logins end with one principal.
func (s *Store) LoginIdentity(ctx context.Context, provider, id string, newRoles []string, now time.Time) (_ identity.Principal, _ bool, err error) {
	ctx, end := s.op(ctx, "LoginIdentity")
	defer end(&err)
	if provider == "" || id == "" {
		return identity.Principal{}, false, errors.New("login identity: empty provider or id")
	}
	now = ts(now)
	const touch = `UPDATE identities SET latest_login = $3
		WHERE provider = $1 AND external_id = $2 RETURNING principal_id`
	var (
		out     identity.Principal
		created bool
	)
	err = s.db.InTx(ctx, func(q Querier) error {
		created = false
		var pid uuid.UUID
		err := q.QueryRow(ctx, touch, provider, id, now).Scan(&pid)
		if errors.Is(err, storeerr.ErrNotFound) {
			pid, created, err = s.createLogin(ctx, q, provider, id, newRoles, now)
		}
		if err != nil {
			return err
		}
		out, err = loadPrincipal(ctx, q, pid)
		return err
	})
	if err != nil {
		return identity.Principal{}, false, fmt.Errorf("login identity: %w", err)
	}
	return out, created, nil
}

// LoginIdentityAs implements identity.Store. Every statement is
// idempotent under a race (ON CONFLICT DO NOTHING), so two replicas logging
// in the same new person at once end with one principal and one identity.
func (s *Store) LoginIdentityAs(ctx context.Context, provider, id string, principalID uuid.UUID, newRoles []string, now time.Time) (_ identity.Principal, _ bool, err error) {
	ctx, end := s.op(ctx, "LoginIdentityAs")
	defer end(&err)
	if provider == "" || id == "" || principalID == uuid.Nil {
		return identity.Principal{}, false, errors.New("login identity: empty provider, id or principal id")
	}
	now = ts(now)
	const touch = `UPDATE identities SET latest_login = $3
		WHERE provider = $1 AND external_id = $2 RETURNING principal_id`
	var (
		out     identity.Principal
		created bool
	)
	err = s.inLoggedTx(ctx, func(q Querier) error {
		created = false
		var pid uuid.UUID
		err := q.QueryRow(ctx, touch, provider, id, now).Scan(&pid)
		if errors.Is(err, storeerr.ErrNotFound) {
			n, xerr := q.Exec(ctx, `INSERT INTO principals (id, type, created_at) VALUES ($1, $2, $3)
				ON CONFLICT (id) DO NOTHING`, principalID, string(identity.TypeUser), now)
			if xerr != nil {
				return xerr
			}
			if created = n == 1; created {
				if err := grantRoles(ctx, q, principalID, newRoles); err != nil {
					return err
				}
			}
			err = q.QueryRow(ctx, `INSERT INTO identities (provider, external_id, principal_id, latest_login)
				VALUES ($1, $2, $3, $4) ON CONFLICT (provider, external_id) DO NOTHING RETURNING principal_id`,
				provider, id, principalID, now).Scan(&pid)
			switch {
			case errors.Is(err, storeerr.ErrNotFound):
				// Another login inserted the identity meanwhile.
				err = q.QueryRow(ctx, touch, provider, id, now).Scan(&pid)
			case err == nil && !created:
				// An existing principal gained an identity, which its
				// tokens name: replicas' caches must hear of it.
				err = s.logPrincipal(ctx, q, sessions.ChangedPrincipal, principalID)
			}
		}
		if err != nil {
			return err
		}
		out, err = loadPrincipal(ctx, q, pid)
		return err
	})
	if err != nil {
		return identity.Principal{}, false, fmt.Errorf("login identity: %w", err)
	}
	return out, created, nil
}

func (s *Store) createLogin(ctx context.Context, q Querier, provider, id string, roles []string, now time.Time) (uuid.UUID, bool, error) {
	newID := uuid.New()
	if _, err := q.Exec(ctx, `INSERT INTO principals (id, type, created_at) VALUES ($1, $2, $3)`,
		newID, string(identity.TypeUser), now); err != nil {
		return uuid.Nil, false, err
	}
	if err := grantRoles(ctx, q, newID, roles); err != nil {
		return uuid.Nil, false, err
	}
	var pid uuid.UUID
	err := q.QueryRow(ctx, `INSERT INTO identities (provider, external_id, principal_id, latest_login)
		VALUES ($1, $2, $3, $4) ON CONFLICT (provider, external_id) DO NOTHING RETURNING principal_id`,
		provider, id, newID, now).Scan(&pid)
	if err == nil {
		return pid, true, nil
	}
	if !errors.Is(err, storeerr.ErrNotFound) {
		return uuid.Nil, false, err
	}
	// Lost the race: the other login's row is committed and visible to the
	// next statement (READ COMMITTED takes a new snapshot per statement).
	if _, err := q.Exec(ctx, `DELETE FROM principals WHERE id = $1`, newID); err != nil {
		return uuid.Nil, false, err
	}
	err = q.QueryRow(ctx, `UPDATE identities SET latest_login = $3
		WHERE provider = $1 AND external_id = $2 RETURNING principal_id`, provider, id, now).Scan(&pid)
	return pid, false, err
}

// AddIdentity implements identity.Store.
func (s *Store) AddIdentity(ctx context.Context, principalID uuid.UUID, provider, id string) (err error) {
	ctx, end := s.op(ctx, "AddIdentity")
	defer end(&err)
	if provider == "" || id == "" {
		return errors.New("add identity: empty provider or id")
	}
	err = s.inLoggedTx(ctx, func(q Querier) error {
		if _, err := q.Exec(ctx, `INSERT INTO identities (provider, external_id, principal_id) VALUES ($1, $2, $3)`,
			provider, id, principalID); err != nil {
			return err
		}
		return s.logPrincipal(ctx, q, sessions.ChangedPrincipal, principalID)
	})
	if err != nil {
		return fmt.Errorf("add identity to principal %s: %w", principalID, err)
	}
	return nil
}

// GrantRole implements identity.Store. Granting a role held already
// changes nothing and logs nothing.
func (s *Store) GrantRole(ctx context.Context, principalID uuid.UUID, role string) (err error) {
	ctx, end := s.op(ctx, "GrantRole")
	defer end(&err)
	if role == "" {
		return errors.New("grant role: empty role name")
	}
	err = s.inLoggedTx(ctx, func(q Querier) error {
		n, err := q.Exec(ctx, `INSERT INTO principal_roles (principal_id, role) VALUES ($1, $2)
			ON CONFLICT (principal_id, role) DO NOTHING`, principalID, role)
		if err != nil || n == 0 {
			return err
		}
		return s.logPrincipal(ctx, q, sessions.ChangedPrincipal, principalID)
	})
	if err != nil {
		return fmt.Errorf("grant role %q to principal %s: %w", role, principalID, err)
	}
	return nil
}

// RevokeRole implements identity.Store.
func (s *Store) RevokeRole(ctx context.Context, principalID uuid.UUID, role string) (err error) {
	ctx, end := s.op(ctx, "RevokeRole")
	defer end(&err)
	err = s.inLoggedTx(ctx, func(q Querier) error {
		if err := mustAffect(q.Exec(ctx, `DELETE FROM principal_roles WHERE principal_id = $1 AND role = $2`,
			principalID, role)); err != nil {
			return err
		}
		return s.logPrincipal(ctx, q, sessions.ChangedPrincipal, principalID)
	})
	if err != nil {
		return fmt.Errorf("revoke role %q from principal %s: %w", role, principalID, err)
	}
	return nil
}

// TouchPrincipal implements identity.Store: one conditional UPDATE, which
// writes nothing while the last recorded activity is recent. Touching a
// principal that no longer exists is not an error: there is nothing to record.
func (s *Store) TouchPrincipal(ctx context.Context, id uuid.UUID, now time.Time, minInterval time.Duration) error {
	return s.touch(ctx, "TouchPrincipal", "principals", id, now, minInterval)
}

// touch sets latest_activity on table's row id unless it was set less than
// minInterval before now.
func (s *Store) touch(ctx context.Context, op, table string, id uuid.UUID, now time.Time, minInterval time.Duration) (err error) {
	ctx, end := s.op(ctx, op)
	defer end(&err)
	if minInterval < 0 {
		return fmt.Errorf("%s: negative interval %s", op, minInterval)
	}
	if _, err := s.db.Exec(ctx, `UPDATE `+table+` SET latest_activity = $2
		WHERE id = $1 AND (latest_activity IS NULL OR latest_activity <= $3)`,
		id, ts(now), ts(now.Add(-minInterval))); err != nil {
		return fmt.Errorf("%s %s: %w", op, id, err)
	}
	return nil
}
