//! Desktop notification benchmarks, with the real daemon on a private session bus and
//! python-dbusmock's notification server (the test harness's [`Desktop`]):
//!
//! - **latency**: edit → the server receives `Notify`, p50/p99 over `BENCH_EDITS` edits
//!   (default 200), with `coalesce_ms = 0` (what is left after the settle is the
//!   daemon's own work: hashing, journal, policy, D-Bus); each edit is undone (silently)
//!   before the next;
//! - **CPU**: the daemon's CPU time (user + system, `/proc/<pid>/stat`) under one stream
//!   of `BENCH_STREAM` edits (default 1,000 at `BENCH_RATE` per second, default 25: apart
//!   by more than the settle, so each edit is its own batch; over 50 skills, each edit
//!   turning one skill modified or back in sync), with notifications on (default
//!   settings, and every batch shown: `coalesce_ms = 0`, no rate limit) against the same
//!   stream with `notify.desktop = false`.
//!
//! Run: `cargo build --release --workspace && cargo bench --bench notify` (not part of
//! CI; about five minutes). Needs what the notification tests need (dbus-daemon, and the
//! venv `tests/support/dbusmock-venv.sh` makes).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::desktop::Desktop;
use common::{Artifact, Daemon, Env, age, deploy, make_collection, write};

const SKILLS: usize = 50;
const SETTLE_MS: f64 = 20.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const ORIGINAL: &str = "---\nname: x\nversion: 1.0.0\n---\nline one\nline two\n";

fn names() -> Vec<&'static str> {
    (0..SKILLS)
        .map(|i| &*Box::leak(format!("s{i:02}").into_boxed_str()))
        .collect()
}

/// A project with 50 deployed skills, and `[notify]` as given.
fn world(notify: &str) -> (Env, PathBuf) {
    let env = Env::new();
    let arts: Vec<Artifact> = names()
        .into_iter()
        .map(|name| Artifact {
            name,
            kind: "skill",
            files: vec![("SKILL.md", ORIGINAL)],
        })
        .collect();
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let app = env.path("app");
    deploy(&env.skillmeat_home, "default", &app, ".claude", &arts);
    age(&coll);
    age(&app);
    write(
        &env.skillmeat_home.join("daemon.toml"),
        format!("[discovery]\nregistry = false\n[notify]\n{notify}\n"),
    );
    (env, app.canonicalize().unwrap())
}

fn start(env: &Env, desktop: &Desktop, app: &Path) -> Daemon {
    let d = env.daemon_cmd(desktop.command(env), &[], &env.socket, "daemon.log");
    env.smctl_json(&["project", "add", app.to_str().unwrap()]);
    env.smctl_json(&["drift", "--sync"]);
    d
}

fn skill_md(app: &Path, name: &str) -> PathBuf {
    app.join(format!(".claude/skills/{name}/SKILL.md"))
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Arrival times (Unix seconds) of the `Notify` calls in the server's log.
fn notify_times(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (t, rest) = l.split_once(' ')?;
            rest.starts_with("Notify ").then(|| t.parse().ok())?
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn bench_latency(edits: usize) {
    let (env, app) = world("coalesce_ms = 0\nrate_limit = 1000000");
    let Some(desktop) = Desktop::start(&env, "body actions", "latency") else {
        return;
    };
    let d = start(&env, &desktop, &app);
    let log = desktop.calls_log();
    let mut lat = Vec::new();
    for i in 0..edits {
        let f = skill_md(&app, "s00");
        let seen = notify_times(&log).len();
        let t0 = now_s();
        std::fs::write(&f, format!("{ORIGINAL}edit {i}\n")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let t = loop {
            if let Some(&t) = notify_times(&log).get(seen) {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "no notification for edit {i}; server log {}:\n{}\nmock stderr: {}\ndaemon log:\n{}",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_else(|e| e.to_string()),
                std::fs::read_to_string(log.with_file_name("mock.log"))
                    .unwrap_or_else(|e| e.to_string()),
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        lat.push((t - t0) * 1000.0);
        // Undo: back in sync (silent; the notification is closed).
        std::fs::write(&f, ORIGINAL).unwrap();
        env.smctl_json(&["drift", "--sync"]);
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    println!(
        "latency, edit -> Notify at the server ({edits} edits): p50 {p50:.1} ms, p99 {p99:.1} ms; \
         after the {SETTLE_MS} ms settle: p50 {:.1} ms, p99 {:.1} ms",
        p50 - SETTLE_MS,
        p99 - SETTLE_MS
    );
}

/// CPU seconds (user + system) the process has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line (12 and 13 after the name).
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Runs the edit stream against a fresh daemon; returns (CPU seconds, notifications).
fn stream(notify: &str, edits: usize, rate: usize) -> (f64, usize) {
    let (env, app) = world(notify);
    let Some(desktop) = Desktop::start(&env, "body actions", "cpu") else {
        return (0.0, 0);
    };
    let d = start(&env, &desktop, &app);
    let names = names();
    let before = cpu_secs(d.pid());
    let started = Instant::now();
    for i in 0..edits {
        // Each artifact alternates between edited and original: every edit changes drift.
        let name = names[i % names.len()];
        let round = i / names.len();
        let text = if round.is_multiple_of(2) {
            format!("{ORIGINAL}edit {i}\n")
        } else {
            ORIGINAL.to_string()
        };
        std::fs::write(skill_md(&app, name), text).unwrap();
        let next = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
        if let Some(w) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(w);
        }
    }
    env.smctl_json(&["drift", "--sync"]);
    // Let the last coalescing window end.
    std::thread::sleep(Duration::from_millis(5500));
    let cpu = cpu_secs(d.pid()) - before;
    (cpu, notify_times(&desktop.calls_log()).len())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let edits = env_usize("BENCH_EDITS", 200);
    let n = env_usize("BENCH_STREAM", 1000);
    let rate = env_usize("BENCH_RATE", 25);
    bench_latency(edits);
    let (off, _) = stream("desktop = false", n, rate);
    let (on, shown) = stream("", n, rate);
    let (all, shown_all) = stream("coalesce_ms = 0\nrate_limit = 1000000", n, rate);
    println!(
        "CPU under {n} edits at {rate}/s: notifications off {off:.2} s; on (defaults) {on:.2} s \
         ({shown} notifications, {:+.1}%); on, every batch shown {all:.2} s ({shown_all} \
         notifications, {:+.1}%)",
        (on / off - 1.0) * 100.0,
        (all / off - 1.0) * 100.0
    );
}
