//! Live-drift benchmarks (issue "Live"): each figure is printed with a reference measured in
//! the same run, so a noisy machine still gives a fair ratio.
//!
//! - hashing throughput on large files vs `openssl dgst -sha256`;
//! - on a generated 100,000-file tree (100 projects x 100 skills of 10 files, found by
//!   `[discovery] scan`): daemon start -> the first full, fresh drift answer, vs Watchman's
//!   own crawl of the same tree (`watch-project` + the first `find`; Debian's `watchman`,
//!   installed by `tests/support/watchman.sh`); a warm restart -> the same answer, vs
//!   `git status` on the same tree after `git add -A`;
//! - daemon RSS with that tree watched (goal 40 MiB, 400 bytes a file), and Watchman's;
//! - `Status` and `ListProjects` with every project known (goal 5 ms of daemon time for
//!   `Status`), and `project add` of one more project with all of them known vs with none;
//! - change -> event at a Watch subscriber and edit -> fresh `GetDrift` answer showing the
//!   edit, p50/p99 over 200 edits each, vs the goals (p50 10 ms, p99 50 ms);
//! - the sync barrier: `GetDrift` with it against the same call with `stale_ok` (nothing
//!   pending).
//!
//! Run: `cargo bench --bench live` (release build; takes a few minutes; not part of CI);
//! `cargo bench --bench live -- latency` runs only the latency figures (100 projects),
//! `-- barrier` only the barrier's cost (10 projects), `-- calls` only the `Status`,
//! `ListProjects` and `project add` figures (100 projects), `-- cold` only the cold start
//! (with Watchman's crawl, the RSS after it, and when the history of the whole tree is
//! recorded, off the answer's path), `-- warm` only the warm restart against `git status`
//! (after a cold start that fills the store) with the RSS after each. `BENCH_PROJECTS`, `BENCH_SKILLS`, `BENCH_EDITS`,
//! `BENCH_CALLS` and `BENCH_HASH_MB` scale it; `BENCH_DAEMON_LOG=<file>` keeps the daemon's
//! log (at the level `RUST_LOG` asks); `BENCH_KEEP=1` leaves the generated tree in place.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skillmeatd::hash::{Variant, content_hash};
use skillmeatd::rpc::pb;

#[path = "live/calls.rs"]
mod calls;
#[path = "live/latency.rs"]
mod latency;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_skillmeatd")).with_file_name(name);
    assert!(
        p.exists(),
        "{} missing: build with `cargo build --release --workspace`",
        p.display()
    );
    p
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

struct World {
    _dir: Option<tempfile::TempDir>,
    root: PathBuf,
    home: PathBuf,
    state: PathBuf,
    socket: PathBuf,
}

impl World {
    fn cmd(&self, bin_name: &str) -> Command {
        let mut c = Command::new(bin(bin_name));
        for k in ["XDG_RUNTIME_DIR", "SKILLMEAT_HOME", "RUST_LOG"] {
            c.env_remove(k);
        }
        c.env("HOME", self.home.parent().unwrap())
            .env("SKILLMEATD_STATE_DIR", &self.state)
            .env("SKILLMEATD_SOCKET", &self.socket)
            .stdin(Stdio::null());
        c
    }

    fn start(&self) -> (Duration, std::process::Child) {
        let t = Instant::now();
        let mut cmd = self.cmd("skillmeatd");
        match std::env::var_os("BENCH_DAEMON_LOG") {
            // The daemon's log, at the level RUST_LOG asks (for finding where time goes).
            Some(log) => {
                if let Some(level) = std::env::var_os("RUST_LOG") {
                    cmd.env("RUST_LOG", level);
                }
                cmd.stderr(std::fs::File::create(log).unwrap())
            }
            None => cmd.stderr(Stdio::null()),
        };
        let mut child = cmd.arg("run").spawn().unwrap();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "daemon exited");
            std::thread::sleep(Duration::from_millis(2));
        }
        (t.elapsed(), child)
    }

    fn stop(&self, mut child: std::process::Child) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
    }
}

/// 100 projects x `skills` skills of 10 files, all deployed from one collection and found
/// by scanning the projects folder.
fn generate(projects: usize, skills: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let home = root.join("home/.skillmeat");
    let coll = home.join("collections/default");
    let mut manifest = String::from(
        "[collection]\nname = \"default\"\nversion = \"1.0.0\"\ncreated = \"x\"\nupdated = \"x\"\n",
    );
    for s in 0..skills {
        for f in 0..10 {
            let body = format!(
                "---\nname: s{s}\nversion: 1.0.{f}\n---\n{}\n",
                "lorem ipsum ".repeat(40 + f)
            );
            let rel = if f == 0 {
                "SKILL.md".to_string()
            } else {
                format!("refs/f{f}.md")
            };
            write(&coll.join(format!("skills/s{s:03}/{rel}")), body.as_bytes());
        }
        manifest += &format!(
            "\n[[artifacts]]\nname = \"s{s:03}\"\ntype = \"skill\"\npath = \"skills/s{s:03}\"\norigin = \"local\"\nadded = \"x\"\n"
        );
    }
    write(&coll.join("collection.toml"), manifest.as_bytes());
    let hashes: Vec<String> = (0..skills)
        .map(|s| content_hash(&coll.join(format!("skills/s{s:03}")), Variant::Legacy).unwrap())
        .collect();
    let mut record = String::new();
    for (s, h) in hashes.iter().enumerate() {
        record += &format!(
            "[[deployed]]\nartifact_name = \"s{s:03}\"\nartifact_type = \"skill\"\nfrom_collection = \"default\"\ndeployed_at = \"2026-01-01T00:00:00\"\nartifact_path = \"skills/s{s:03}\"\ncontent_hash = \"{h}\"\ncollection_sha = \"{h}\"\n\n"
        );
    }
    for p in 0..projects {
        let claude = root.join(format!("projects/p{p:03}/.claude"));
        std::fs::create_dir_all(&claude).unwrap();
        let copied = Command::new("cp")
            .arg("-rp")
            .arg(coll.join("skills"))
            .arg(&claude)
            .status()
            .unwrap();
        assert!(copied.success());
        write(&claude.join(".skillmeat-deployed.toml"), record.as_bytes());
    }
    write(
        &home.join("daemon.toml"),
        format!(
            "[discovery]\nscan = [\"{}\"]\nmax_depth = 2\nregistry = false\n",
            root.join("projects").display()
        )
        .as_bytes(),
    );
    let dir = if std::env::var_os("BENCH_KEEP").is_some() {
        // Left in place for profiling the daemon by hand on the same tree.
        eprintln!("tree kept at {}", root.display());
        std::mem::forget(dir);
        None
    } else {
        Some(dir)
    };
    World {
        state: root.join("state"),
        socket: root.join("run/d.sock"),
        _dir: dir,
        root,
        home,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn bench_hashing() {
    let mb = env_usize("BENCH_HASH_MB", 1024);
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..4)
        .map(|i| {
            let p = dir.path().join(format!("big{i}.bin"));
            let chunk: Vec<u8> = (0..1024 * 1024).map(|j| (j * 31 + i) as u8).collect();
            let mut f = std::fs::File::create(&p).unwrap();
            for _ in 0..mb / 4 {
                std::io::Write::write_all(&mut f, &chunk).unwrap();
            }
            p
        })
        .collect();
    let run = |prog: &mut Command| {
        let out = prog.args(&files).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    // Warm the page cache, and check both agree.
    let ours = run(Command::new(bin("skillmeatd")).arg("hash"));
    let theirs = run(Command::new("openssl").args(["dgst", "-sha256", "-r"]));
    for (a, b) in ours.lines().zip(theirs.lines()) {
        assert_eq!(a.split_whitespace().next(), b.split_whitespace().next());
    }
    let best = |f: &dyn Fn() -> String| (0..3).map(|_| time(f).0).min().unwrap();
    let t_ours = best(&|| run(Command::new(bin("skillmeatd")).arg("hash")));
    let t_ssl = best(&|| run(Command::new("openssl").args(["dgst", "-sha256", "-r"])));
    let mbps = |t: Duration| mb as f64 / t.as_secs_f64();
    println!(
        "hashing {mb} MiB: skillmeatd hash {:.0} MiB/s, openssl dgst -sha256 {:.0} MiB/s, ratio {:.2} (1.0 = as fast as openssl)",
        mbps(t_ours),
        mbps(t_ssl),
        t_ssl.as_secs_f64() / t_ours.as_secs_f64()
    );
}

/// Client-side time of one async call, run to completion on `rt`.
fn rpc<T>(
    rt: &tokio::runtime::Runtime,
    w: &World,
    f: impl AsyncFnOnce(Client) -> T,
) -> (Duration, T) {
    rt.block_on(async {
        let channel = skillmeatd::connect::channel(&w.socket).await.unwrap();
        let client = pb::skillmeat_daemon_client::SkillmeatDaemonClient::new(channel);
        let t = Instant::now();
        let r = f(client).await;
        (t.elapsed(), r)
    })
}

type Client = pb::skillmeat_daemon_client::SkillmeatDaemonClient<tonic::transport::Channel>;

/// Start -> the first full, fresh drift answer (every project, through the sync barrier):
/// what a user waits for after starting the daemon.
fn start_to_answer(w: &World, rt: &tokio::runtime::Runtime) -> (Duration, std::process::Child) {
    let t = Instant::now();
    let (_, child) = w.start();
    let (_, answer) = rpc(rt, w, async |mut c| {
        loop {
            // A barrier that times out (the daemon busy past its deadline) is asked again:
            // the figure is when the answer comes.
            match c.get_drift(pb::GetDriftRequest::default()).await {
                Ok(r) => break r.into_inner(),
                Err(e) if e.code() == tonic::Code::DeadlineExceeded => {
                    eprintln!(
                        "drift barrier timed out after {:.1}s; asking again",
                        t.elapsed().as_secs_f64()
                    );
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    let elapsed = t.elapsed();
    assert!(answer.problems.is_empty(), "{:?}", answer.problems);
    (elapsed, child)
}

/// Watchman's own crawl of `dir` (`watch-project` then the first `find`), with its RSS
/// after it, from a private server; `None` when watchman cannot be installed.
fn watchman_crawl(dir: &Path) -> Option<(Duration, u64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/watchman.sh");
    let out = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("no watchman: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let bin = String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .last()?
        .to_string();
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let s = state.path();
        let status = Command::new(&bin)
            .arg(format!("--sockname={}", s.join("sock").display()))
            .arg(format!("--statefile={}", s.join("state").display()))
            .arg(format!("--logfile={}", s.join("log").display()))
            .arg(format!("--pidfile={}", s.join("pid").display()))
            .arg("--no-save-state")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "watchman {args:?}");
    };
    let d = dir.to_str().unwrap();
    let t = Instant::now();
    run(&["watch-project", d]);
    run(&["find", d]);
    let elapsed = t.elapsed();
    let pid: u32 = std::fs::read_to_string(state.path().join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rss = rss_kib(pid);
    run(&["shutdown-server"]);
    Some((elapsed, rss))
}

/// `git status` on `dir` after `git add -A` (best of three), with the time of the add.
fn git(dir: &Path, args: &[&str]) {
    let s = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(s.success(), "git {args:?}");
}

/// Makes `dir` a git repository holding every file (its index written), and the time
/// `git add -A` took.
fn git_init(dir: &Path) -> Duration {
    git(dir, &["init", "-q"]);
    let (t_add, ()) = time(|| git(dir, &["add", "-A"]));
    git(dir, &["status", "--porcelain"]);
    t_add
}

/// One `git status` of `dir` (a repository made by [`git_init`]).
fn git_status(dir: &Path) -> Duration {
    time(|| git(dir, &["status", "--porcelain"])).0
}

fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64()
}

/// Generates the tree and prints its size and the time it took.
fn generate_tree(projects: usize, skills: usize) -> (World, usize) {
    let (t_gen, w) = time(|| generate(projects, skills));
    let files = projects * skills * 10;
    println!(
        "generated {files} project files + {} collection files in {:.1}s",
        skills * 10,
        t_gen.as_secs_f64()
    );
    (w, files)
}

/// Start -> the first full, fresh drift answer, against Watchman's crawl of the same
/// tree (run first, so both find it in the page cache), and the RSS after it. Returns the
/// running daemon, its RSS in KiB and the time from its start to the answer.
fn bench_cold(
    w: &World,
    rt: &tokio::runtime::Runtime,
    files: usize,
) -> (std::process::Child, u64, Duration) {
    let watchman = watchman_crawl(&w.root.join("projects"));
    let (cold, child) = start_to_answer(w, rt);
    let rss_cold = rss_kib(child.id());
    match watchman {
        Some((t, rss)) => {
            println!(
                "cold start -> first full fresh drift answer ({files} files): {:.2}s  vs watchman watch-project + find {:.2}s: ratio {:.2} (goal <= 1)",
                cold.as_secs_f64(),
                t.as_secs_f64(),
                ratio(cold, t)
            );
            println!(
                "watchman RSS after its crawl: {:.1} MiB",
                rss as f64 / 1024.0
            );
        }
        None => println!(
            "cold start -> first full fresh drift answer: {:.2}s",
            cold.as_secs_f64()
        ),
    }
    (child, rss_cold, cold)
}

/// The cold start alone: the figure, the daemon's RSS right after it, and when the
/// history of the whole tree (every deployment's base) is recorded: a history query
/// waits for that, the drift answer does not.
fn bench_cold_only(projects: usize, skills: usize) {
    let (w, files) = generate_tree(projects, skills);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (child, rss, cold) = bench_cold(&w, &rt, files);
    let answered = Instant::now();
    println!(
        "daemon RSS after the cold start: {:.1} MiB ({:.0} bytes/file)",
        rss as f64 / 1024.0,
        rss as f64 * 1024.0 / files as f64
    );
    wait_for_history(&w, &rt, projects - 1, skills - 1);
    println!(
        "history of the whole tree recorded {:.2}s after the start (off the drift answer's path); RSS then {:.1} MiB",
        (cold + answered.elapsed()).as_secs_f64(),
        rss_kib(child.id()) as f64 / 1024.0
    );
    w.stop(child);
}

/// Waits until the history of skill `skill` in project `project` is recorded: a history
/// query waits for the backlog queued before it, so the whole tree's is done then.
fn wait_for_history(w: &World, rt: &tokio::runtime::Runtime, project: usize, skill: usize) {
    let project = w.root.join("projects").join(format!("p{project:03}"));
    let project = project.canonicalize().unwrap().display().to_string();
    let artifact = format!("s{skill:03}");
    let (_, log) = rpc(rt, w, async |mut c| {
        c.artifact_log(pb::ArtifactLogRequest {
            artifact: Some(pb::ArtifactSelector {
                artifact,
                project,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
    });
    assert_eq!(log.versions.len(), 1, "{log:?}");
}

/// Rounds of the warm restart, each beside its own `git status`.
const WARM_ROUNDS: usize = 5;

/// A warm restart -> the first full, fresh drift answer against `git status` on the same
/// tree, and the RSS after the cold start and after the restart. The two are timed in
/// turn, [`WARM_ROUNDS`] times, so both meet the same background load; the figure is the
/// median of the rounds' ratios (each round's pair is printed). The first restart after the
/// cold start may still find the store's files being written back: it counts like the
/// others.
fn warm_restart(w: &World, rt: &tokio::runtime::Runtime, files: usize, rss_cold: u64) {
    let t_add = git_init(&w.root.join("projects"));
    let mut rounds: Vec<(Duration, Duration, u64)> = Vec::new();
    let mut settled = Vec::new();
    for _ in 0..WARM_ROUNDS {
        let t_status = git_status(&w.root.join("projects"));
        let (warm, child) = start_to_answer(w, rt);
        let rss = rss_kib(child.id());
        // Once the start's history work (nothing new to record) is done and the daemon
        // idles with the tree watched.
        wait_for_history(w, rt, 0, 0);
        std::thread::sleep(Duration::from_secs(2));
        settled.push(rss_kib(child.id()));
        w.stop(child);
        rounds.push((warm, t_status, rss));
    }
    let pairs: Vec<String> = rounds
        .iter()
        .map(|(warm, status, _)| format!("{:.3}/{:.3}s", warm.as_secs_f64(), status.as_secs_f64()))
        .collect();
    rounds.sort_by(|a, b| ratio(a.0, a.1).total_cmp(&ratio(b.0, b.1)));
    let (warm, t_status, rss_warm) = rounds[rounds.len() / 2];
    println!(
        "warm restart -> first full fresh drift answer vs git status, {WARM_ROUNDS} rounds timed in turn (ours/git): {}; median ratio {:.2} ({:.3}s vs {:.3}s; goal <= 1; git add -A took {:.2}s)",
        pairs.join(", "),
        ratio(warm, t_status),
        warm.as_secs_f64(),
        t_status.as_secs_f64(),
        t_add.as_secs_f64()
    );
    let per_file = |kib: u64| kib as f64 * 1024.0 / files as f64;
    println!(
        "daemon RSS with the tree watched: {:.1} MiB after the cold start ({:.0} bytes/file), {:.1} MiB after the warm restart ({:.0} bytes/file); goal 40 MiB (400 bytes/file)",
        rss_cold as f64 / 1024.0,
        per_file(rss_cold),
        rss_warm as f64 / 1024.0,
        per_file(rss_warm)
    );
    let settled: Vec<String> = settled
        .iter()
        .map(|kib| {
            format!(
                "{:.1} MiB ({:.0} bytes/file)",
                *kib as f64 / 1024.0,
                per_file(*kib)
            )
        })
        .collect();
    println!(
        "daemon RSS idle with the tree watched, after each restart's history work: {}",
        settled.join(", ")
    );
}

/// The warm restart alone (after a cold start that fills the store), with the RSS figures.
fn bench_warm_only(projects: usize, skills: usize) {
    let (w, files) = generate_tree(projects, skills);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, child) = start_to_answer(&w, &rt);
    let rss_cold = rss_kib(child.id());
    w.stop(child);
    warm_restart(&w, &rt, files, rss_cold);
    println!("load average: {}", latency::load_average());
}

/// Cold start, warm restart, memory, and what `Status` and `project add` cost, each with
/// its reference from the same run.
fn bench_tree(projects: usize, skills: usize) -> World {
    let (w, files) = generate_tree(projects, skills);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (child, rss_cold, _) = bench_cold(&w, &rt, files);
    let (extra, with_all) = calls::bench_calls(&w, &rt, projects);
    w.stop(child);
    calls::print_add(projects, with_all, calls::add_alone(&w, &rt, &extra));
    warm_restart(&w, &rt, files, rss_cold);
    w
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99))
}

fn bench_barrier(w: &World, calls: usize) {
    let (_, child) = w.start();
    let project = w.root.join("projects/p000").canonicalize().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut stale, mut fresh) = rt.block_on(async {
        let channel = skillmeatd::connect::channel(&w.socket).await.unwrap();
        let mut client = pb::skillmeat_daemon_client::SkillmeatDaemonClient::new(channel);
        let mut drift = async |stale_ok: bool| {
            let t = Instant::now();
            let r = client
                .get_drift(pb::GetDriftRequest {
                    project: project.display().to_string(),
                    stale_ok,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            (t.elapsed(), r)
        };
        // Nothing pending: the barrier's own cost, interleaved so load affects both alike.
        let (mut stale, mut fresh) = (Vec::new(), Vec::new());
        for _ in 0..calls {
            stale.push(drift(true).await.0);
            fresh.push(drift(false).await.0);
        }
        (stale, fresh)
    });
    w.stop(child);
    let (s50, s99) = percentiles(&mut stale);
    let (f50, f99) = percentiles(&mut fresh);
    println!(
        "GetDrift of a {}-skill project, nothing pending, {calls} calls: stale_ok p50 {s50:.2} ms p99 {s99:.2} ms; \
         with the barrier p50 {f50:.2} ms p99 {f99:.2} ms (barrier ~{:.2} ms at p50)",
        env_usize("BENCH_SKILLS", 100),
        f50 - s50
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let calls = env_usize("BENCH_CALLS", 500);
    if std::env::args().any(|a| a == "latency") {
        let w = generate(
            env_usize("BENCH_PROJECTS", 100),
            env_usize("BENCH_SKILLS", 100),
        );
        latency::bench(&w, env_usize("BENCH_EDITS", 200));
        return;
    }
    if std::env::args().any(|a| a == "calls") {
        calls::bench_calls_only(
            env_usize("BENCH_PROJECTS", 100),
            env_usize("BENCH_SKILLS", 100),
        );
        return;
    }
    if std::env::args().any(|a| a == "barrier") {
        let w = generate(
            env_usize("BENCH_PROJECTS", 10),
            env_usize("BENCH_SKILLS", 100),
        );
        bench_barrier(&w, calls);
        return;
    }
    if std::env::args().any(|a| a == "warm") {
        bench_warm_only(
            env_usize("BENCH_PROJECTS", 100),
            env_usize("BENCH_SKILLS", 100),
        );
        return;
    }
    if std::env::args().any(|a| a == "cold") {
        bench_cold_only(
            env_usize("BENCH_PROJECTS", 100),
            env_usize("BENCH_SKILLS", 100),
        );
        return;
    }
    bench_hashing();
    let w = bench_tree(
        env_usize("BENCH_PROJECTS", 100),
        env_usize("BENCH_SKILLS", 100),
    );
    latency::bench(&w, env_usize("BENCH_EDITS", 200));
    bench_barrier(&w, calls);
}
