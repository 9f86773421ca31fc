//! Compiles the daemon's proto (shared with the server, in `../proto`) client-only, with
//! the pure-Rust `protox` compiler: smctl needs no `protoc` and no server code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto");
    let fds = protox::compile(["skillmeat/daemon/v1/daemon.proto"], ["../proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
