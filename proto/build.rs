//! Compiles `skillmeat/daemon/v1/daemon.proto` once for every crate of the workspace, with
//! the pure-Rust `protox` compiler (no system `protoc`). The client half is always
//! generated; the server half and the encoded descriptor set (for gRPC reflection) only
//! with the `server` feature.
//!
//! It also embeds the git commit both binaries' `--version` names, when built from a git
//! checkout of this project, as `SKILLMEATD_REVISION` (`1a2b3c4d5e`), like ripgrep's
//! (read by `skillmeatd_proto::REVISION`). Without git, or outside a checkout (an unpacked
//! release tarball or sdist), the variable is not set. It lives here, in the crate both
//! binaries share, so that every package is self-contained: a build script outside its
//! package cannot go into a source distribution.

use std::path::PathBuf;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    revision();
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

/// Sets `SKILLMEATD_REVISION` and asks to be run again when the checkout's HEAD moves.
fn revision() {
    // Only a checkout of this project: an unpacked sdist or crate inside some other
    // repository (a home folder kept in git) must not name that repository's commit.
    let ours = git(&["ls-files", "--error-unmatch", "Cargo.toml"]).is_some();
    if let Some(rev) = git(&["rev-parse", "--short=10", "HEAD"]).filter(|_| ours) {
        println!("cargo:rustc-env=SKILLMEATD_REVISION={rev}");
    }
    // HEAD itself (a checkout) and the branch it names (a commit). Only files that exist
    // are named: cargo reruns for a missing one every time.
    let mut watch = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watch.push(PathBuf::from(dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        let common = PathBuf::from(common);
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(common.join(branch));
        }
        watch.push(common.join("packed-refs"));
    }
    for file in watch.iter().filter(|f| f.is_file()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

/// The trimmed output of a successful git command run in the package's folder.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
