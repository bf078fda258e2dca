//! External tools the tests drive: grpcurl and s3s-fs (from .nova/tools, see
//! scripts/install-deps.sh).

use std::path::PathBuf;

/// Returns the workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Returns the grpcurl binary: `$NOVA_GRPCURL`, else `.nova/tools/venv/bin/grpcurl`.
pub fn grpcurl() -> PathBuf {
    let path = std::env::var_os("NOVA_GRPCURL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".nova/tools/venv/bin/grpcurl"));
    assert!(
        path.exists(),
        "grpcurl not found at {}: run `make deps` (scripts/install-deps.sh)",
        path.display()
    );
    path
}

/// Returns the s3s-fs S3 server: `$NOVA_S3S_FS`, else `.nova/tools/cargo/bin/s3s-fs`.
pub fn s3s_fs() -> PathBuf {
    let path = std::env::var_os("NOVA_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".nova/tools/cargo/bin/s3s-fs"));
    assert!(
        path.exists(),
        "s3s-fs not found at {}: run `make deps` (scripts/install-deps.sh)",
        path.display()
    );
    path
}
