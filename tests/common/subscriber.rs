//! A `smctl watch --format json` child process, read on a thread: what an editor plugin
//! sees. Lines arrive in order on a channel; waits are bounded.

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Env, smctl_bin};

/// A running `smctl watch --format json`, killed when dropped.
pub struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<Value>,
    /// Every object received so far, in order.
    pub seen: Vec<Value>,
}

impl Subscriber {
    /// Starts `smctl watch --format json` with `args` (e.g. `--since N`).
    pub fn start(env: &Env, args: &[&str]) -> Subscriber {
        let mut child = env
            .command(&smctl_bin())
            .args(["watch", "--format", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Subscriber {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Reads until an object matches `pred` (it is returned), or panics after `timeout`.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(e) => panic!(
                    "no matching watch message within {timeout:?} ({e}); seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Takes whatever has arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
    }

    /// Whether the `smctl watch` process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
