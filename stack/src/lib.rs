//! The local Nova Streaming stack, as code: private PostgreSQL and Redis instances on
//! loopback, and the Nova services as child processes.
//!
//! `postgres` and `redis` start and stop one private engine each; `process` spawns,
//! tracks and stops service processes; `wait` holds the bounded readiness waits;
//! `stack` composes them into `up`, `dev` and `down` for the `nova-stack` binary
//! (behind `make dev/up/down`). The test harness starts the engines through the
//! same `postgres` and `redis` modules.

pub mod demo;
pub mod env_file;
pub mod jwt;
pub mod nginx;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod stack;
pub mod wait;
