-- Recording into on-demand assets (docs/recording.md).
-- A stream with `record` on has each publish recorded by its ingest node.
ALTER TABLE streams ADD COLUMN record boolean NOT NULL DEFAULT false;

-- One asset per recorded broadcast (a publish with its resumes). `publishes` counts
-- the recorded publishes that owe a piece; the remux waits for them (or for
-- NOVA_RECORDING_WAIT). A READY asset names the store folder of the remux run
-- that made it (`assets/<id>/<version>`), so a run that died half way is never
-- pointed at.
CREATE TABLE assets (
    id            uuid PRIMARY KEY,
    stream_id     uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'preparing'
                  CHECK (status IN ('preparing', 'ready', 'errored')),
    error_reason  text,
    publishes     integer NOT NULL DEFAULT 0 CHECK (publishes >= 0),
    prefix        text,
    duration_ms   bigint CHECK (duration_ms >= 0),
    size_bytes    bigint CHECK (size_bytes >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    ready_at      timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'ready') = (prefix IS NOT NULL AND ready_at IS NOT NULL
                                 AND duration_ms IS NOT NULL AND size_bytes IS NOT NULL)),
    CHECK ((status = 'errored') = (error_reason IS NOT NULL))
);
-- Listing by stream, newest first (ids are UUIDv7).
CREATE INDEX assets_stream_idx ON assets (stream_id, id DESC);
-- A stream has one broadcast (COMPLETED is terminal): at most one asset prepares.
CREATE UNIQUE INDEX assets_preparing_idx ON assets (stream_id) WHERE status = 'preparing';
-- Retention and the playback rules.
CREATE INDEX assets_created_idx ON assets (created_at);

-- Recorded pieces (one per publish) handed over by ingest-hooks, in the store.
CREATE TABLE asset_pieces (
    asset_id     uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    object_key   text NOT NULL,
    ingest_node  text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    started_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, object_key)
);

-- The remux worker's durable jobs, one per asset of a completed stream (queued in
-- the completing transaction). A job is due once every recorded publish delivered
-- its piece, or NOVA_RECORDING_WAIT after it was queued. A worker claims a due job
-- (FOR UPDATE SKIP LOCKED), counts the attempt and holds a lease it renews; a
-- worker that dies lets its lease run out and another claims the job.
-- `lease_token` is the holding run's version: only that run may finish the job.
CREATE TABLE remux_jobs (
    asset_id         uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
    run_after        timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_until      timestamptz,
    lease_token      uuid,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX remux_jobs_due_idx ON remux_jobs (run_after);

-- Store folders and objects no longer referenced (deleted assets, pieces of
-- finished assets), deleted by the worker; rows go once the objects are gone, so a
-- failure or a crash retries.
CREATE TABLE store_garbage (
    prefix      text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
