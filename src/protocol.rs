//! The protocol version both binaries speak, defined once.
//!
//! `smctl` includes this file with `#[path]` (it depends on nothing), so the client and the
//! daemon can never disagree about which number is theirs; they compare at the handshake
//! (`Status`) and `smctl` warns when the daemon's differs.

/// Version of the protocol in `proto/`; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
