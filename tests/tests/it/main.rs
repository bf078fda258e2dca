//! Nova Streaming's integration tests in one binary (one link instead of one per file):
//! each module is one area, run against real PostgreSQL, Redis, nginx-rtmp and clients.
//! Run one area with `cargo nextest run -p nova-tests -E 'test(/^edge_ws::/)'`.

mod asyncapi;
mod audit_listing;
mod audit_trail;
mod auth;
mod broadcast_abr;
mod broadcast_ffmpeg;
mod broadcast_publisher;
mod chaos;
mod chaos_edge;
mod chaos_engines;
mod chaos_postgres;
mod cli;
mod edge_rest;
mod edge_ws;
mod examples;
mod grpcurl;
mod ingest_api;
mod metrics_names;
mod playback_caps;
mod playback_docs;
mod playback_origin;
mod playback_page;
mod playback_policy;
mod playback_tokens;
mod playback_viewers;
mod playback_ws;
mod prometheus;
mod public_doors;
mod public_list;
mod redis_cluster;
mod rtmp_attacks;
mod schemathesis;
mod server;
mod service_auth;
mod stream_api;
mod tls;
mod two_nodes;
mod viewer_page;
mod viewers_api;
mod webhooks_api;
mod webhooks_delivery;
mod webhooks_docs;
mod webhooks_resilience;
mod webhooks_ssrf;
