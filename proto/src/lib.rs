//! The wire contract of skillmeatd, shared by the daemon, `smctl` and every Rust client
//! that follows (editor, notifications).
//!
//! - [`pb`]: the code generated from `proto/skillmeat/daemon/v1/daemon.proto` (package
//!   `skillmeat.daemon.v1`), compiled once by this crate's `build.rs`. The client stub is
//!   always there; the server half and `pb::FILE_DESCRIPTOR_SET` need the `server` feature.
//! - [`connect`]: a tonic channel over the daemon's Unix socket.
//! - [`paths`]: where SkillMeat's home, the daemon's state directory and its socket are by
//!   default, and how flags and the environment override them.
//! - [`PROTOCOL_VERSION`]: the number both sides compare, and [`version_text`], the
//!   `--version` line of both binaries that names it (with the git revision the root
//!   package's `build.rs` finds in a checkout). The daemon names its version and protocol
//!   in the headers of every answer ([`VERSION_HEADER`], [`PROTOCOL_HEADER`]), so a client
//!   compares them on its first answer, with no round trip of its own.
//! - [`drift`]: the drift kinds, defined once, with their string forms and their mapping to
//!   and from `pb::DriftType`.
//!
//! It depends on tonic, prost, tower, hyper-util, tokio and serde only: no store, no
//! watcher.

pub mod connect;
pub mod drift;
pub mod paths;

pub use drift::DriftKind;

/// Version of the protocol in `proto/`; bumped on incompatible changes.
///
/// The daemon reports it in `Status` and in [`PROTOCOL_HEADER`]; `smctl` compares it with
/// its own on its first answer and warns when they differ, so the two can never disagree
/// about which number is theirs.
pub const PROTOCOL_VERSION: u32 = 1;

/// Response header on every answer of the daemon (gRPC initial metadata): its package
/// version, as `Status.daemon_version` gives it.
pub const VERSION_HEADER: &str = "skillmeatd-version";

/// Response header on every answer of the daemon: its [`PROTOCOL_VERSION`], in decimal.
pub const PROTOCOL_HEADER: &str = "skillmeatd-protocol";

/// What both binaries print after their name for `--version`: the package version, the
/// [`PROTOCOL_VERSION`] and, for a build from a git checkout, the git commit `revision`
/// (`0.1.0 (protocol 1, rev 1a2b3c4d5e)`; `None` from a release tarball or a source
/// distribution).
pub fn version_text(package_version: &str, revision: Option<&str>) -> String {
    match revision {
        Some(rev) => format!("{package_version} (protocol {PROTOCOL_VERSION}, rev {rev})"),
        None => format!("{package_version} (protocol {PROTOCOL_VERSION})"),
    }
}

/// The generated protocol types and stubs. Their doc comments are the proto's comments,
/// written as plain text rather than Markdown.
#[allow(clippy::all, missing_docs, rustdoc::invalid_html_tags)]
pub mod pb {
    tonic::include_proto!("skillmeat.daemon.v1");

    /// Encoded descriptor set of the proto, for gRPC server reflection.
    #[cfg(feature = "server")]
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("skillmeat_descriptor");
}
