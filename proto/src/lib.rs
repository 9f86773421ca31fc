//! The wire contract of skillmeatd, shared by the daemon, `smctl` and every Rust client
//! that follows (editor, notifications).
//!
//! - [`pb`]: the code generated from `proto/skillmeat/daemon/v1/daemon.proto` (package
//!   `skillmeat.daemon.v1`), compiled once by this crate's `build.rs`. The client stub is
//!   always there; the server half and `pb::FILE_DESCRIPTOR_SET` need the `server` feature.
//! - [`connect`]: a tonic channel over the daemon's Unix socket.
//! - [`paths`]: where SkillMeat's home, the daemon's state directory and its socket are by
//!   default, and how flags and the environment override them.
//! - [`PROTOCOL_VERSION`]: the number both sides compare at the handshake.
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
/// The daemon reports it in `Status`; `smctl` compares it with its own at the handshake and
/// warns when they differ, so the two can never disagree about which number is theirs.
pub const PROTOCOL_VERSION: u32 = 1;

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
