-- A rotation is pending until the server that made it has received the
-- database's answer, so it knows the new refresh token went out. While it is
-- pending the previous token is exchanged for the current one however late it
-- comes: a rotation whose request answered an error (the database stalled,
-- the statement committed after the server gave up) must not turn the
-- client's token into a "reused" one that revokes its session. Existing
-- sessions are not pending: their tokens went out long ago.

-- +goose Up
ALTER TABLE sessions ADD COLUMN rotation_pending boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE sessions DROP COLUMN rotation_pending;
