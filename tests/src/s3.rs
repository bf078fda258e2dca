//! A real S3 API server on loopback for the recording tests: the `s3s-fs` binary
//! (installed by scripts/install-deps.sh) over a temporary folder, with SigV4
//! authentication on, and the asset-store arguments that point at it.

use std::{net::SocketAddr, time::Duration};

use nova_control_plane::config::StoreArgs;
use nova_stack::wait::free_port;
use tokio::process::{Child, Command};

use crate::{tools, wait};

/// Access key id of the test server.
const ACCESS_KEY: &str = "NOVATESTACCESSKEY";
/// Secret key of the test server.
const SECRET_KEY: &str = "nova-test-secret-key-0123456789";

/// A running s3s-fs; killed on drop.
pub struct S3Server {
    /// The process.
    _child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its storage: one folder per bucket.
    pub root: tempfile::TempDir,
    /// The bucket the tests use.
    pub bucket: String,
}

impl S3Server {
    /// Starts s3s-fs on a free loopback port with one bucket, and waits (at most
    /// 20 s) until it accepts connections.
    pub async fn start() -> Self {
        let root = tempfile::Builder::new()
            .prefix("nova-s3-")
            .tempdir()
            .expect("temp dir for s3s-fs");
        let bucket = "nova-assets".to_owned();
        std::fs::create_dir(root.path().join(&bucket)).expect("create the bucket folder");
        let port = free_port().expect("a free port");
        let child = Command::new(tools::s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("s3s-fs starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait::until(
            &format!("s3s-fs to accept on {addr}"),
            Duration::from_secs(20),
            || async { tokio::net::TcpStream::connect(addr).await.map(drop) },
        )
        .await;
        Self {
            _child: child,
            addr,
            root,
            bucket,
        }
    }

    /// Returns the asset-store arguments of this server's bucket.
    pub fn store(&self) -> StoreArgs {
        StoreArgs {
            asset_store: Some(format!("s3://{}", self.bucket)),
            asset_s3_endpoint: Some(format!("http://{}", self.addr)),
            asset_s3_region: "us-east-1".into(),
            asset_s3_access_key_id: Some(ACCESS_KEY.into()),
            asset_s3_secret_access_key: Some(SECRET_KEY.into()),
        }
    }

    /// Returns the folder holding the bucket's objects.
    pub fn bucket_dir(&self) -> std::path::PathBuf {
        self.root.path().join(&self.bucket)
    }
}
