-- The session database: who the callers are (principals, their external
-- identities, roles and API keys) and the state of their logins (sessions with
-- rotating refresh tokens, the revocation log, pending device-code logins, OAuth
-- state between the legs of a browser login, login-failure counters).
--
-- Secrets are never stored, only their hashes. Every timestamp is timestamptz
-- and written in UTC by the server, which passes "now" in rather than reading
-- the database clock, so replicas and tests agree on time.

-- +goose Up
CREATE TABLE principals (
    id              uuid        PRIMARY KEY,
    type            text        NOT NULL CHECK (type IN ('user', 'service')),
    created_at      timestamptz NOT NULL,
    latest_activity timestamptz
);
-- ListPrincipals pages in creation order.
CREATE INDEX principals_created_at_idx ON principals (created_at, id);

CREATE TABLE identities (
    provider     text        NOT NULL CHECK (provider <> ''),
    external_id  text        NOT NULL CHECK (external_id <> ''),
    principal_id uuid        NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    latest_login timestamptz,
    PRIMARY KEY (provider, external_id)
);
CREATE INDEX identities_principal_id_idx ON identities (principal_id);

CREATE TABLE principal_roles (
    principal_id uuid NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role <> ''),
    PRIMARY KEY (principal_id, role)
);

CREATE TABLE api_keys (
    id              uuid        PRIMARY KEY,
    principal_id    uuid        NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    first_eight     text        NOT NULL CHECK (length(first_eight) = 8),
    secret_hash     bytea       NOT NULL UNIQUE CHECK (octet_length(secret_hash) >= 16),
    scopes          jsonb       NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
    -- NULL means "no restriction", an empty array means "no tags".
    access_tags     jsonb       CHECK (access_tags IS NULL OR jsonb_typeof(access_tags) = 'array'),
    note            text        NOT NULL DEFAULT '',
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL,
    latest_activity timestamptz,
    -- Tiled identifies a key to revoke by its owner and first eight characters.
    UNIQUE (principal_id, first_eight)
);
-- Authentication looks keys up by prefix, across principals.
CREATE INDEX api_keys_first_eight_idx ON api_keys (first_eight);
CREATE INDEX api_keys_expires_at_idx ON api_keys (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE sessions (
    id                 uuid        PRIMARY KEY,
    principal_id       uuid        NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz,
    refresh_expires_at timestamptz NOT NULL,
    refresh_hash       bytea       NOT NULL CHECK (octet_length(refresh_hash) >= 16),
    prev_refresh_hash  bytea       CHECK (octet_length(prev_refresh_hash) >= 16),
    rotated_at         timestamptz,
    generation         bigint      NOT NULL DEFAULT 0 CHECK (generation >= 0),
    revoked_at         timestamptz,
    revoked_reason     text        NOT NULL DEFAULT '',
    last_used_at       timestamptz NOT NULL,
    state              jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(state) = 'object'),
    CHECK ((prev_refresh_hash IS NULL) = (rotated_at IS NULL)),
    CHECK (revoked_at IS NOT NULL OR revoked_reason = '')
);
CREATE INDEX sessions_principal_id_idx ON sessions (principal_id, created_at);
-- GC finds sessions by whichever of the three ends came first.
CREATE INDEX sessions_refresh_expires_at_idx ON sessions (refresh_expires_at);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- No foreign key: an entry must outlive its session (GC may delete the
-- session first) for as long as access tokens issued for it can be presented.
CREATE TABLE revocations (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid        NOT NULL,
    revoked_at timestamptz NOT NULL
);
CREATE INDEX revocations_revoked_at_idx ON revocations (revoked_at);

CREATE TABLE pending_devices (
    id               uuid        PRIMARY KEY,
    provider         text        NOT NULL CHECK (provider <> ''),
    device_code_hash bytea       NOT NULL UNIQUE CHECK (octet_length(device_code_hash) >= 16),
    user_code        text        NOT NULL CHECK (user_code <> ''),
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    session_id       uuid        REFERENCES sessions (id) ON DELETE CASCADE,
    CHECK (expires_at > created_at),
    -- Expired rows with the same code are deleted before an insert, so this
    -- index only ever sees codes that are in use.
    UNIQUE (provider, user_code)
);
CREATE INDEX pending_devices_expires_at_idx ON pending_devices (expires_at);
CREATE INDEX pending_devices_session_id_idx ON pending_devices (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE auth_states (
    state_hash    bytea       PRIMARY KEY CHECK (octet_length(state_hash) >= 16),
    provider      text        NOT NULL CHECK (provider <> ''),
    code_verifier text        NOT NULL DEFAULT '',
    nonce         text        NOT NULL DEFAULT '',
    extra         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(extra) = 'object'),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX auth_states_expires_at_idx ON auth_states (expires_at);

CREATE TABLE login_attempts (
    key          text        PRIMARY KEY,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    count        integer     NOT NULL CHECK (count > 0),
    CHECK (window_end > window_start)
);
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
