//! Where the asset store is, read from the environment by every binary that uses it
//! (flattened into each one's `Config`).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `NOVA_ASSET_STORE` | (none: recording off) | `file:///absolute/folder` or `s3://bucket` |
//! | `NOVA_ASSET_S3_ENDPOINT` | (AWS) | S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (path-style requests) |
//! | `NOVA_ASSET_S3_REGION` | `us-east-1` | region the requests are signed for |
//! | `NOVA_ASSET_S3_ACCESS_KEY_ID` / `NOVA_ASSET_S3_SECRET_ACCESS_KEY` | (AWS's own chain: `AWS_*` variables, web identity) | credentials |

use nova_runtime::Secret;

/// The asset-store variables; see the module docs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Where recorded pieces and assets are stored: `file:///folder` or
    /// `s3://bucket`; unset turns recording off.
    #[arg(long, env = "NOVA_ASSET_STORE")]
    pub asset_store: Option<String>,
    /// S3-compatible endpoint (`http://host:port` or `https://…`); unset means AWS.
    #[arg(long, env = "NOVA_ASSET_S3_ENDPOINT")]
    pub asset_s3_endpoint: Option<String>,
    /// Region S3 requests are signed for.
    #[arg(long, env = "NOVA_ASSET_S3_REGION", default_value = "us-east-1")]
    pub asset_s3_region: String,
    /// S3 access key id; unset uses AWS's own credential chain.
    #[arg(long, env = "NOVA_ASSET_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub asset_s3_access_key_id: Option<Secret>,
    /// S3 secret access key.
    #[arg(long, env = "NOVA_ASSET_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub asset_s3_secret_access_key: Option<Secret>,
}

impl StoreArgs {
    /// Returns the arguments of a store at `url` (a `file://` URL needs nothing else).
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            asset_store: Some(url.into()),
            asset_s3_region: "us-east-1".into(),
            ..Self::default()
        }
    }
}
