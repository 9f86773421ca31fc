//! Every standard gRPC client welcome on the Unix socket: a per-connection layer in front
//! of tonic's HTTP/2 stack that puts `localhost` where a client sent the socket path as
//! `:authority`.
//!
//! # Why
//! Clients built on grpc C-core (Python's grpcio, Ruby, C++) send the socket path
//! percent-encoded as HTTP/2's `:authority` (`%2Frun%2Fuser%2F1000%2F…`); grpcurl `-unix`
//! and grpc-java send it raw. h2 parses `:authority` as `host[:port]` and resets such a
//! request with `RST_STREAM(PROTOCOL_ERROR)` before tonic sees it (hyperium/h2 PR 487,
//! grpc/grpc 38142, grpc-java 12664 — all open). Neither h2, hyper nor tonic has an option
//! to relax that check, and h2's HPACK codec is private, so the request has to be fixed on
//! its way in: below h2, on the bytes.
//!
//! # How
//! [`Connection`] wraps each accepted socket. What the daemon writes passes untouched.
//! What the client sends is read straight into h2's buffer and goes through a [`Rewriter`],
//! which leaves in place every byte that passes unchanged (the frames other than header
//! blocks are only looked at, nine bytes of frame head each) and takes out the frames of
//! header blocks, whose rewritten version goes in their place. The connection's first header block
//! is decoded: when h2 would accept its `:authority` (tonic, grpc-go, grpc-js send
//! `localhost`), that block and everything after it reach h2 byte for byte, unread — a
//! gRPC channel names one authority for all its calls. When h2 would refuse it, every
//! header block of the connection (HEADERS + CONTINUATION) is decoded with one persistent
//! HPACK decoder (loona-hpack; it honours the client's dynamic-table size updates, bounded
//! by the table size the server advertises), padding dropped and priority kept, the
//! `:authority` replaced with `localhost`, and re-encoded against a second HPACK table that
//! mirrors h2's own (`encoder.rs`: h2 decodes every block it is handed, in order, so the
//! layer knows exactly what h2's table holds) — h2 reads references to its table where the
//! client sent references to the client's, and the two tables need never agree with each
//! other. A block the client repeats byte for byte while neither table changes (most of a
//! gRPC channel's blocks) is transcoded once and its output reused (`block.rs`). Other
//! frames pass unchanged. h2 then decodes and checks every block as always: every
//! other field, pseudo-header rule, size limit and stream state is still h2's to judge.
//!
//! Nothing else gets weaker. A valid `:authority`, and one that is not UTF-8 (h2 refuses
//! it while decoding), pass as they came. The layer buffers at most one header block:
//! frames past [`MAX_FRAME_SIZE`] reach h2 unchanged (which refuses them), a block may
//! have at most h2's number of CONTINUATION frames, and a block that decodes past four
//! times [`MAX_HEADER_LIST_SIZE`] (h2's abuse limit) ends the connection, as h2 would; below
//! that, an oversized list still reaches h2, which refuses the stream. Whatever the layer
//! cannot pass on faithfully on a rewritten connection ends it with h2's GOAWAY, never a
//! panic; on a connection not (yet) rewritten, h2 gets such bytes unchanged and judges
//! them itself. One difference in HPACK wire details remains on rewritten connections: a
//! dynamic-table size update after the first field of a block is accepted (h2 refuses
//! it); the table stays bounded.
//!
//! The HPACK crate: loona-hpack 0.4.3 (2024) is the maintained fork of `hpack` 0.3.0
//! (2016, unmaintained); `fluke-hpack` 0.3 is loona-hpack's earlier name. Its Huffman
//! decoder is slow (it builds its code table for every Huffman-coded string, tens of
//! microseconds), which is one more reason to read only the connections that need it.
//!
//! [`crate::daemon::serve`] wraps every accepted connection and configures the server with
//! the limits below, so the layer and h2 enforce the same numbers.

mod block;
mod encoder;
mod frames;
#[cfg(test)]
mod tests;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use block::BlockError;
pub use frames::{Refusal, Rewriter};

/// SETTINGS_MAX_FRAME_SIZE the daemon advertises (the protocol's minimum, hyper's default).
pub const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// SETTINGS_MAX_HEADER_LIST_SIZE the daemon advertises (hyper's default).
pub const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// SETTINGS_HEADER_TABLE_SIZE: h2 never changes it from the protocol default, so a client
/// may size its HPACK table up to this, and h2's own table holds this much.
pub const HEADER_TABLE_SIZE: usize = 4096;

/// An accepted connection whose inbound header blocks are rewritten (see the module doc).
pub struct Connection<T> {
    inner: T,
    rewriter: Rewriter,
    /// Rewritten bytes h2 has not read yet.
    pending: BytesMut,
}

impl<T> Connection<T> {
    /// Wraps a freshly accepted connection (before the client preface).
    pub fn new(inner: T) -> Connection<T> {
        Connection {
            inner,
            rewriter: Rewriter::new(),
            pending: BytesMut::new(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Connection<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.rewriter.is_done() || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // Straight into h2's buffer; on a connection passed through, that is all.
            let start = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let end = buf.filled().len();
            if end == start || this.rewriter.passes_everything() {
                return Poll::Ready(Ok(()));
            }
            let kept = this
                .rewriter
                .rewrite_in_place(&mut buf.filled_mut()[start..], &mut this.pending);
            buf.set_filled(start + kept);
            if kept > 0 {
                return Poll::Ready(Ok(()));
            }
            // Nothing for h2 in place: what is pending, if anything, or read on (part of
            // a frame head or header block yields nothing yet).
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Connection<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The peer's credentials (the uid check in [`crate::rpc::check_peer`]) are the socket's.
impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Connection<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
