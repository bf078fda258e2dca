-- Time series of live streams, written every few seconds by one sampler replica.
-- The primary key serves per-stream window queries; the BRIN index keeps time-range
-- scans and retention deletes cheap over months of rows.
CREATE TABLE stream_metrics (
    stream_id            uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    at                   timestamptz NOT NULL,
    viewers              integer NOT NULL CHECK (viewers >= 0),
    ingest_bitrate_kbps  integer NOT NULL CHECK (ingest_bitrate_kbps >= 0),
    PRIMARY KEY (stream_id, at)
);
CREATE INDEX stream_metrics_at_brin_idx ON stream_metrics USING brin (at);
