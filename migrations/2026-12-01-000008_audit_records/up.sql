-- The audit trail: one row per change made through the API, inserted in the same
-- transaction as the change. `fields` holds the names of the fields set or changed,
-- never values of secrets. No foreign key to streams: records outlive nothing they
-- describe, and an owner-level change (a signing key) has no stream.
CREATE TABLE audit_records (
    id          uuid PRIMARY KEY,
    stream_id   uuid,
    resource    text NOT NULL,
    owner       text NOT NULL,
    actor       text NOT NULL,
    service     text NOT NULL,
    client_ip   text,
    action      text NOT NULL,
    fields      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Keyset pages, newest first, by stream and by owner.
CREATE INDEX audit_records_stream_idx ON audit_records (stream_id, created_at DESC, id DESC);
CREATE INDEX audit_records_owner_idx ON audit_records (owner, created_at DESC, id DESC);
