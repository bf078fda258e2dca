//! Diesel table definitions, kept in step with `migrations/` by hand.

diesel::table! {
    /// Broadcast slots; see `migrations/*_streams/up.sql`.
    streams (id) {
        /// Public id (UUIDv7).
        id -> Uuid,
        /// Owning principal.
        owner -> Text,
        /// Title.
        title -> Text,
        /// `pending`, `active`, `interrupted` or `completed`.
        status -> Text,
        /// SHA-256 of the stream key.
        key_hash -> Bytea,
        /// When the key was issued.
        key_issued_at -> Timestamptz,
        /// Creation time.
        created_at -> Timestamptz,
        /// Last change.
        updated_at -> Timestamptz,
        /// First publish.
        started_at -> Nullable<Timestamptz>,
        /// Completion.
        ended_at -> Nullable<Timestamptz>,
        /// End of the reconnect window while interrupted.
        reconnect_deadline -> Nullable<Timestamptz>,
        /// Ingest node holding the broadcast.
        ingest_node -> Nullable<Text>,
        /// Last callback from the ingest node.
        last_ingest_at -> Nullable<Timestamptz>,
        /// HLS media playlist URL.
        hls_url -> Nullable<Text>,
        /// DASH manifest URL.
        dash_url -> Nullable<Text>,
        /// HLS master playlist URL (ABR).
        hls_master_url -> Nullable<Text>,
        /// Latest ingest health as JSON.
        ingest_health -> Nullable<Jsonb>,
        /// The broadcaster's connection id on the ingest node.
        ingest_client -> Nullable<Text>,
        /// `public` or `signed`.
        playback_policy -> Text,
        /// Cap on concurrent viewers; NULL for none.
        max_viewers -> Nullable<Int4>,
    }
}

diesel::table! {
    /// Durable lifecycle event log.
    stream_events (id) {
        /// Position in the log; the resume cursor.
        id -> Int8,
        /// Stream the event belongs to.
        stream_id -> Uuid,
        /// Event kind, e.g. `stream_ended`.
        kind -> Text,
        /// Event fields as JSON.
        payload -> Jsonb,
        /// When it happened.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Sampled time series of live streams.
    stream_metrics (stream_id, at) {
        /// Stream.
        stream_id -> Uuid,
        /// Sample time.
        at -> Timestamptz,
        /// Live viewers.
        viewers -> Int4,
        /// Ingest bitrate, kb/s.
        ingest_bitrate_kbps -> Int4,
    }
}

diesel::table! {
    /// Persisted viewer figures of live and completed streams.
    stream_analytics (stream_id) {
        /// Stream.
        stream_id -> Uuid,
        /// Highest concurrent viewers.
        peak_viewers -> Int8,
        /// Approximate distinct viewers.
        unique_viewers -> Int8,
        /// Accumulated watch time, milliseconds.
        watch_ms -> Int8,
        /// Redis's HyperLogLog of viewers.
        uniques_hll -> Nullable<Bytea>,
        /// Last persisted.
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(stream_events -> streams (stream_id));
diesel::joinable!(stream_metrics -> streams (stream_id));
diesel::joinable!(stream_analytics -> streams (stream_id));
diesel::allow_tables_to_appear_in_same_query!(
    streams,
    stream_events,
    stream_metrics,
    stream_analytics
);

diesel::table! {
    /// ES256 keys that sign playback tokens; see `migrations/*_signing_keys/up.sql`.
    signing_keys (id) {
        /// Key id, the tokens' `kid`.
        id -> Uuid,
        /// Owning principal; NULL for the platform key.
        owner -> Nullable<Text>,
        /// Uncompressed SEC1 P-256 point.
        public_key -> Bytea,
        /// PKCS#8 DER; the platform key's only.
        private_key -> Nullable<Bytea>,
        /// Creation time.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// The audit trail; see `migrations/*_audit_records/up.sql`.
    audit_records (id) {
        /// Record id (UUIDv7).
        id -> Uuid,
        /// Stream changed; NULL for owner-level changes.
        stream_id -> Nullable<Uuid>,
        /// Resource name changed.
        resource -> Text,
        /// Owner of the resource.
        owner -> Text,
        /// Principal who acted.
        actor -> Text,
        /// Role of the calling service.
        service -> Text,
        /// Client address the edge saw.
        client_ip -> Nullable<Text>,
        /// What happened, as stored.
        action -> Text,
        /// Names of the fields changed.
        fields -> Array<Text>,
        /// Commit time (transaction start).
        created_at -> Timestamptz,
    }
}
