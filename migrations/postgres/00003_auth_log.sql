-- The revocation log becomes the log of every change a replica's cache of the
-- authentication state must follow, not only session revocations: an API key
-- deleted, a principal's roles or identities changed, a principal deleted.
-- Each entry is appended (under the advisory lock that keeps sequence order
-- equal to commit order) in the transaction that makes the change, and that
-- transaction sends a NOTIFY, which PostgreSQL delivers only after commit.
-- A replica that lost its listener connection catches up from here.
--
-- revoked_at is when the change happened; an entry is kept (GC) at least as
-- long as the access tokens it may deny.

-- +goose Up
ALTER TABLE revocations ALTER COLUMN session_id DROP NOT NULL;
ALTER TABLE revocations
    ADD COLUMN kind text NOT NULL DEFAULT 'session'
        CHECK (kind IN ('session', 'principal', 'principal_deleted', 'api_key')),
    ADD COLUMN principal_id uuid,
    ADD COLUMN api_key_id uuid;
ALTER TABLE revocations ADD CONSTRAINT revocations_subject CHECK (
    (kind = 'session' AND session_id IS NOT NULL) OR
    (kind IN ('principal', 'principal_deleted') AND principal_id IS NOT NULL) OR
    (kind = 'api_key' AND api_key_id IS NOT NULL AND principal_id IS NOT NULL));

-- +goose Down
DELETE FROM revocations WHERE kind <> 'session';
ALTER TABLE revocations
    DROP CONSTRAINT revocations_subject,
    DROP COLUMN api_key_id,
    DROP COLUMN principal_id,
    DROP COLUMN kind;
ALTER TABLE revocations ALTER COLUMN session_id SET NOT NULL;
