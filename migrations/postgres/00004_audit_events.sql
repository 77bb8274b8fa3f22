-- The audit trail: one row per security-relevant event (logins and their
-- failures, refresh-token reuse, revocations, API keys created and deleted,
-- principals created and roles granted), kept for server.audit_retention and
-- deleted by GC in batches. No secret, token or password is ever stored: a
-- key is named by its first eight characters, which its owner's listings
-- show anyway. No foreign keys: an event outlives the principal, session or
-- key it names. (Version 00004: 00003 is another change's.)

-- +goose Up
CREATE TABLE audit_events (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    event        text        NOT NULL CHECK (event <> ''),
    outcome      text        NOT NULL DEFAULT '',
    principal_id uuid,
    provider     text        NOT NULL DEFAULT '',
    identity     text        NOT NULL DEFAULT '',
    client_addr  text        NOT NULL DEFAULT '',
    session_id   uuid,
    request_id   text        NOT NULL DEFAULT '',
    detail       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);
-- GC deletes by age; investigations read by time and by principal.
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_principal_id_idx ON audit_events (principal_id, at) WHERE principal_id IS NOT NULL;

-- +goose Down
DROP TABLE audit_events;
