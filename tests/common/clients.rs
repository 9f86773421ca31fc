//! Third-party gRPC clients against the daemon: installing them (the `tests/support/`
//! scripts), the project they look at, and reading a running client's output.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use super::{Artifact, Env, deploy, make_collection, write};

/// Runs `tests/support/<script>` (it installs its tool once, under a lock) and returns the
/// path it prints last.
pub fn install(script: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let out = Command::new("bash")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}): {stdout}{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(stdout.lines().last().expect("the script prints a path"))
}

/// A project with skill `review` (in sync) and command `hello` (modified in the project);
/// start the daemon, then add it (`smctl project add`).
pub fn project_with_drift(env: &Env) -> PathBuf {
    let arts = || vec![Artifact::skill("review"), Artifact::command("hello")];
    make_collection(&env.skillmeat_home, "default", &arts());
    let project = env.path("proj");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts());
    write(&project.join(".claude/commands/hello.md"), "local edit\n");
    project
}

/// The edit that turns `review` from in sync to modified.
pub fn edit_review(project: &Path) {
    write(
        &project.join(".claude/skills/review/SKILL.md"),
        "edited after subscribing\n",
    );
}

/// A client process whose stdout is read line by line, with a deadline for each line.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Everything read so far, for failure messages.
    pub seen: Vec<String>,
}

impl Running {
    /// Starts `cmd` with piped output.
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Running {
            child,
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
        }
    }

    /// The next line of output; fails the test after 30 s or at the end of the output.
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(e) => {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                let why = match e {
                    RecvTimeoutError::Timeout => "no line within 30 s",
                    RecvTimeoutError::Disconnected => "the output ended",
                };
                panic!(
                    "{why} ({status}); stdout so far:\n{}\nstderr:\n{}",
                    self.seen.join("\n"),
                    self.stderr()
                );
            }
        }
    }

    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }

    /// Lines up to and including the first that starts with `prefix`.
    pub fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Waits for the exit (30 s at most) and asserts success; returns stderr.
    pub fn success(mut self) -> String {
        for _ in 0..3000 {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr();
        assert!(
            status.success(),
            "{status}; stdout:\n{}\nstderr:\n{stderr}",
            self.seen.join("\n")
        );
        stderr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
