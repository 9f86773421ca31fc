//! History space benchmark (issue "History size"): 200 snapshots of a 1,000-file collection
//! of prose-like text, one line rewritten in 1% of its files between snapshots.
//!
//! Every state is also committed to a git repository (one commit per snapshot) and turned
//! into one `tar.gz` (gzip level 9, as SkillMeat's `tarfile.open("w:gz")`), in the same run.
//! Prints the whole state folder's size (every file of the store), git's packed repository
//! after `git gc --aggressive`, the one-`tar.gz`-per-snapshot total, and the ratios; what
//! the store holds per tree and its space amplification (bytes on disk / bytes of keys and
//! values); the snapshot latency the user waits for (`smctl snapshot create` runs
//! [`History::snapshot`]: p50, p99), and the reads that must stay fast: an artifact's log,
//! a diff of the first and last snapshots, and a restore of the first and of the last
//! snapshot (every member read back from its blobs and written out, checked against its
//! hash).
//!
//! Run: `cargo bench --bench history_space` (release; about a minute; needs `git`; not
//! part of CI). `BENCH_SNAPSHOTS` and `BENCH_SKILLS` scale it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use skillmeatd::history::History;
use skillmeatd::history::diff::{Operand, Subject};
use skillmeatd::model::{Location, Origin, SnapshotTarget};
use skillmeatd::store::Store;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A xorshift generator: the same text on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 4,096 made-up words of one to four syllables.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 20] = [
        "ka", "to", "ri", "men", "sa", "lo", "pe", "dri", "ft", "an", "ex", "st", "or", "ul", "qu",
        "ve", "ne", "is", "th", "ch",
    ];
    let mut r = Rng::new(7);
    (0..4096)
        .map(|_| {
            let n = 1 + r.next() % 4;
            (0..n)
                .map(|_| SYLLABLES[(r.next() % 20) as usize])
                .collect()
        })
        .collect()
}

/// Prose-like text of about `len` bytes, lines of a dozen words: a 1,000-file collection
/// of it packs into a `tar.gz` of about 1.3 MB.
fn body(words: &[String], seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let x = r.next();
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        out.push(if (x >> 32).is_multiple_of(11) {
            b'\n'
        } else {
            b' '
        });
    }
    out.push(b'\n');
    out
}

/// Rewrites one line of `path` with new prose.
fn rewrite_line(words: &[String], path: &Path, seed: u64) {
    let text = std::fs::read(path).unwrap();
    let mut lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let at = (seed as usize * 31) % lines.len();
    let mut new = body(words, seed ^ 0x9E37_79B9_7F4A_7C15, 60);
    new.retain(|&b| b != b'\n');
    new.push(b'\n');
    lines[at] = &new;
    std::fs::write(path, lines.concat()).unwrap();
}

fn tar_gz_len(collection: &Path, name: &str) -> u64 {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(name, collection).unwrap();
    let gz = tar.into_inner().unwrap();
    gz.finish().unwrap().len() as u64
}

/// Bytes of every file below `dir`.
fn folder_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn git(git_dir: &Path, work: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .arg("--work-tree")
        .arg(work)
        .args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "-c",
            "gc.auto=0",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(ok.status.success(), "git {args:?}: {ok:?}");
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The best of three runs of `f`, in milliseconds.
fn best_ms(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let snapshots = env_usize("BENCH_SNAPSHOTS", 200);
    let skills = env_usize("BENCH_SKILLS", 100);
    let files_per_skill = 10;
    let words = vocabulary();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home/.skillmeat");
    let coll = home.join("collections/default");
    let mut manifest = String::from(
        "[collection]\nname = \"default\"\nversion = \"1.0.0\"\ncreated = \"x\"\nupdated = \"x\"\n",
    );
    let mut files = Vec::new();
    for s in 0..skills {
        for f in 0..files_per_skill {
            let rel = if f == 0 {
                "SKILL.md".to_string()
            } else {
                format!("refs/f{f}.md")
            };
            let path = coll.join(format!("skills/s{s:03}/{rel}"));
            write(&path, &body(&words, (s * 100 + f) as u64, 2700 + 200 * f));
            files.push(path);
        }
        manifest += &format!(
            "\n[[artifacts]]\nname = \"s{s:03}\"\ntype = \"skill\"\npath = \"skills/s{s:03}\"\norigin = \"local\"\nadded = \"x\"\n"
        );
    }
    write(&coll.join("collection.toml"), manifest.as_bytes());
    let git_dir = dir.path().join("git");
    let init = Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&git_dir)
        .status()
        .unwrap();
    assert!(init.success());
    let state = dir.path().join("state");
    let store = Store::open(&state.join("store")).unwrap();
    let history = History::open(&store, home.clone()).unwrap();
    let target = SnapshotTarget::Collection("default".into());
    let changes = (files.len() / 100).max(1);
    let mut tar_total = 0u64;
    let mut first_tar = 0u64;
    let mut latencies = Vec::with_capacity(snapshots);
    let mut ids = Vec::new();
    for i in 0..snapshots {
        if i > 0 {
            for c in 0..changes {
                let f = &files[(i * 7919 + c * 104_729) % files.len()];
                rewrite_line(&words, f, (i * 1000 + c) as u64);
            }
        }
        let t = Instant::now();
        ids.push(history.snapshot(&target, Origin::Manual, None).unwrap());
        latencies.push(t.elapsed());
        let tgz = tar_gz_len(&coll, "default");
        if i == 0 {
            first_tar = tgz;
        }
        tar_total += tgz;
        git(&git_dir, &coll, &["add", "-A"]);
        git(
            &git_dir,
            &coll,
            &["commit", "-q", "-m", &format!("state {i}")],
        );
    }
    store.flush().unwrap();
    let snap_ms = latencies.iter().sum::<Duration>().as_secs_f64() * 1000.0;
    latencies.sort();

    // The reads: a log, a diff of the first and last snapshots, a restore of the first.
    let busiest = Location::collection("default", "skills/s000");
    let log_len = history.versions_of(&busiest).unwrap().len();
    let log_ms = best_ms(|| {
        history.versions_of(&busiest).unwrap();
    });
    let (first, last) = (ids[0], *ids.last().unwrap());
    let diff_ms = best_ms(|| {
        let d = history
            .diff(
                &Operand::Snapshot(first),
                &Operand::Snapshot(last),
                Subject::default(),
            )
            .unwrap();
        assert!(snapshots < 2 || !d.is_empty());
    });
    let restore_root = dir.path().join("restore");
    let mut round = 0;
    let mut restore_ms = |snapshot| {
        best_ms(|| {
            round += 1;
            let to = restore_root.join(round.to_string());
            std::fs::create_dir_all(&to).unwrap();
            let snap = history.snapshot_record(snapshot).unwrap();
            for (n, v) in snap.members.iter().enumerate() {
                history.materialize(*v, &to.join(n.to_string())).unwrap();
            }
        })
    };
    let (restore_first_ms, restore_last_ms) = (restore_ms(first), restore_ms(last));
    std::fs::remove_dir_all(&restore_root).unwrap();

    let stats = history.stats().unwrap();
    let space = store.space().unwrap();
    let totals = store.history().unwrap().blob_totals().unwrap();
    drop(history);
    drop(store);
    let ours = folder_bytes(&state);
    git(
        &git_dir,
        &coll,
        &["gc", "-q", "--aggressive", "--prune=now"],
    );
    let theirs = folder_bytes(&git_dir);

    println!(
        "{snapshots} snapshots of a {}-file collection (one tar.gz: {:.2} MiB), one line rewritten in {changes} files ({:.0}%) between snapshots",
        files.len(),
        mib(first_tar),
        100.0 * changes as f64 / files.len() as f64,
    );
    println!(
        "state folder: {:.2} MiB; git after gc --aggressive: {:.2} MiB; ratio state / git: {:.2}x (goal <= 2)",
        mib(ours),
        mib(theirs),
        ours as f64 / theirs.max(1) as f64
    );
    println!(
        "one tar.gz per snapshot (SkillMeat): {:.1} MiB; ratio tar.gz / state: {:.1}x (goal >= 50)",
        mib(tar_total),
        tar_total as f64 / ours.max(1) as f64
    );
    let live: u64 = space.iter().map(|t| t.key_bytes + t.value_bytes).sum();
    println!(
        "store: {} versions, {} blobs of which {} deltas ({:.2} MiB stored, {:.1} MiB raw); keys and values {:.2} MiB; space amplification (state folder / keys and values) {:.2}",
        stats.versions,
        stats.blobs,
        totals.deltas,
        mib(stats.unique_compressed_bytes),
        mib(stats.logical_bytes),
        mib(live),
        ours as f64 / live.max(1) as f64
    );
    let files: Vec<String> = walkdir::WalkDir::new(&state)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let len = e.metadata().ok()?.len();
            (len >= 4096)
                .then(|| format!("{} {:.2} MiB", e.file_name().to_string_lossy(), mib(len)))
        })
        .collect();
    println!(
        "  files of the state folder (4 KiB and more): {}",
        files.join(", ")
    );
    for t in space.iter().filter(|t| t.records > 0) {
        println!(
            "  tree {:<14} {:>7} records, keys {:>8.3} MiB, values {:>8.3} MiB",
            t.tree,
            t.records,
            mib(t.key_bytes),
            mib(t.value_bytes)
        );
    }
    println!(
        "snapshot create: p50 {:.1} ms, p99 {:.1} ms, total {:.1} s; log of one artifact ({} versions) {:.2} ms; diff first..last snapshot {:.1} ms; restore of the first snapshot {:.1} ms, of the last {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        snap_ms / 1000.0,
        log_len,
        log_ms,
        diff_ms,
        restore_first_ms,
        restore_last_ms
    );
}
