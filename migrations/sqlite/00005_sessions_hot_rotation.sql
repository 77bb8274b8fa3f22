-- The PostgreSQL schema drops the index on refresh_expires_at so that a
-- refresh rotation changes no indexed column (see its 00005). SQLite has
-- no HOT updates, but every index still costs each rotation a write, and
-- the two dialects keep the same indexes and versions.

-- +goose Up
DROP INDEX IF EXISTS sessions_refresh_expires_at_idx;

-- +goose Down
CREATE INDEX sessions_refresh_expires_at_idx ON sessions (refresh_expires_at);
