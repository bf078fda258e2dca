//! The asset store of Nova Streaming: where ingest-hooks put the recorded pieces of
//! broadcasts and the control plane's remux worker puts on-demand assets, on the
//! local filesystem or on S3-compatible storage, through the `object_store` crate.
//!
//! `config` reads the store from `NOVA_ASSET_STORE` (a `file://` or `s3://` URL) and
//! the S3 variables; `store` opens it and moves whole files in and out of it, and
//! presigns reads for the VOD origin; `keys` is the layout of objects in it, the one
//! place that names them.

pub mod config;
pub mod keys;
pub mod store;

pub use config::StoreArgs;
pub use keys::VodFile;
pub use store::{AssetStore, StoreError};
