//! Compiles `nova/streaming/v1/*.proto` into Rust and writes the descriptor set
//! that the control plane serves through gRPC reflection.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "nova/streaming/v1/stream.proto",
    "nova/streaming/v1/stream_service.proto",
    "nova/streaming/v1/ingest_service.proto",
    "nova/streaming/v1/session_service.proto",
    "nova/streaming/v1/analytics_service.proto",
    "nova/streaming/v1/event_service.proto",
    "nova/streaming/v1/playback_service.proto",
    "nova/streaming/v1/audit_service.proto",
    "nova/streaming/v1/webhook_service.proto",
    "nova/streaming/v1/asset_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        use_vendored_protoc(protoc_bin_vendored::protoc_bin_path()?);
    }
    let out = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("nova_descriptor.bin"))
        .generate_default_stubs(true)
        .compile_protos(PROTOS, &["."])?;
    println!("cargo:rerun-if-changed=nova");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}

/// Points tonic-prost-build at the protoc shipped by `protoc-bin-vendored`.
#[allow(unsafe_code)]
fn use_vendored_protoc(path: PathBuf) {
    // SAFETY: build scripts are single-threaded; nothing reads the environment concurrently.
    unsafe { env::set_var("PROTOC", path) };
}
