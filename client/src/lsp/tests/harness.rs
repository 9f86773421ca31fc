//! An in-process LSP client for the protocol tests: the server runs on an in-memory duplex
//! pipe in the test's runtime; the client frames JSON-RPC, answers the server's own
//! requests (`window/showDocument` succeeds and is recorded), and keeps every
//! notification so tests can wait for the one they expect.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, WriteHalf};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use skillmeatd_proto::paths::Paths;

use crate::lsp::{Options, serve};

use super::world::World;

/// Folder holding `skillmeatd` and `smctl` next to this test binary (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

pub fn world() -> World {
    World::new(&bin_dir())
}

pub fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

type Writer = Arc<Mutex<WriteHalf<tokio::io::DuplexStream>>>;

async fn send(w: &Writer, msg: &Value) {
    let body = msg.to_string();
    let mut w = w.lock().await;
    w.write_all(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        .await
        .unwrap();
    w.flush().await.unwrap();
}

/// The client side of one server.
pub struct Lsp {
    writer: Writer,
    incoming: mpsc::UnboundedReceiver<Value>,
    /// Notifications and responses not consumed yet.
    seen: Vec<Value>,
    next_id: i64,
    pub server: JoinHandle<()>,
    pub shown_documents: Arc<Mutex<Vec<String>>>,
}

impl Lsp {
    /// Starts a server for `world` (no autostart: the tests start and stop the daemon).
    pub fn start(world: &World) -> Lsp {
        let options = Options {
            paths: Paths {
                skillmeat_home: world.skillmeat_home.clone(),
                state_dir: world.state_dir.clone(),
                socket: world.socket.clone(),
            },
            autostart: false,
        };
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (sr, sw) = tokio::io::split(server_io);
        let server = tokio::spawn(serve(sr, sw, options));
        let (cr, cw) = tokio::io::split(client_io);
        let writer: Writer = Arc::new(Mutex::new(cw));
        let (tx, incoming) = mpsc::unbounded_channel();
        let shown = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(read_loop(
            BufReader::new(cr),
            writer.clone(),
            tx,
            shown.clone(),
        ));
        Lsp {
            writer,
            incoming,
            seen: Vec::new(),
            next_id: 1,
            server,
            shown_documents: shown,
        }
    }

    /// `initialize` (with the project as workspace folder) and `initialized`.
    pub async fn initialize(&mut self, root: &Path) -> Value {
        let r = self
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": uri(root),
                    "capabilities": {"window": {"showDocument": {"support": true}}},
                    "workspaceFolders": [{"uri": uri(root), "name": "app"}],
                }),
            )
            .await;
        self.notify("initialized", json!({})).await;
        r
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        send(
            &self.writer,
            &json!({"jsonrpc": "2.0", "method": method, "params": params}),
        )
        .await;
    }

    /// Sends raw bytes as one framed message (for malformed input).
    pub async fn send_raw(&mut self, body: &str) {
        let mut w = self.writer.lock().await;
        w.write_all(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
            .await
            .unwrap();
        w.flush().await.unwrap();
    }

    /// Sends a request and waits for its response (the whole message: `result` or `error`).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        send(
            &self.writer,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .await;
        self.wait_for(
            Duration::from_secs(20),
            &format!("the answer to {method}"),
            |m| m["id"] == id && m.get("method").is_none(),
        )
        .await
    }

    pub async fn open(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        self.open_text(&uri(path), &text).await;
    }

    pub async fn open_text(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": text}}),
        )
        .await;
    }

    /// Waits for a message matching `pred` (earlier unmatched ones are kept).
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(m)) if pred(&m) => return m,
                Ok(Some(m)) => self.seen.push(m),
                Ok(None) => panic!("the server closed the pipe while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; got meanwhile: {}",
                    serde_json::to_string_pretty(&self.seen).unwrap()
                ),
            }
        }
    }

    /// Waits for diagnostics on `path` satisfying `pred`; returns them.
    pub async fn diagnostics(
        &mut self,
        path: &Path,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let u = uri(path);
        let m = self
            .wait_for(Duration::from_secs(20), what, |m| {
                m["method"] == "textDocument/publishDiagnostics"
                    && m["params"]["uri"] == u.as_str()
                    && pred(m["params"]["diagnostics"].as_array().unwrap())
            })
            .await;
        m["params"]["diagnostics"].as_array().unwrap().clone()
    }

    /// Gives in-flight messages a moment, then returns (and keeps) everything received.
    pub async fn drain(&mut self, quiet: Duration) -> &[Value] {
        while let Ok(Some(m)) = tokio::time::timeout(quiet, self.incoming.recv()).await {
            self.seen.push(m);
        }
        &self.seen
    }

    /// Forgets every message received so far.
    pub fn clear(&mut self) {
        self.seen.clear();
        while self.incoming.try_recv().is_ok() {}
    }
}

async fn read_loop(
    mut r: BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    writer: Writer,
    tx: mpsc::UnboundedSender<Value>,
    shown: Arc<Mutex<Vec<String>>>,
) {
    loop {
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                len = v.parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        let msg: Value = serde_json::from_slice(&body).unwrap();
        if msg.get("method").is_some() && msg.get("id").is_some() {
            // A request from the server: answer it.
            let result = if msg["method"] == "window/showDocument" {
                shown
                    .lock()
                    .await
                    .push(msg["params"]["uri"].as_str().unwrap_or("").to_string());
                json!({"success": true})
            } else {
                Value::Null
            };
            send(
                &writer,
                &json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}),
            )
            .await;
        }
        if tx.send(msg).is_err() {
            return;
        }
    }
}
