-- See postgres/00002_rotation_pending.sql.

-- +goose Up
ALTER TABLE sessions ADD COLUMN rotation_pending INTEGER NOT NULL DEFAULT 0 CHECK (rotation_pending IN (0, 1));

-- +goose Down
ALTER TABLE sessions DROP COLUMN rotation_pending;
