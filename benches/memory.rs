//! Bounded memory (issue #10, finding 12): the daemon's RSS under continuous edits.
//!
//! A small home (one collection of 20 skills, deployed into 5 projects found by scanning),
//! the release daemon watching it, and 20 project files (one per skill, spread over the
//! projects) rewritten every 50 ms for `BENCH_SECS` (default 600 s, ten minutes). RSS is
//! printed every 10 s; the run ends with the peak of the last minute against the 64 MB
//! ceiling.
//!
//! Run: `cargo bench --bench memory` (release build; ten minutes; not part of CI). The soak
//! test (`tests/it/soak.rs`) runs a shorter version of the same and asserts flat RSS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skillmeatd::hash::{Variant, content_hash};

const CEILING_KIB: u64 = 64 * 1024;

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let home = root.join("home/.skillmeat");
    let coll = home.join("collections/default");
    let mut manifest = String::from(
        "[collection]\nname = \"default\"\nversion = \"1.0.0\"\ncreated = \"x\"\nupdated = \"x\"\n",
    );
    for s in 0..20 {
        write(
            &coll.join(format!("skills/s{s:02}/SKILL.md")),
            format!("---\nname: s{s}\n---\n{}\n", "text ".repeat(200)).as_bytes(),
        );
        manifest += &format!(
            "\n[[artifacts]]\nname = \"s{s:02}\"\ntype = \"skill\"\npath = \"skills/s{s:02}\"\norigin = \"local\"\nadded = \"x\"\n"
        );
    }
    write(&coll.join("collection.toml"), manifest.as_bytes());
    let mut record = String::new();
    for s in 0..20 {
        let h = content_hash(&coll.join(format!("skills/s{s:02}")), Variant::Legacy).unwrap();
        record += &format!(
            "[[deployed]]\nartifact_name = \"s{s:02}\"\nartifact_type = \"skill\"\nfrom_collection = \"default\"\ndeployed_at = \"2026-01-01T00:00:00\"\nartifact_path = \"skills/s{s:02}\"\ncontent_hash = \"{h}\"\n\n"
        );
    }
    let mut edited: Vec<PathBuf> = Vec::new();
    for p in 0..5 {
        let claude = root.join(format!("code/p{p}/.claude"));
        std::fs::create_dir_all(claude.parent().unwrap()).unwrap();
        let ok = Command::new("cp")
            .arg("-r")
            .arg(coll.join("skills"))
            .arg(&claude)
            .status()
            .unwrap();
        assert!(ok.success());
        write(&claude.join(".skillmeat-deployed.toml"), record.as_bytes());
        for s in (p * 4)..(p * 4 + 4) {
            edited.push(claude.join(format!("skills/s{s:02}/SKILL.md")));
        }
    }
    write(
        &home.join("daemon.toml"),
        format!(
            "[discovery]\nscan = [{:?}]\nregistry = false\n",
            root.join("code")
        )
        .as_bytes(),
    );
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_skillmeatd"));
    let socket = root.join("run/d.sock");
    let mut child = Command::new(bin)
        .args(["run"])
        .env("HOME", root.join("home"))
        .env("SKILLMEATD_STATE_DIR", root.join("state"))
        .env("SKILLMEATD_SOCKET", &socket)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SKILLMEAT_HOME")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id();
    println!("memory: 20 files edited every 50 ms for {secs} s; RSS (MiB) every 10 s");
    let began = Instant::now();
    let mut next = began;
    let mut samples = Vec::new();
    let mut n = 0u64;
    while began.elapsed() < Duration::from_secs(secs) {
        for f in &edited {
            write(f, format!("---\nname: x\n---\nedit {n}\n").as_bytes());
        }
        n += 1;
        if Instant::now() >= next {
            let rss = rss_kib(pid);
            samples.push((began.elapsed().as_secs(), rss));
            println!(
                "  t={:>4}s rss={:.1}",
                began.elapsed().as_secs(),
                rss as f64 / 1024.0
            );
            next += Duration::from_secs(10);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let last_minute = samples
        .iter()
        .filter(|(t, _)| *t + 60 >= secs)
        .map(|(_, r)| *r)
        .max()
        .unwrap_or(0);
    println!(
        "memory: {n} rounds of edits; peak RSS in the last minute {:.1} MiB (ceiling {} MiB): {}",
        last_minute as f64 / 1024.0,
        CEILING_KIB / 1024,
        if last_minute <= CEILING_KIB {
            "ok"
        } else {
            "OVER"
        }
    );
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
}
