//! Compiles `skillmeat/daemon/v1/daemon.proto` once for every crate of the workspace, with
//! the pure-Rust `protox` compiler (no system `protoc`). The client half is always
//! generated; the server half and the encoded descriptor set (for gRPC reflection) only
//! with the `server` feature.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `compile_fds` prints no rerun-if-changed lines of its own.
    println!("cargo:rerun-if-changed=skillmeat");
    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    let fds = protox::compile(["skillmeat/daemon/v1/daemon.proto"], ["."])?;
    if server {
        let out = PathBuf::from(std::env::var("OUT_DIR")?);
        std::fs::write(
            out.join("skillmeat_descriptor.bin"),
            prost::Message::encode_to_vec(&fds),
        )?;
    }
    tonic_prost_build::configure()
        .build_server(server)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
