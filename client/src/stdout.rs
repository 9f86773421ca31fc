//! Standard output for every command: a closed pipe (`smctl drift | head -1`) ends smctl
//! quietly with exit 0, wherever the write happens — our own printing, clap's completions
//! (which panic on a write error) or the manual page.
//!
//! Rust ignores `SIGPIPE`, so a write to a closed pipe fails with `EPIPE`; [`Stdout`] turns
//! that failure into the quiet exit a Unix filter makes when its reader is gone. Every
//! command prints through [`Stdout::lock`]; nothing in smctl prints with `println!`. The
//! one exception is `smctl lsp`, whose JSON-RPC stream (tokio's stdout) ends the server,
//! exit 0, when its editor closes it.
//!
//! Into a pipe or a file, output is buffered and written in a few large writes (a JSON
//! answer is not a write per line); streams (`smctl watch`) flush after every message. On
//! a terminal, each line is written as it is printed.

use std::io::{self, IsTerminal, Write};

/// The buffer for output that goes to a pipe or a file.
const PIPE_BUFFER: usize = 64 * 1024;

/// Locked standard output whose closed pipe ends the process quietly (exit 0).
pub struct Stdout {
    inner: io::BufWriter<io::StdoutLock<'static>>,
}

impl Stdout {
    /// Standard output, locked for the rest of the command.
    pub fn lock() -> Stdout {
        let stdout = io::stdout();
        // A zero-sized buffer passes every write to std's line-buffered stdout.
        let capacity = if stdout.is_terminal() { 0 } else { PIPE_BUFFER };
        Stdout {
            inner: io::BufWriter::with_capacity(capacity, stdout.lock()),
        }
    }
}

/// `result`, unless it is a closed pipe: then the reader is gone and smctl is done.
fn quiet<T>(result: io::Result<T>) -> io::Result<T> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        quiet(self.inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        quiet(self.inner.flush())
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        // What is still buffered is written now, with the same rule for a closed pipe.
        let _ = self.flush();
    }
}
