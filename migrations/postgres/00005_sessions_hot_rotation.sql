-- A refresh rotation rewrites refresh_expires_at, and while that column was
-- indexed no rotation could be a HOT update: every one wrote a new entry in
-- each of the table's indexes, so rotations cost more as the table grew and
-- left index bloat behind. Without that index, and with room left on each
-- page (fillfactor), a rotation changes no indexed column and can stay on
-- its page. The garbage collector, which used this index, now scans the
-- table: once every gc interval, on one replica, off the request path.

-- +goose Up
DROP INDEX IF EXISTS sessions_refresh_expires_at_idx;
ALTER TABLE sessions SET (fillfactor = 80);

-- +goose Down
ALTER TABLE sessions RESET (fillfactor);
CREATE INDEX sessions_refresh_expires_at_idx ON sessions (refresh_expires_at);
