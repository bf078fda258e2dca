-- Streams: one row per broadcast slot. The stream key is stored only as its SHA-256.
CREATE TABLE streams (
    id                  uuid PRIMARY KEY,
    owner               text NOT NULL,
    title               text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'active', 'interrupted', 'completed')),
    key_hash            bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    key_issued_at       timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    ended_at            timestamptz,
    reconnect_deadline  timestamptz,
    ingest_node         text,
    last_ingest_at      timestamptz,
    hls_url             text,
    dash_url            text,
    hls_master_url      text,
    ingest_health       jsonb
);

-- Listing: newest first (ids are UUIDv7, so id order is creation order), by status or owner.
CREATE INDEX streams_status_id_idx ON streams (status, id DESC);
CREATE INDEX streams_owner_id_idx ON streams (owner, id DESC);
-- The reaper: live streams whose ingest went quiet, interrupted ones whose window closed.
CREATE INDEX streams_active_last_ingest_idx ON streams (last_ingest_at) WHERE status = 'active';
CREATE INDEX streams_interrupted_deadline_idx ON streams (reconnect_deadline) WHERE status = 'interrupted';

-- Durable event log: one row per lifecycle transition, written in the same transaction.
CREATE TABLE stream_events (
    id          bigserial PRIMARY KEY,
    stream_id   uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_events_stream_id_idx ON stream_events (stream_id, id);
