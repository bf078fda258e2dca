-- Viewer figures of live and completed streams, persisted by the sampler every
-- sampling interval (and for a few intervals after completion), so a Redis restart
-- or flush loses at most one interval. Redis is seeded back from these figures.
-- The figures only grow: an upsert keeps the greater of the stored and new value.
CREATE TABLE stream_analytics (
    stream_id       uuid PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
    peak_viewers    bigint NOT NULL DEFAULT 0 CHECK (peak_viewers >= 0),
    unique_viewers  bigint NOT NULL DEFAULT 0 CHECK (unique_viewers >= 0),
    watch_ms        bigint NOT NULL DEFAULT 0 CHECK (watch_ms >= 0),
    -- Redis's HyperLogLog of the stream's viewers (its own encoding), merged back
    -- into Redis after it lost it so unique viewers stay distinct across the loss.
    uniques_hll     bytea,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
