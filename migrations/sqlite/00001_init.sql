-- The session database for the embedded SQLite backend: the same tables,
-- keys, constraints and indexes as ../postgres/00001_init.sql, in SQLite's
-- types. STRICT tables make SQLite check column types as PostgreSQL does.
--
-- UUIDs are TEXT in canonical lower-case form and timestamps are INTEGER
-- microseconds since the Unix epoch (UTC): both compare and sort in the same
-- order as the values they encode, and microseconds match timestamptz.
-- JSON columns are TEXT checked with json_valid.

-- +goose Up
CREATE TABLE principals (
    id              TEXT    PRIMARY KEY CHECK (length(id) = 36),
    type            TEXT    NOT NULL CHECK (type IN ('user', 'service')),
    created_at      INTEGER NOT NULL,
    latest_activity INTEGER
) STRICT;
CREATE INDEX principals_created_at_idx ON principals (created_at, id);

CREATE TABLE identities (
    provider     TEXT    NOT NULL CHECK (provider <> ''),
    external_id  TEXT    NOT NULL CHECK (external_id <> ''),
    principal_id TEXT    NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    latest_login INTEGER,
    PRIMARY KEY (provider, external_id)
) STRICT;
CREATE INDEX identities_principal_id_idx ON identities (principal_id);

CREATE TABLE principal_roles (
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role <> ''),
    PRIMARY KEY (principal_id, role)
) STRICT;

CREATE TABLE api_keys (
    id              TEXT    PRIMARY KEY CHECK (length(id) = 36),
    principal_id    TEXT    NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    first_eight     TEXT    NOT NULL CHECK (length(first_eight) = 8),
    secret_hash     BLOB    NOT NULL UNIQUE CHECK (length(secret_hash) >= 16),
    scopes          TEXT    NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    access_tags     TEXT    CHECK (access_tags IS NULL OR (json_valid(access_tags) AND json_type(access_tags) = 'array')),
    note            TEXT    NOT NULL DEFAULT '',
    expires_at      INTEGER,
    created_at      INTEGER NOT NULL,
    latest_activity INTEGER,
    UNIQUE (principal_id, first_eight)
) STRICT;
CREATE INDEX api_keys_first_eight_idx ON api_keys (first_eight);
CREATE INDEX api_keys_expires_at_idx ON api_keys (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE sessions (
    id                 TEXT    PRIMARY KEY CHECK (length(id) = 36),
    principal_id       TEXT    NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER,
    refresh_expires_at INTEGER NOT NULL,
    refresh_hash       BLOB    NOT NULL CHECK (length(refresh_hash) >= 16),
    prev_refresh_hash  BLOB    CHECK (length(prev_refresh_hash) >= 16),
    rotated_at         INTEGER,
    generation         INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    revoked_at         INTEGER,
    revoked_reason     TEXT    NOT NULL DEFAULT '',
    last_used_at       INTEGER NOT NULL,
    state              TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(state) AND json_type(state) = 'object'),
    CHECK ((prev_refresh_hash IS NULL) = (rotated_at IS NULL)),
    CHECK (revoked_at IS NOT NULL OR revoked_reason = '')
) STRICT;
CREATE INDEX sessions_principal_id_idx ON sessions (principal_id, created_at);
CREATE INDEX sessions_refresh_expires_at_idx ON sessions (refresh_expires_at);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- AUTOINCREMENT: a sequence number is never reused after GC deletes the
-- newest entries, so a follower's "after" cursor stays valid.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT    NOT NULL CHECK (length(session_id) = 36),
    revoked_at INTEGER NOT NULL
) STRICT;
CREATE INDEX revocations_revoked_at_idx ON revocations (revoked_at);

CREATE TABLE pending_devices (
    id               TEXT    PRIMARY KEY CHECK (length(id) = 36),
    provider         TEXT    NOT NULL CHECK (provider <> ''),
    device_code_hash BLOB    NOT NULL UNIQUE CHECK (length(device_code_hash) >= 16),
    user_code        TEXT    NOT NULL CHECK (user_code <> ''),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    session_id       TEXT    REFERENCES sessions (id) ON DELETE CASCADE,
    CHECK (expires_at > created_at),
    UNIQUE (provider, user_code)
) STRICT;
CREATE INDEX pending_devices_expires_at_idx ON pending_devices (expires_at);
CREATE INDEX pending_devices_session_id_idx ON pending_devices (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE auth_states (
    state_hash    BLOB    PRIMARY KEY CHECK (length(state_hash) >= 16),
    provider      TEXT    NOT NULL CHECK (provider <> ''),
    code_verifier TEXT    NOT NULL DEFAULT '',
    nonce         TEXT    NOT NULL DEFAULT '',
    extra         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(extra) AND json_type(extra) = 'object'),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    CHECK (expires_at > created_at)
) STRICT;
CREATE INDEX auth_states_expires_at_idx ON auth_states (expires_at);

CREATE TABLE login_attempts (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    count        INTEGER NOT NULL CHECK (count > 0),
    CHECK (window_end > window_start)
) STRICT;
CREATE INDEX login_attempts_window_end_idx ON login_attempts (window_end);

-- +goose Down
DROP TABLE login_attempts;
DROP TABLE auth_states;
DROP TABLE pending_devices;
DROP TABLE revocations;
DROP TABLE sessions;
DROP TABLE api_keys;
DROP TABLE principal_roles;
DROP TABLE identities;
DROP TABLE principals;
