//! The layer's cost counted rather than timed: `cargo bench --bench authority -- instructions`.
//!
//! Wall-clock ratios on a shared machine swing by more than the layer costs, so this mode
//! counts what does not depend on the machine's load. The bench runs itself again as a
//! child that starts one server (plain, or with the layer) on its own thread and makes
//! health checks with the raw client (grpcio's header blocks), one at a time or
//! [`CONCURRENCY`] in flight:
//! - under `valgrind --tool=callgrind --separate-threads=yes`, the instructions the
//!   **server's thread** executes;
//! - under `strace -f -c`, the system calls of the whole process (client and server), which
//!   the layer would add to every call's latency if it read or wrote more often.
//!
//! Each figure is marginal, per call: the child runs `n` calls and then `2n` calls, and the
//! difference is divided by `n`, so start-up, the connection's first literal header block
//! and the runtime's setup cancel out; each figure is the median of [`REPEATS`] such
//! pairs. About four minutes. Needs `valgrind` and `strace` (Debian packages of
//! those names).

use std::path::Path;
use std::process::{Command, Stdio};

use super::{CONCURRENCY, RawClient, Server};

/// Calls in the smaller of a figure's two runs (the larger makes twice as many).
const CALLS: usize = 1_000;
/// Each figure is the median of this many pairs of runs: instruction counts hardly move
/// between runs, but how many reads and writes carry 64 calls in flight depends on timing.
const REPEATS: usize = 3;
/// Calls made before the counted ones in every child, so both runs start warm.
const WARMUP: usize = 200;

/// The three sides, as the child's argument: plain server with `localhost`, layer with
/// `localhost` (passed through), layer with the socket path (rewritten).
const SIDES: [&str; 3] = ["plain", "passed-through", "rewritten"];

/// How the calls are made in a child.
#[derive(Clone, Copy)]
enum Phase {
    OneAtATime,
    InFlight,
}

impl Phase {
    fn arg(self) -> &'static str {
        match self {
            Phase::OneAtATime => "serial",
            Phase::InFlight => "flight",
        }
    }
}

/// The parent: every side and phase counted, then the table.
pub fn bench() {
    for tool in ["valgrind", "strace"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "`{tool}` is needed: apt install {tool}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for phase in [Phase::OneAtATime, Phase::InFlight] {
        let counts: Vec<(f64, f64)> = SIDES
            .iter()
            .map(|side| {
                let per_call = |count: fn(&Path, &str, Phase, usize) -> u64| {
                    let mut runs: Vec<f64> = (0..REPEATS)
                        .map(|_| {
                            let once = count(dir.path(), side, phase, CALLS);
                            let twice = count(dir.path(), side, phase, 2 * CALLS);
                            twice.saturating_sub(once) as f64 / CALLS as f64
                        })
                        .collect();
                    runs.sort_by(f64::total_cmp);
                    runs[REPEATS / 2]
                };
                (per_call(instructions), per_call(syscalls))
            })
            .collect();
        rows.push((phase, counts));
    }
    println!(
        "raw client sending grpcio's header blocks; per call, marginal over {CALLS} more calls, \
         median of {REPEATS}; ratio = with layer / plain server"
    );
    println!("| what | plain server | passed through | ratio | rewritten | ratio |");
    println!("|---|---|---|---|---|---|");
    for (phase, counts) in &rows {
        let how = match phase {
            Phase::OneAtATime => "one at a time".to_string(),
            Phase::InFlight => format!("{CONCURRENCY} in flight"),
        };
        let row = |what: &str, figure: fn(&(f64, f64)) -> f64, decimals: usize| {
            let [plain, through, rewritten] = [0, 1, 2].map(|i| figure(&counts[i]));
            println!(
                "| {what}, {how} | {plain:.decimals$} | {through:.decimals$} | {:.3} | \
                 {rewritten:.decimals$} | {:.3} |",
                through / plain,
                rewritten / plain,
            );
        };
        row("server instructions", |c| c.0, 0);
        row("system calls (client and server)", |c| c.1, 2);
    }
}

/// The instructions the server's thread ran in a child making `calls` calls.
fn instructions(dir: &Path, side: &str, phase: Phase, calls: usize) -> u64 {
    let out = dir.join(format!("callgrind-{side}-{}-{calls}", phase.arg()));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--separate-threads=yes", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(std::env::current_exe().unwrap())
        .args(child_args(side, phase, calls))
        .status()
        .unwrap();
    assert!(status.success(), "callgrind run of {side} failed: {status}");
    // One file per thread, numbered in order of creation: 1 is the client (the child's
    // main thread), 2 the server.
    let prefix = format!("{}-", out.file_name().unwrap().to_str().unwrap());
    let threads: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    assert_eq!(
        threads.len(),
        2,
        "expected a client and a server thread: {threads:?}"
    );
    let server = std::fs::read_to_string(format!("{}-02", out.display())).unwrap();
    let total = server
        .lines()
        .find_map(|l| l.strip_prefix("summary: ").or(l.strip_prefix("totals: ")))
        .expect("callgrind's output has a summary line");
    total.trim().parse().unwrap()
}

/// The system calls of a child making `calls` calls, every thread.
fn syscalls(dir: &Path, side: &str, phase: Phase, calls: usize) -> u64 {
    let out = dir.join(format!("strace-{side}-{}-{calls}", phase.arg()));
    let status = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&out)
        .arg(std::env::current_exe().unwrap())
        .args(child_args(side, phase, calls))
        .status()
        .unwrap();
    assert!(status.success(), "strace run of {side} failed: {status}");
    // The last line reads `100.00 <seconds> <usecs/call> <calls> <errors> total`.
    let table = std::fs::read_to_string(&out).unwrap();
    let total = table
        .lines()
        .rfind(|l| l.trim_end().ends_with("total"))
        .expect("strace's summary has a total line");
    let fields: Vec<&str> = total.split_whitespace().collect();
    fields[3].parse().unwrap()
}

fn child_args(side: &str, phase: Phase, calls: usize) -> Vec<String> {
    vec![
        "child".into(),
        side.into(),
        phase.arg().into(),
        calls.to_string(),
    ]
}

/// The child: `authority child <side> <serial|flight> <calls>`. One server thread, the
/// client on this (main) thread, nothing else.
pub fn child(args: &[String]) {
    let [side, phase, calls] = args else {
        panic!("usage: child <side> <serial|flight> <calls>, got {args:?}");
    };
    let calls: usize = calls.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let _server = Server::start(&socket, side != "plain");
        let path = socket.to_str().unwrap();
        let authority = if side == "rewritten" {
            path
        } else {
            "localhost"
        };
        let mut client = RawClient::connect(&socket, authority).await;
        for _ in 0..WARMUP {
            client.call().await;
        }
        match phase.as_str() {
            "serial" => {
                for _ in 0..calls {
                    client.call().await;
                }
            }
            "flight" => {
                client.pipelined(calls, CONCURRENCY).await;
            }
            other => panic!("unknown phase {other}"),
        }
    });
}
