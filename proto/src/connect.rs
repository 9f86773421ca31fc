//! Connecting to the daemon's Unix socket with tonic.
//!
//! Used by `skillmeatd` (for `stop` and `status`), `smctl`, and any Rust client of the
//! daemon.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// Opens a channel to the daemon listening on `socket`. The connection is made eagerly, so
/// a daemon that is not running is reported here.
///
/// # Errors
/// The socket does not exist, refuses the connection, or the handshake failed.
pub async fn channel(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket: PathBuf = socket.to_path_buf();
    // The URI is a placeholder: the connector below ignores it and dials the socket.
    Endpoint::from_static("http://skillmeatd.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}
