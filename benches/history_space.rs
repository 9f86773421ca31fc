//! History space benchmark (issue "History"): 1,000 automatic snapshots of a collection
//! with 1% of its files changing between snapshots.
//!
//! Prints the sled store's size on disk, the unique compressed bytes, the space
//! amplification (on disk / unique compressed), and what SkillMeat's approach — one full
//! `tar.gz` of the collection per snapshot (gzip level 9, as `tarfile.open("w:gz")`) —
//! takes for the same history, with the ratio. Both are measured in this run on the same
//! sequence of collection states.
//!
//! Run: `cargo bench --bench history_space` (not part of CI). `BENCH_SNAPSHOTS`,
//! `BENCH_SKILLS` scale it.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use skillmeatd::history::History;
use skillmeatd::model::{Origin, SnapshotTarget};
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

/// A pseudo-random Markdown-ish body: compressible like real skills, not trivially so.
fn body(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "skill",
        "agent",
        "the",
        "collection",
        "deploy",
        "review",
        "when",
        "use",
        "tool",
        "file",
        "project",
        "always",
        "never",
        "check",
        "drift",
        "claude",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % 16) as usize].as_bytes());
        out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
    }
    out
}

fn tar_gz_len(collection: &Path, name: &str) -> u64 {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(name, collection).unwrap();
    let gz = tar.into_inner().unwrap();
    gz.finish().unwrap().len() as u64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let snapshots = env_usize("BENCH_SNAPSHOTS", 1000);
    let skills = env_usize("BENCH_SKILLS", 100);
    let files_per_skill = 10;
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
            write(&path, &body((s * 100 + f) as u64, 1500 + 97 * f));
            files.push(path);
        }
        manifest += &format!(
            "\n[[artifacts]]\nname = \"s{s:03}\"\ntype = \"skill\"\npath = \"skills/s{s:03}\"\norigin = \"local\"\nadded = \"x\"\n"
        );
    }
    write(&coll.join("collection.toml"), manifest.as_bytes());
    let store_dir = dir.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let history = History::open(&store, home.clone()).unwrap();
    let target = SnapshotTarget::Collection("default".into());
    let changes = (files.len() / 100).max(1);
    let mut skillmeat_bytes = 0u64;
    let started = Instant::now();
    let mut tar_time = std::time::Duration::ZERO;
    for i in 0..snapshots {
        if i > 0 {
            for c in 0..changes {
                let f = &files[(i * 7919 + c * 104_729) % files.len()];
                let mut h = std::fs::OpenOptions::new().append(true).open(f).unwrap();
                writeln!(h, "edit {i}.{c}").unwrap();
            }
        }
        history.snapshot(&target, Origin::Watch, None).unwrap();
        let t = Instant::now();
        skillmeat_bytes += tar_gz_len(&coll, "default");
        tar_time += t.elapsed();
    }
    store.flush().unwrap();
    let stats = history.stats().unwrap();
    let on_disk = store.size_on_disk();
    println!(
        "{snapshots} snapshots of a {}-file collection, {changes} files ({:.0}%) changed between snapshots ({:.1}s, of which {:.1}s building SkillMeat's tar.gz)",
        files.len(),
        100.0 * changes as f64 / files.len() as f64,
        started.elapsed().as_secs_f64(),
        tar_time.as_secs_f64()
    );
    println!(
        "skillmeatd: store on disk {:.1} MiB, unique compressed {:.1} MiB, logical {:.1} MiB, {} versions, {} blobs",
        on_disk as f64 / 1048576.0,
        stats.unique_compressed_bytes as f64 / 1048576.0,
        stats.logical_bytes as f64 / 1048576.0,
        stats.versions,
        stats.blobs
    );
    println!(
        "space amplification (on disk / unique compressed): {:.2}",
        on_disk as f64 / stats.unique_compressed_bytes.max(1) as f64
    );
    println!(
        "SkillMeat's approach (one full tar.gz per snapshot): {:.1} MiB; ratio SkillMeat / skillmeatd on disk: {:.1}x",
        skillmeat_bytes as f64 / 1048576.0,
        skillmeat_bytes as f64 / on_disk.max(1) as f64
    );
}
