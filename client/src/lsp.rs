//! `smctl lsp`: a Language Server (LSP 3.17, stdio) that shows drift on the files of
//! deployed and collection artifacts, in any editor that speaks LSP.
//!
//! Layout:
//! - [`model`]: which artifact a file belongs to (pure);
//! - [`report`]: diagnostic messages, severities, ranges, hover text (pure);
//! - [`link`]: the daemon connection — load, `Watch`, reconnect with backoff;
//! - [`state`]: open documents, the model, publishing diagnostics;
//! - [`commands`]: code actions and `workspace/executeCommand` (pull, push, merge, diff,
//!   undo, snapshot), each one daemon RPC;
//! - [`backend`]: the `LanguageServer` handlers.
//!
//! Library choice: `tower-lsp-server` 0.23 (the maintained fork of `tower-lsp`) over
//! rust-analyzer's `lsp-server` + `lsp-types`. This server is I/O-bound and async at its
//! core: it holds a `Watch` stream open, makes tonic calls per event and per request, and
//! must push diagnostics while requests are in flight. tower-lsp-server runs handlers as
//! tokio futures next to the tonic client, handles the JSON-RPC framing, cancellation,
//! server→client requests (`window/showDocument`) and the initialize/shutdown state
//! machine, and serves any `AsyncRead`/`AsyncWrite` pair — which the in-process tests use
//! with an in-memory duplex pipe. `lsp-server` is synchronous (crossbeam channels on
//! threads): using it would mean a hand-written bridge between its threads and the tokio
//! runtime, plus our own request/response bookkeeping; its types crate (`lsp-types`) is
//! also less maintained than `ls-types`, which tower-lsp-server 0.23 uses.
//!
//! The server reports only on files it knows: a file outside every artifact gets no
//! diagnostic, no hover and no code action.

mod backend;
mod commands;
mod link;
mod model;
mod report;
mod state;
#[cfg(test)]
mod tests;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::{LspService, Server};

use skillmeatd_proto::paths::Paths;

use crate::failure::Failure;

pub use link::Options;

/// Serves LSP on stdin/stdout until the client says `exit` or closes stdin.
///
/// # Errors
/// None today: a daemon that does not answer is reported to the editor, not here.
pub async fn run(paths: &Paths) -> Result<u8, Failure> {
    let options = Options {
        paths: paths.clone(),
        autostart: true,
    };
    serve(tokio::io::stdin(), tokio::io::stdout(), options).await;
    Ok(0)
}

/// Serves LSP over any byte stream pair (stdio, or an in-memory pipe in tests).
pub async fn serve<I, O>(input: I, output: O, options: Options)
where
    I: AsyncRead + Unpin,
    O: AsyncWrite,
{
    let (service, socket) = LspService::new(|editor| backend::Backend::new(editor, options));
    Server::new(input, output, socket).serve(service).await;
}
