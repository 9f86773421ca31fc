//! The store heals (finding 5) and a full disk passes (finding 6), with the real binaries.
//!
//! Damage tests build a store with history (versions, a snapshot, a tag, project marks, a
//! blob large enough for sled to keep in its own `blobs/` file), stop the daemon, then
//! damage one kind of sled file in one way (truncate, overwrite, flip bytes) and start
//! again: the daemon must serve, drift must be right, the damaged store must be moved aside
//! and named by `status` and `doctor`, and what the salvage saved must be exactly what was
//! there (nothing invented).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::{
    Artifact, Daemon, Env, deploy, eventually, fingerprint, make_collection, skillmeatd_bin,
    smctl_bin, write,
};

/// A pseudo-random, incompressible file: sled keeps a value this large in `blobs/`.
fn big_file() -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..400_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// What a user can see of the history before the damage.
struct Seen {
    versions: BTreeSet<(String, String)>,
    snapshots: BTreeSet<String>,
    drift: Vec<String>,
    tagged: String,
}

fn versions_of(
    env: &Env,
    state: &Path,
    socket: &Path,
    project: &Path,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (name, scope) in [("canvas", None), ("hello", Some(project))] {
        let mut args = vec!["log", name];
        let p;
        if let Some(s) = scope {
            p = s.to_str().unwrap().to_string();
            args.extend(["--project", p.as_str()]);
        }
        let log = json_on(env, state, socket, &args);
        for v in log["versions"].as_array().unwrap() {
            out.insert((
                v["id"].as_str().unwrap().to_string(),
                v["content_hash"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

fn json_on(env: &Env, state: &Path, socket: &Path, args: &[&str]) -> Value {
    let out = env
        .command(&smctl_bin())
        .env("SKILLMEATD_STATE_DIR", state)
        .env("SKILLMEATD_SOCKET", socket)
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn daemon_on(env: &Env, state: &Path, socket: &Path, log: &str) -> Daemon {
    let mut cmd = env.command(&skillmeatd_bin());
    cmd.env("SKILLMEATD_STATE_DIR", state)
        .env("SKILLMEATD_SOCKET", socket);
    env.daemon_cmd(cmd, &[], socket, log)
}

/// A home with history, and the stopped daemon's state directory.
fn world(env: &Env) -> (PathBuf, Seen) {
    let mut canvas = Artifact::skill("canvas");
    let big: &'static str = Box::leak(big_file().into_boxed_str());
    canvas.files.push(("refs/big.txt", big));
    let arts = [canvas, Artifact::command("hello")];
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("code/app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let hidden = env.path("code/hidden");
    deploy(&env.skillmeat_home, "default", &hidden, ".claude", &arts);
    write(
        &env.skillmeat_home.join("daemon.toml"),
        format!(
            "[discovery]\nscan = [{:?}]\nmax_depth = 2\nregistry = false\n",
            env.path("code")
        ),
    );
    let d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    env.smctl_json(&["project", "ignore", hidden.to_str().unwrap()]);
    for i in 0..3 {
        write(
            &project.join(".claude/commands/hello.md"),
            format!("edit {i}\n"),
        );
        write(
            &coll.join("skills/canvas/SKILL.md"),
            format!("---\nname: x\n---\nv{i}\n"),
        );
        // One line of the large file rewritten: its new content is kept as a delta
        // against the previous one, which a salvage must resolve.
        write(
            &coll.join("skills/canvas/refs/big.txt"),
            format!("{}edit {i}\n{}", &big[..200_000], &big[200_000..]),
        );
        env.smctl_json(&["drift", "--sync"]);
    }
    env.smctl_json(&["snapshot", "create", "-m", "before the damage"]);
    // A restart: sled writes its snapshot file (`snap.*`) when it opens a store.
    drop(d);
    let d = env.daemon();
    let log = env.smctl_json(&["log", "canvas"]);
    let tagged = log["versions"][1]["id"].as_str().unwrap().to_string();
    env.smctl_json(&["tag", &tagged, "good"]);
    let seen = Seen {
        versions: versions_of(env, &env.state_dir, &env.socket, &project),
        snapshots: snapshot_ids(&env.smctl_json(&["snapshot", "list"])),
        drift: fingerprint(&env.smctl_json(&["drift", "--sync", "--all"])),
        tagged,
    };
    drop(d);
    (project, seen)
}

fn snapshot_ids(v: &Value) -> BTreeSet<String> {
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Truncate,
    Overwrite,
    Flip,
}

fn damage(file: &Path, how: Damage) {
    let mut bytes = std::fs::read(file).unwrap();
    let len = bytes.len();
    match how {
        Damage::Truncate => bytes.truncate(len / 2),
        Damage::Overwrite => {
            let at = len / 3;
            bytes[at..(at + 4096).min(len)].fill(0xAB);
        }
        Damage::Flip => {
            let step = (len / 64).max(1);
            for b in bytes.iter_mut().step_by(step) {
                *b ^= 0x55;
            }
        }
    }
    std::fs::write(file, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Damages each file `pick` chooses in each way, and checks the daemon heals.
fn heals_after_damage_to(pick: impl Fn(&Path) -> Vec<PathBuf>, what: &str) {
    let env = Env::new();
    let (project, seen) = world(&env);
    let files = pick(&env.state_dir.join("store"));
    assert!(
        !files.is_empty(),
        "no {what} file in the store: {:?}",
        std::fs::read_dir(env.state_dir.join("store"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    );
    for how in [Damage::Truncate, Damage::Overwrite, Damage::Flip] {
        let tag = format!("{what}-{how:?}").replace(['/', '*', '.'], "_");
        let state = env.path(&format!("{tag}-state"));
        let socket = env.path(&format!("{tag}-run/d.sock"));
        copy_dir(&env.state_dir, &state);
        for f in &files {
            let rel = f.strip_prefix(&env.state_dir).unwrap();
            damage(&state.join(rel), how);
        }
        let d = daemon_on(&env, &state, &socket, &format!("{tag}.log"));
        let ctx = || format!("{what} {how:?}:\n{}", d.log_text());
        // Drift answers at once, whatever the store's condition (projects found by
        // discovery; those added by hand come back with the salvaged marks).
        json_on(&env, &state, &socket, &["drift", "--sync", "--all"]);
        let status = eventually(Duration::from_secs(30), "the store to be ok", || {
            let s = json_on(&env, &state, &socket, &["status"]);
            (s["store"]["condition"] == "ok").then_some(s)
        });
        let moved = status["store"]["moved"].as_array().unwrap();
        let healed = !moved.is_empty();
        let unsaved = moved
            .iter()
            .any(|m| !m["unsaved"].as_array().unwrap().is_empty());
        // The project added by hand is right; the ignored one stays hidden unless its mark
        // was among what could not be saved (then it is listed).
        let drift = json_on(&env, &state, &socket, &["drift", "--sync", "--all"]);
        let app = |rows: &[String]| -> Vec<String> {
            rows.iter()
                .filter(|r| r.contains("code/app"))
                .cloned()
                .collect()
        };
        let rows = fingerprint(&drift);
        assert_eq!(
            app(&rows),
            app(&seen.drift),
            "{}\n{:#}",
            ctx(),
            status["store"]
        );
        assert!(rows == seen.drift || unsaved, "{rows:?}\n{}", ctx());
        let versions = versions_of(&env, &state, &socket, &project);
        // Salvaged versions are the ones that were there; versions recorded since (the
        // current content seen again) have new ids.
        let max_seen = seen.versions.iter().map(|(id, _)| vnum(id)).max().unwrap();
        for (id, hash) in &versions {
            match seen.versions.iter().find(|(s, _)| s == id) {
                Some((_, h)) => assert_eq!(h, hash, "{id} changed content\n{}", ctx()),
                None => assert!(vnum(id) > max_seen, "{id} was invented\n{}", ctx()),
            }
        }
        // Likewise snapshots: those made since (an automatic one, when a version that could
        // not be saved was recorded again) have new ids.
        let snapshots = snapshot_ids(&json_on(&env, &state, &socket, &["snapshot", "list"]));
        let max_seen = seen.snapshots.iter().map(|id| snum(id)).max().unwrap();
        for id in snapshots.difference(&seen.snapshots) {
            assert!(snum(id) > max_seen, "{id} was invented\n{}", ctx());
        }
        if healed {
            let m = &moved[0];
            let path = m["path"].as_str().unwrap();
            assert!(
                path.contains("store.damaged-") && Path::new(path).is_dir(),
                "{m}"
            );
            assert!(m["salvaged"].as_str().unwrap().contains("versions"), "{m}");
            // Whatever is missing is listed as not saved.
            if !seen.versions.is_subset(&versions) || !seen.snapshots.is_subset(&snapshots) {
                assert!(unsaved, "{m}\n{}", ctx());
            }
            let doctor = env
                .command(&smctl_bin())
                .env("SKILLMEATD_STATE_DIR", &state)
                .env("SKILLMEATD_SOCKET", &socket)
                .args(["doctor", "--format", "json"])
                .output()
                .unwrap();
            let doc: Value = serde_json::from_slice(&doctor.stdout).unwrap();
            let store = doc["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "store")
                .unwrap()
                .clone();
            assert_eq!(store["status"], "warn", "{doc:#}");
            assert!(store["message"].as_str().unwrap().contains(path), "{store}");
        } else {
            // sled recovered on its own (the damage hit nothing it needs): nothing lost.
            assert_eq!(versions, seen.versions, "{}", ctx());
        }
        // The repaired store takes new history, with ids never used before.
        write(
            &project.join(".claude/commands/hello.md"),
            format!("after {tag}\n"),
        );
        json_on(&env, &state, &socket, &["drift", "--sync"]);
        let after = versions_of(&env, &state, &socket, &project);
        let new: Vec<_> = after.difference(&versions).collect();
        assert!(!new.is_empty(), "{after:?}\n{}", ctx());
        assert!(
            !seen.versions.iter().any(|(id, _)| *id == new[0].0),
            "a new version reused id {}",
            new[0].0
        );
        drop(d);
        write(&project.join(".claude/commands/hello.md"), "edit 2\n");
    }
}

/// The number of a version id (`v12` → 12).
fn vnum(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap()
}

fn snum(id: &str) -> u64 {
    id.trim_start_matches('s').parse().unwrap()
}

fn named(dir: &Path, name: &str) -> Vec<PathBuf> {
    vec![dir.join(name)]
}

#[test]
fn finding_5_a_damaged_db_file_is_moved_aside_and_salvaged() {
    heals_after_damage_to(|d| named(d, "db"), "db");
}

#[test]
fn finding_5_a_damaged_conf_file_is_moved_aside_and_everything_salvaged() {
    heals_after_damage_to(|d| named(d, "conf"), "conf");
}

#[test]
fn finding_5_damaged_sled_blob_files_are_moved_aside_and_salvaged() {
    heals_after_damage_to(
        |d| {
            std::fs::read_dir(d.join("blobs"))
                .map(|r| r.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        },
        "blobs/*",
    );
}

#[test]
fn finding_5_a_damaged_sled_snapshot_file_is_moved_aside_and_salvaged() {
    heals_after_damage_to(
        |d| {
            std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("snap.")
                })
                .collect()
        },
        "snap.*",
    );
}

/// A store whose sled files are intact is salvaged whole when sled itself cannot open it
/// (its `conf` is damaged): every version, snapshot, tag and project mark.
#[test]
fn finding_5_salvage_keeps_every_version_snapshot_tag_and_project_mark() {
    let env = Env::new();
    let (project, seen) = world(&env);
    damage(&env.state_dir.join("store/conf"), Damage::Overwrite);
    let d = env.daemon();
    let status = eventually(Duration::from_secs(30), "the repair", || {
        let s = env.smctl_json(&["status"]);
        (s["store"]["condition"] == "ok").then_some(s)
    });
    assert_eq!(
        status["store"]["moved"].as_array().unwrap().len(),
        1,
        "{status:#}\n{}",
        d.log_text()
    );
    assert_eq!(
        versions_of(&env, &env.state_dir, &env.socket, &project),
        seen.versions
    );
    assert_eq!(
        snapshot_ids(&env.smctl_json(&["snapshot", "list"])),
        seen.snapshots
    );
    assert_eq!(
        env.smctl_json(&["show", "good"])["id"].as_str(),
        Some(seen.tagged.as_str())
    );
    // The large file's later contents were deltas: they read back after the salvage.
    let log = env.smctl_json(&["log", "canvas"]);
    let ids: Vec<&str> = log["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    let diff = env.smctl_json(&["diff", ids[ids.len() - 1], ids[0]]);
    let text = diff.to_string();
    assert!(
        text.contains("edit 2") && text.contains("v2"),
        "{}",
        &text[..text.len().min(2000)]
    );
    let projects = env.smctl_json(&["project", "list"]);
    let app = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == project.to_str().unwrap())
        .unwrap_or_else(|| panic!("{projects:#}"));
    assert!(
        app["found_by"].to_string().contains("manual"),
        "{projects:#}"
    );
    let hidden = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with("code/hidden"))
        .unwrap_or_else(|| panic!("{projects:#}"));
    assert_eq!(hidden["ignored"], true, "{projects:#}");
    assert!(
        status["store"]["moved"][0]["unsaved"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{status:#}"
    );
}

/// A damaged blob makes only the versions that need it unavailable, with a clear error;
/// status, log, snapshot list and audit keep working.
#[test]
fn finding_5_a_corrupt_blob_makes_only_its_versions_unavailable() {
    let env = Env::new();
    let arts = [Artifact::command("hello")];
    let coll = make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    for i in 0..3 {
        write(&coll.join("commands/hello.md"), format!("content {i}\n"));
        env.smctl_json(&["drift", "--sync"]);
    }
    let log = env.smctl_json(&["log", "hello"]);
    let versions = log["versions"].as_array().unwrap();
    let id = |i: usize| versions[i]["id"].as_str().unwrap().to_string();
    let (newest, middle) = (id(0), id(1));
    let older = versions
        .iter()
        .find(|v| v["content_hash"] == hex_sha256(b"content 0\n"))
        .unwrap_or_else(|| panic!("{log:#}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = env.smctl_json(&["show", &older]);
    let blob = shown["files"][0]["blob"].as_str().unwrap().to_string();
    drop(d);
    {
        let store = skillmeatd::store::Store::open(&env.state_dir.join("store")).unwrap();
        let sha: [u8; 32] = hex::decode(&blob).unwrap().try_into().unwrap();
        store.history().unwrap().damage_blob(&sha).unwrap();
        store.close().unwrap();
    }
    let _d = env.daemon();
    let out = env.smctl(&["diff", &older, &newest, "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a damaged version answered");
    assert!(err.contains(&older) && err.contains("damaged"), "{err}");
    env.smctl_json(&["diff", &middle, &newest]);
    env.smctl_json(&["snapshot", "list"]);
    env.smctl_json(&["log", "hello"]);
    env.smctl_json(&["audit"]);
    let status = env.smctl_json(&["status"]);
    assert_eq!(status["store"]["condition"], "ok", "{status:#}");
    assert_eq!(
        status["store"]["damaged_blobs"][0],
        blob.as_str(),
        "{status:#}"
    );
    // The same content seen again replaces the damaged copy.
    write(&coll.join("commands/hello.md"), "content 0\n");
    env.smctl_json(&["drift", "--sync"]);
    env.smctl_json(&["diff", &older, &newest]);
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A small tmpfs mounted for a test (root only), unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the filesystem holding `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for size in [1 << 20, 4096, 1] {
        let chunk = vec![7u8; size];
        while f.write_all(&chunk).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

/// The disk holding the store fills up: drift keeps answering, status, doctor and an
/// event say so, snapshots are refused with a clear error, no cursor is reused or skipped,
/// and everything resumes by itself once space returns (no restart).
#[test]
fn finding_6_a_full_disk_is_reported_and_everything_resumes_without_restart() {
    let env = Env::new();
    // A small tmpfs where this user may mount one; otherwise the test-only fake.
    let tmpfs = Tmpfs::mount(&env.state_dir, "16m");
    let flag = env.path("disk-full");
    let arts = [Artifact::command("hello")];
    make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let mut cmd = env.command(&skillmeatd_bin());
    cmd.env(skillmeatd::faults::FAKE_FULL_ENV, &flag);
    let d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");
    let p = project.to_str().unwrap();
    env.smctl_json(&["project", "add", p]);
    let file = project.join(".claude/commands/hello.md");
    write(&file, "edited\n");
    let before = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(
        before["artifacts"][0]["drift_type"], "modified",
        "{before:#}"
    );
    let c0 = env.cursor();

    let filler = match &tmpfs {
        Some(_) => Some(fill(&env.state_dir)),
        None => {
            write(&flag, "");
            None
        }
    };
    // Drift answers from memory: the edit is reverted while the disk is full.
    write(&file, "---\ndescription: c\n---\nRun it.\n");
    let during = env.smctl_json(&["drift", "--sync", "--all"]);
    assert_eq!(
        during["artifacts"][0]["drift_type"],
        "in_sync",
        "{during:#}\n{}",
        d.log_text()
    );
    let status = eventually(
        Duration::from_secs(20),
        "status to say the disk is full, and the condition to be a problem",
        || {
            let s = env.smctl_json(&["status"]);
            // The problem (an event for watchers) follows the condition by one batch.
            (s["store"]["condition"] == "full" && s["problems"].to_string().contains("full"))
                .then_some(s)
        },
    );
    assert!(
        status["store"]["detail"].as_str().unwrap().contains("full"),
        "{status:#}"
    );
    // Every cursor handed out is in the journal (events that could not be journaled got
    // none; subscribers were resynced instead).
    let journaled = status["journal_first_cursor"].as_u64().unwrap()
        + status["journal_events"].as_u64().unwrap()
        - 1;
    assert_eq!(
        status["cursor"], journaled,
        "a cursor was not kept: {status:#}"
    );
    assert!(
        status["problems"].to_string().contains("full"),
        "the condition is a problem (an event for watchers): {status:#}"
    );
    let refused = env.smctl(&["snapshot", "create", "-m", "while full"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("full"), "{err}");
    let doctor = env.smctl(&["doctor", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let store = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store")
        .unwrap()
        .clone();
    assert_eq!(store["status"], "fail", "{doc:#}");
    assert!(
        store["message"].as_str().unwrap().contains("full"),
        "{store}"
    );

    // Space returns: the daemon resumes by itself.
    match filler {
        Some(f) => std::fs::remove_file(f).unwrap(),
        None => std::fs::remove_file(&flag).unwrap(),
    }
    eventually(Duration::from_secs(30), "the store to work again", || {
        (env.smctl_json(&["status"])["store"]["condition"] == "ok").then_some(())
    });
    env.smctl_json(&["snapshot", "create", "-m", "after"]);
    write(&file, "edited again\n");
    env.smctl_json(&["drift", "--sync"]);
    let events = env.events_since(c0);
    let cursors: Vec<u64> = events
        .iter()
        .map(|e| e["cursor"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (c0 + 1..=env.cursor()).collect();
    assert_eq!(cursors, expected, "cursors reused or skipped: {events:#?}");
    assert!(!events.is_empty());
    let last = env.smctl_json(&["drift", "--sync"]);
    assert_eq!(last["artifacts"][0]["drift_type"], "modified", "{last:#}");
    drop(d);
}
