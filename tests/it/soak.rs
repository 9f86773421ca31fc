//! Soak: an hour's worth of edits compressed into about a minute, with the real binaries.
//!
//! 20 projects deploy 3 artifacts each from two collections. A deterministic PRNG edits,
//! reverts, deletes and recreates project and collection copies at a high rate while one
//! `smctl watch --format json` subscriber reads the whole time. The daemon's RSS and open
//! descriptors are sampled throughout and must stay flat; at the end every event cursor
//! from the subscriber's start to the final one arrived exactly once (or a RESYNC replaced
//! what it missed), replaying the events over the starting state gives the final state, and
//! that state equals a from-scratch scan.
//!
//! `SKILLMEATD_SOAK_SECS` changes the duration (default 60).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::subscriber::Subscriber;
use crate::common::{
    Artifact, Daemon, Env, assert_matches_scratch, deploy, make_collection, write,
};

const PROJECTS: usize = 20;
const COLLECTIONS: [&str; 2] = ["default", "team"];

fn arts() -> Vec<Artifact> {
    vec![
        Artifact::skill("review"),
        Artifact::command("hello"),
        Artifact::agent("helper"),
    ]
}

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One file of one copy of an artifact, with its original content.
struct Target {
    /// The artifact's folder or file (`skills/review`, `commands/hello.md`) in one copy.
    artifact: PathBuf,
    file: PathBuf,
    original: &'static str,
}

fn targets(bases: &[PathBuf]) -> Vec<Target> {
    let mut out = Vec::new();
    for base in bases {
        for a in arts() {
            let at = base.join(a.rel());
            for (f, content) in &a.files {
                let file = if f.is_empty() { at.clone() } else { at.join(f) };
                out.push(Target {
                    artifact: at.clone(),
                    file,
                    original: content,
                });
            }
        }
    }
    out
}

/// One random change: edit, revert, delete a file, or delete and recreate a whole copy.
fn mutate(rng: &mut Rng, t: &Target, n: u64) {
    match rng.below(10) {
        0..=3 => write(&t.file, format!("edit {n}\n")),
        4..=6 => write(&t.file, t.original),
        7 | 8 => {
            let _ = std::fs::remove_file(&t.file);
        }
        _ => {
            if t.artifact.is_dir() {
                let _ = std::fs::remove_dir_all(&t.artifact);
            } else {
                let _ = std::fs::remove_file(&t.artifact);
            }
            write(&t.file, t.original);
        }
    }
}

/// (rss in KiB, open descriptors) of the daemon.
fn sample(d: &Daemon) -> (u64, usize) {
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count();
    (d.rss_kib(), fds)
}

type Key = (String, String, String, String);

fn key(v: &Value, type_field: &str) -> Key {
    let s = |f: &str| v[f].as_str().unwrap_or_default().to_string();
    (s("project"), s("profile_root"), s(type_field), s("name"))
}

/// key → drift type of a `drift --all` answer or a RESYNC.
fn state_of(artifacts: &Value) -> BTreeMap<Key, String> {
    artifacts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                key(a, "type"),
                a["drift_type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_hour_of_edits_in_a_minute_stays_flat_and_accounts_for_every_event() {
    let secs: u64 = std::env::var("SKILLMEATD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let env = Env::new();
    let mut bases = Vec::new();
    for c in COLLECTIONS {
        bases.push(make_collection(&env.skillmeat_home, c, &arts()));
    }
    let projects: Vec<PathBuf> = (0..PROJECTS)
        .map(|i| {
            let p = env.path(&format!("code/p{i:02}"));
            deploy(
                &env.skillmeat_home,
                COLLECTIONS[i % 2],
                &p,
                ".claude",
                &arts(),
            );
            bases.push(p.join(".claude"));
            p
        })
        .collect();
    let d = env.daemon();
    for p in &projects {
        env.smctl_json(&["project", "add", p.to_str().unwrap()]);
    }
    let initial = env.smctl_json(&["drift", "--sync", "--all"]);
    let start = env.cursor();
    let mut state = state_of(&initial["artifacts"]);
    assert_eq!(state.len(), PROJECTS * 3);
    let mut sub = Subscriber::start(
        &env,
        &["--since", &start.to_string(), "--heartbeat-ms", "500"],
    );

    // Collection copies are chosen a fifth of the time (each change reaches 10 projects).
    let all = targets(&bases);
    let (coll_targets, project_targets): (Vec<&Target>, Vec<&Target>) = all
        .iter()
        .partition(|t| t.file.starts_with(env.skillmeat_home.join("collections")));
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut samples = Vec::new();
    let began = Instant::now();
    let mut next_sample = began;
    let mut ops = 0u64;
    while began.elapsed() < Duration::from_secs(secs) {
        for _ in 0..1 + rng.below(5) {
            let pool = if rng.below(5) == 0 {
                &coll_targets
            } else {
                &project_targets
            };
            let t = pool[rng.below(pool.len())];
            mutate(&mut rng, t, ops);
            ops += 1;
        }
        if Instant::now() >= next_sample {
            samples.push(sample(&d));
            next_sample += Duration::from_secs(1);
            sub.drain();
        }
        // Pacing, not synchronisation: a few hundred changes a second.
        std::thread::sleep(Duration::from_millis(10));
    }

    let last = env.smctl_json(&["drift", "--sync", "--all"]);
    let end = env.cursor();
    sub.wait_for(Duration::from_secs(60), |v| {
        v["cursor"].as_u64().is_some_and(|c| c >= end)
    });
    samples.push(sample(&d));

    // Every cursor once, in order; a RESYNC replaces the state and moves the cursor on.
    let mut expected = start + 1;
    let (mut events, mut resyncs) = (0u64, 0u64);
    for v in &sub.seen {
        let cursor = v["cursor"].as_u64().unwrap();
        match v["type"].as_str().unwrap() {
            "event" => {
                assert_eq!(cursor, expected, "a gap or a duplicate at {v}");
                expected += 1;
                events += 1;
                if v["name"].as_str().is_some_and(|n| !n.is_empty()) {
                    let k = key(v, "artifact_type");
                    match v["new_drift"].as_str() {
                        Some(d) => state.insert(k, d.to_string()),
                        None => state.remove(&k),
                    };
                }
            }
            "resync" => {
                assert!(cursor + 1 >= expected, "a RESYNC went back: {cursor}");
                expected = cursor + 1;
                resyncs += 1;
                state = state_of(&v["artifacts"]);
            }
            "heartbeat" => assert!(cursor < expected, "heartbeat {cursor} ahead of events"),
            other => panic!("unknown message type {other}"),
        }
    }
    assert_eq!(expected - 1, end, "the subscriber reached the final cursor");
    assert_eq!(
        state,
        state_of(&last["artifacts"]),
        "replaying the events over the starting state gives the final state"
    );
    let drifted = last["drift_count"].as_u64().unwrap();

    // Flat memory and descriptors.
    let third = samples.len() / 3;
    assert!(third >= 3, "too few samples: {samples:?}");
    let max_rss = |s: &[(u64, usize)]| s.iter().map(|x| x.0).max().unwrap();
    let first_max = max_rss(&samples[..third]);
    let last_max = max_rss(&samples[samples.len() - third..]);
    let fds: Vec<usize> = samples.iter().map(|x| x.1).collect();
    let (fd_min, fd_max) = (*fds.iter().min().unwrap(), *fds.iter().max().unwrap());
    eprintln!(
        "soak: {secs}s, {ops} changes, {events} events ({resyncs} resyncs), {drifted} drifted at the end; \
         RSS first-third max {first_max} KiB, last-third max {last_max} KiB; fds {fd_min}..{fd_max}"
    );
    assert!(ops > secs * 50, "the change rate was too low: {ops}");
    assert!(
        events > secs * 20,
        "too few events to mean anything: {events}"
    );
    assert!(
        last_max as f64 <= first_max as f64 * 1.15 + 2.0 * 1024.0,
        "RSS grew: {samples:?}"
    );
    assert!(fd_max - fd_min <= 8, "descriptors leaked: {fds:?}");
    assert!(sub.alive());
    drop(sub);

    let refs: Vec<&Path> = projects.iter().map(PathBuf::as_path).collect();
    assert_matches_scratch(&env, &refs);
}
