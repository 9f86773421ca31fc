//! The build identity of the two binaries this package builds (`skillmeatd` and `smctl`):
//! the git commit their `--version` names, when built from a git checkout of this project,
//! as `SKILLMEATD_REVISION` (`1a2b3c4d5e`), like ripgrep's. Without git, or outside a
//! checkout (an unpacked release tarball or source distribution), the variable is not set
//! and `--version` names the package and protocol versions alone.
//!
//! It lives in the package that builds both binaries, so only they are rebuilt when HEAD
//! moves; the libraries (the wire crate, smctl's library) do not depend on it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    revision();
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
