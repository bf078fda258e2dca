//! Test harness: real engines, a fresh database per test, the control plane started
//! in-process on a free port, and authenticated gRPC clients.
//!
//! Under `make test` the engines come from `nova-stack test-env`
//! (`NOVA_TEST_DATABASE_URL`, `NOVA_TEST_REDIS_URL`); run alone, each test starts its
//! own through the same `nova-stack` code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod audience;
pub mod clients;
pub mod context;
pub mod edge;
pub mod events;
pub mod ffmpeg;
pub mod figures;
pub mod follower;
pub mod frames;
pub mod hls;
pub mod http;
pub mod live;
pub mod on_air;
pub mod playback;
pub mod private_redis;
pub mod processes;
pub mod prometheus;
pub mod proxy;
pub mod publisher;
pub mod redis_cluster;
pub mod s3;
pub mod stream_probe;
pub mod tls;
pub mod tools;
pub mod vod;
pub mod wait;
pub mod watcher;
pub mod webhook_receiver;
pub mod webhooks;
pub mod ws_viewers;

pub use context::TestContext;
