-- See postgres/00003_auth_log.sql. SQLite cannot drop NOT NULL or add a
-- table constraint in place, so the table is rebuilt.

-- +goose Up
CREATE TABLE revocations_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL DEFAULT 'session'
                 CHECK (kind IN ('session', 'principal', 'principal_deleted', 'api_key')),
    session_id   TEXT    CHECK (session_id IS NULL OR length(session_id) = 36),
    principal_id TEXT    CHECK (principal_id IS NULL OR length(principal_id) = 36),
    api_key_id   TEXT    CHECK (api_key_id IS NULL OR length(api_key_id) = 36),
    revoked_at   INTEGER NOT NULL,
    CHECK ((kind = 'session' AND session_id IS NOT NULL) OR
           (kind IN ('principal', 'principal_deleted') AND principal_id IS NOT NULL) OR
           (kind = 'api_key' AND api_key_id IS NOT NULL AND principal_id IS NOT NULL))
) STRICT;
INSERT INTO revocations_new (seq, kind, session_id, revoked_at)
    SELECT seq, 'session', session_id, revoked_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_revoked_at_idx ON revocations (revoked_at);

-- +goose Down
CREATE TABLE revocations_old (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT    NOT NULL CHECK (length(session_id) = 36),
    revoked_at INTEGER NOT NULL
) STRICT;
INSERT INTO revocations_old (seq, session_id, revoked_at)
    SELECT seq, session_id, revoked_at FROM revocations WHERE kind = 'session';
DROP TABLE revocations;
ALTER TABLE revocations_old RENAME TO revocations;
CREATE INDEX revocations_revoked_at_idx ON revocations (revoked_at);
