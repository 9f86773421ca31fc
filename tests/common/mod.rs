//! Shared test harness: a temporary HOME with SkillMeat-shaped files, the real `skillmeatd`
//! binary on a temporary socket, and the real `smctl`.
//!
//! Nothing here sleeps to synchronise: the daemon is ready when its socket answers
//! (bounded polling while checking the process is alive).

#![allow(dead_code)]

pub mod clients;
pub mod desktop;
pub mod skillmeat;
pub mod subscriber;
pub mod world;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use skillmeatd::hash::{Variant, content_hash};

/// Environment variables that could point a test at the user's real daemon.
const SCRUBBED: [&str; 6] = [
    "XDG_RUNTIME_DIR",
    "SKILLMEAT_HOME",
    "SKILLMEATD_STATE_DIR",
    "SKILLMEATD_SOCKET",
    "RUST_LOG",
    "SKILLMEATD_NO_AUTOSTART",
];

/// Path of the `skillmeatd` binary under test.
pub fn skillmeatd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_skillmeatd"))
}

/// Path of the `smctl` binary under test (built by this package too, from `client/`).
pub fn smctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_smctl"))
}

/// The line `NAME --version` prints: the package version, the protocol version and, in a
/// git checkout, the commit the build script saw.
pub fn version_line(name: &str) -> String {
    let rev = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let (version, protocol) = (
        env!("CARGO_PKG_VERSION"),
        skillmeatd_proto::PROTOCOL_VERSION,
    );
    match rev {
        Some(rev) => format!("{name} {version} (protocol {protocol}, rev {rev})\n"),
        None => format!("{name} {version} (protocol {protocol})\n"),
    }
}

/// A temporary world: `HOME`, SkillMeat's home inside it, a state dir and a socket.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub skillmeat_home: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("smd").tempdir().unwrap();
        let home = dir.path().join("home");
        let skillmeat_home = home.join(".skillmeat");
        std::fs::create_dir_all(&skillmeat_home).unwrap();
        let state_dir = dir.path().join("state");
        let socket = dir.path().join("run").join("d.sock");
        Env {
            dir,
            home,
            skillmeat_home,
            state_dir,
            socket,
        }
    }

    /// A folder inside the temporary world.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A command with this world's environment and nothing of the caller's daemon.
    pub fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        for k in SCRUBBED {
            c.env_remove(k);
        }
        // Tests that mean "no daemon" must not get one started for them; the autostart
        // test removes this.
        c.env("SKILLMEATD_NO_AUTOSTART", "1")
            // Never the person's desktop: no session bus unless a test brings its own
            // (tests/common/desktop.rs).
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", self.path("no-session-bus").display()),
            )
            .env("HOME", &self.home)
            .env("SKILLMEATD_STATE_DIR", &self.state_dir)
            .env("SKILLMEATD_SOCKET", &self.socket)
            .stdin(Stdio::null());
        c
    }

    /// Starts `skillmeatd run` and waits until it answers.
    pub fn daemon(&self) -> Daemon {
        self.daemon_with(&[])
    }

    /// Starts `skillmeatd run` with extra arguments and waits until it answers.
    pub fn daemon_with(&self, args: &[&str]) -> Daemon {
        self.daemon_cmd(
            self.command(&skillmeatd_bin()),
            args,
            &self.socket,
            "daemon.log",
        )
    }

    /// Starts `skillmeatd run` from a prepared command (extra environment) and waits until
    /// it answers on `socket`.
    pub fn daemon_cmd(&self, mut cmd: Command, args: &[&str], socket: &Path, log: &str) -> Daemon {
        let log = self.path(log);
        let child = cmd
            .arg("run")
            .args(args)
            .env("RUST_LOG", "skillmeatd=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child: Some(child),
            log,
        };
        d.wait_ready(socket);
        d
    }

    /// A second daemon on the same HOME with its own, fresh state directory and socket:
    /// a from-scratch view of the same files.
    pub fn twin(&self, name: &str) -> (Daemon, Twin) {
        let twin = Twin {
            state_dir: self.path(&format!("{name}-state")),
            socket: self.path(&format!("{name}-run/d.sock")),
        };
        let mut cmd = self.command(&skillmeatd_bin());
        cmd.env("SKILLMEATD_STATE_DIR", &twin.state_dir)
            .env("SKILLMEATD_SOCKET", &twin.socket);
        let d = self.daemon_cmd(cmd, &[], &twin.socket, &format!("{name}.log"));
        (d, twin)
    }

    /// Runs smctl against a twin with `--format json` and parses stdout.
    pub fn twin_json(&self, twin: &Twin, args: &[&str]) -> Value {
        let out = self
            .command(&smctl_bin())
            .env("SKILLMEATD_STATE_DIR", &twin.state_dir)
            .env("SKILLMEATD_SOCKET", &twin.socket)
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The current event cursor.
    pub fn cursor(&self) -> u64 {
        self.smctl_json(&["status"])["cursor"].as_u64().unwrap()
    }

    /// Waits until every change so far is applied, then returns the events after `since`
    /// (replayed from the journal), as NDJSON objects of type `event`.
    pub fn events_since(&self, since: u64) -> Vec<Value> {
        self.smctl_json(&["drift", "--sync"]);
        let now = self.cursor();
        if now <= since {
            return Vec::new();
        }
        let out = self
            .command(&smctl_bin())
            .args(["watch", "--format", "json", "--since", &since.to_string()])
            .args([
                "--count",
                &(now - since).to_string(),
                "--heartbeat-ms",
                "100000",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["type"] == "event")
            .collect()
    }

    /// Runs smctl with `args`.
    pub fn smctl(&self, args: &[&str]) -> Output {
        self.command(&smctl_bin()).args(args).output().unwrap()
    }

    /// Runs smctl with `args` and `--format json`, asserts success and parses stdout.
    pub fn smctl_json(&self, args: &[&str]) -> Value {
        let out = self
            .command(&smctl_bin())
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "smctl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "smctl {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// The state directory and socket of a second daemon on the same HOME.
pub struct Twin {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
}

/// A running daemon, stopped with SIGTERM when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    fn wait_ready(&mut self, socket: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("skillmeatd exited early ({status}):\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("skillmeatd did not answer within 30s:\n{}", self.log_text());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The daemon's resident set size, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and returns at once.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("daemon already stopped");
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    /// Whether the daemon process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Sends `signal` and waits for the exit status.
    pub fn signal_and_wait(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon already stopped");
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, signal) };
        child.wait().unwrap()
    }

    /// Waits (bounded) for the daemon to exit by itself, e.g. after a fatal failure.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "skillmeatd still runs after {timeout:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the daemon to exit by itself (after `skillmeatd stop`).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child
            .take()
            .expect("daemon already stopped")
            .wait()
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// Writes `content` to `path`, creating parent folders.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// An artifact to put in a collection and deploy.
pub struct Artifact {
    pub name: &'static str,
    pub kind: &'static str,
    /// Files relative to the artifact (for a single-file artifact, one entry with "").
    pub files: Vec<(&'static str, &'static str)>,
}

impl Artifact {
    pub fn skill(name: &'static str) -> Artifact {
        Artifact {
            name,
            kind: "skill",
            files: vec![
                (
                    "SKILL.md",
                    "---\nname: x\nversion: 1.0.0\n---\nDo things.\n",
                ),
                ("refs/guide.md", "guide\n"),
            ],
        }
    }

    pub fn command(name: &'static str) -> Artifact {
        Artifact {
            name,
            kind: "command",
            files: vec![("", "---\ndescription: c\n---\nRun it.\n")],
        }
    }

    pub fn agent(name: &'static str) -> Artifact {
        Artifact {
            name,
            kind: "agent",
            files: vec![("", "---\nname: a\n---\nYou help.\n")],
        }
    }

    /// Path relative to a collection or profile root: `skills/x`, `commands/x.md`, ...
    pub fn rel(&self) -> String {
        match self.kind {
            "skill" => format!("skills/{}", self.name),
            k => format!("{k}s/{}.md", self.name),
        }
    }

    fn write_into(&self, base: &Path) {
        let at = base.join(self.rel());
        for (f, content) in &self.files {
            let p = if f.is_empty() { at.clone() } else { at.join(f) };
            write(&p, content);
        }
    }
}

/// A SkillMeat collection written the way SkillMeat writes it.
pub fn make_collection(skillmeat_home: &Path, name: &str, artifacts: &[Artifact]) -> PathBuf {
    let dir = skillmeat_home.join("collections").join(name);
    let mut manifest = format!(
        "[collection]\nname = \"{name}\"\nversion = \"1.0.0\"\ncreated = \"2026-01-01T00:00:00\"\nupdated = \"2026-01-01T00:00:00\"\n"
    );
    let mut lock = "[lock]\nversion = \"1.0.0\"\n".to_string();
    for a in artifacts {
        a.write_into(&dir);
        manifest += &format!(
            "\n[[artifacts]]\nname = \"{}\"\ntype = \"{}\"\npath = \"{}\"\norigin = \"local\"\nadded = \"2026-01-01T00:00:00\"\n",
            a.name,
            a.kind,
            a.rel()
        );
        let h = content_hash(&dir.join(a.rel()), Variant::Legacy).unwrap();
        lock += &format!(
            "\n[lock.entries.\"{}::{}\"]\ncontent_hash = \"{h}\"\nfetched = \"2026-01-01T00:00:00\"\n",
            a.name, a.kind
        );
    }
    write(&dir.join("collection.toml"), manifest);
    write(&dir.join("collection.lock"), lock);
    dir
}

/// Deploys `artifacts` of `collection` into `project/<root>` as `skillmeat deploy` does:
/// copy, then record the deployed copy's hash.
pub fn deploy(
    skillmeat_home: &Path,
    collection: &str,
    project: &Path,
    root: &str,
    artifacts: &[Artifact],
) {
    let mut body = String::new();
    for a in artifacts {
        a.write_into(&project.join(root));
        let h = content_hash(&project.join(root).join(a.rel()), Variant::Legacy).unwrap();
        body += &format!(
            "[[deployed]]\nartifact_name = \"{}\"\nartifact_type = \"{}\"\nfrom_collection = \"{collection}\"\ndeployed_at = \"2026-03-13T15:13:08\"\nartifact_path = \"{}\"\ncontent_hash = \"{h}\"\nlocal_modifications = false\nmerge_base_snapshot = \"{h}\"\ndeployment_profile_id = \"claude_code\"\nplatform = \"claude_code\"\nprofile_root_dir = \"{root}\"\ncollection_sha = \"{h}\"\n\n",
            a.name,
            a.kind,
            a.rel()
        );
    }
    let _ = skillmeat_home;
    write(&project.join(root).join(".skillmeat-deployed.toml"), body);
}

/// The drift entries of a `smctl drift --format json` answer, as (name, drift_type).
pub fn drift_pairs(v: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["drift_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

/// Sets the mtime of every file under `path` a minute into the past, then lets the racy
/// window pass (a file's change time is now, and the kernel's clock tick may lag), so
/// hashes taken next are not "racy" and the cache may keep them (see
/// `index::RACY_WINDOW_NS`).
pub fn age(path: &Path) {
    let now = std::time::SystemTime::now();
    for e in walk_files(path) {
        let f = std::fs::File::options().write(true).open(&e).unwrap();
        f.set_modified(now - Duration::from_secs(60)).unwrap();
    }
    let settled = now + Duration::from_millis(150);
    while std::time::SystemTime::now() < settled {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn walk_files(path: &Path) -> Vec<PathBuf> {
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_file() {
        return vec![path.to_path_buf()];
    }
    if !meta.is_dir() {
        return vec![];
    }
    std::fs::read_dir(path)
        .unwrap()
        .flat_map(|e| walk_files(&e.unwrap().path()))
        .collect()
}

/// Polls `f` (every 20 ms, bounded by `timeout`) until it gives a value; panics with
/// `what` when it never does.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sorted (project, root, name, drift, project_sha, collection_sha) of a full drift answer.
pub fn fingerprint(v: &Value) -> Vec<String> {
    let mut rows: Vec<String> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {} {} {}",
                a["project"],
                a["profile_root"],
                a["type"],
                a["name"],
                a["drift_type"],
                a["project_sha"],
                a["collection_sha"]
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Asserts the live drift (after a sync barrier) equals what a second daemon with a fresh
/// store computes from the same files: nothing missed, nothing stale.
pub fn assert_matches_scratch(env: &Env, projects: &[&Path]) {
    let live = env.smctl_json(&["drift", "--sync", "--all"]);
    let (_twin_daemon, twin) = env.twin("scratch");
    for p in projects {
        env.twin_json(&twin, &["project", "add", p.to_str().unwrap()]);
    }
    let scratch = env.twin_json(&twin, &["drift", "--sync", "--all"]);
    assert!(!fingerprint(&live).is_empty());
    assert_eq!(fingerprint(&live), fingerprint(&scratch));
}
