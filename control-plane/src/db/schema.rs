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
        /// Whether publishes are recorded into assets.
        record -> Bool,
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
        /// Owner of the stream (filled by a trigger from `streams`).
        owner -> Nullable<Text>,
    }
}

diesel::table! {
    /// Events of an owner's account that belong to no stream; positions share the
    /// `stream_events` sequence (see `migrations/*_webhooks/up.sql`).
    account_events (id) {
        /// Position in the log.
        id -> Int8,
        /// Owner the event belongs to.
        owner -> Text,
        /// Event kind, e.g. `webhook_disabled`.
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

diesel::table! {
    /// Webhook endpoints; see `migrations/*_webhooks/up.sql`.
    webhook_endpoints (id) {
        /// Endpoint id (UUIDv7).
        id -> Uuid,
        /// Owning principal.
        owner -> Text,
        /// Where deliveries are POSTed.
        url -> Text,
        /// Webhook event types delivered; empty for every type.
        event_types -> Array<Text>,
        /// Signing secret.
        secret -> Text,
        /// The secret before the last rotation, still signing until it expires.
        previous_secret -> Nullable<Text>,
        /// When `previous_secret` stops signing.
        previous_secret_expires_at -> Nullable<Timestamptz>,
        /// Whether deliveries are made.
        enabled -> Bool,
        /// `owner` or `failures` while disabled.
        disabled_reason -> Nullable<Text>,
        /// When it was disabled.
        disabled_at -> Nullable<Timestamptz>,
        /// Last log position handled.
        log_position -> Int8,
        /// Attempts at the event after `log_position`.
        attempts -> Int4,
        /// Consecutive failed attempts.
        failures -> Int4,
        /// Start of the current run of failures.
        failing_since -> Nullable<Timestamptz>,
        /// No attempt before this time (backoff).
        next_attempt_at -> Timestamptz,
        /// Dispatcher holding the endpoint.
        lease_holder -> Nullable<Uuid>,
        /// End of the holder's lease.
        lease_until -> Nullable<Timestamptz>,
        /// Creation time.
        created_at -> Timestamptz,
        /// Last change by its owner.
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Webhook delivery attempts.
    webhook_attempts (id) {
        /// Attempt id (UUIDv7).
        id -> Uuid,
        /// Endpoint.
        webhook_id -> Uuid,
        /// Log position of the event.
        event_id -> Int8,
        /// Webhook event type.
        event_type -> Text,
        /// Attempt number for this event (manual redeliveries count on).
        attempt -> Int4,
        /// Whether a manual redelivery.
        manual -> Bool,
        /// Outcome, as stored.
        outcome -> Text,
        /// HTTP status answered, if any.
        status_code -> Nullable<Int4>,
        /// Time to the answer or failure, milliseconds.
        latency_ms -> Int4,
        /// What failed, if anything.
        error -> Nullable<Text>,
        /// When the attempt was made.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Manual redeliveries waiting for a dispatcher.
    webhook_redeliveries (webhook_id, event_id) {
        /// Endpoint.
        webhook_id -> Uuid,
        /// Log position of the event.
        event_id -> Int8,
        /// When it was asked for.
        requested_at -> Timestamptz,
    }
}

diesel::joinable!(webhook_attempts -> webhook_endpoints (webhook_id));
diesel::joinable!(webhook_redeliveries -> webhook_endpoints (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(
    webhook_endpoints,
    webhook_attempts,
    webhook_redeliveries
);

diesel::table! {
    /// On-demand assets; see `migrations/*_assets/up.sql`.
    assets (id) {
        /// Asset id (UUIDv7).
        id -> Uuid,
        /// Recorded stream.
        stream_id -> Uuid,
        /// `preparing`, `ready` or `errored`.
        status -> Text,
        /// Why it errored.
        error_reason -> Nullable<Text>,
        /// Recorded publishes that owe a piece.
        publishes -> Int4,
        /// Store folder of the READY run.
        prefix -> Nullable<Text>,
        /// Playing time, milliseconds.
        duration_ms -> Nullable<Int8>,
        /// Bytes stored.
        size_bytes -> Nullable<Int8>,
        /// Creation time.
        created_at -> Timestamptz,
        /// When it became READY.
        ready_at -> Nullable<Timestamptz>,
        /// Last change.
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Recorded pieces of assets, in the store.
    asset_pieces (asset_id, object_key) {
        /// Asset.
        asset_id -> Uuid,
        /// Object key in the store.
        object_key -> Text,
        /// Ingest node that recorded it.
        ingest_node -> Text,
        /// Size in bytes.
        size_bytes -> Int8,
        /// When recording started.
        started_at -> Timestamptz,
        /// When it was handed over.
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Durable remux jobs.
    remux_jobs (asset_id) {
        /// Asset to make.
        asset_id -> Uuid,
        /// Not before this (backoff).
        run_after -> Timestamptz,
        /// Attempts started.
        attempts -> Int4,
        /// Held by a worker until then.
        lease_until -> Nullable<Timestamptz>,
        /// Version of the holding run.
        lease_token -> Nullable<Uuid>,
        /// Why the last attempt failed.
        last_error -> Nullable<Text>,
        /// When it was queued (the stream completed).
        created_at -> Timestamptz,
    }
}

diesel::table! {
    /// Store objects and folders to delete.
    store_garbage (prefix) {
        /// Object key or folder.
        prefix -> Text,
        /// When it became garbage.
        created_at -> Timestamptz,
    }
}

diesel::joinable!(assets -> streams (stream_id));
diesel::joinable!(asset_pieces -> assets (asset_id));
diesel::joinable!(remux_jobs -> assets (asset_id));
diesel::allow_tables_to_appear_in_same_query!(streams, assets, asset_pieces, remux_jobs);
