-- See postgres/00004_audit_events.sql.

-- +goose Up
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    event        TEXT    NOT NULL CHECK (event <> ''),
    outcome      TEXT    NOT NULL DEFAULT '',
    principal_id TEXT    CHECK (principal_id IS NULL OR length(principal_id) = 36),
    provider     TEXT    NOT NULL DEFAULT '',
    identity     TEXT    NOT NULL DEFAULT '',
    client_addr  TEXT    NOT NULL DEFAULT '',
    session_id   TEXT    CHECK (session_id IS NULL OR length(session_id) = 36),
    request_id   TEXT    NOT NULL DEFAULT '',
    detail       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail) AND json_type(detail) = 'object')
) STRICT;
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_principal_id_idx ON audit_events (principal_id, at) WHERE principal_id IS NOT NULL;

-- +goose Down
DROP TABLE audit_events;
