//! History: snapshots, version log, diff, export/import round trips, hostile archives,
//! deployment bases, and a kill -9 crash test, with the real binaries.

use std::io::Write;

use crate::common::{Artifact, Env, deploy, make_collection, write};

fn snapshot_count(env: &Env) -> u64 {
    env.smctl_json(&["status"])["history"]["snapshots"]
        .as_u64()
        .unwrap_or_else(|| panic!("status has no history: {}", env.smctl_json(&["status"])))
}

#[test]
fn manual_snapshots_log_and_diff() {
    let env = Env::new();
    let coll = make_collection(&env.skillmeat_home, "default", &[Artifact::skill("canvas")]);
    let _d = env.daemon();
    let s1 = env.smctl_json(&["snapshot", "create", "-m", "first"]);
    let id1 = s1["id"].as_str().unwrap().to_string();
    assert_eq!(s1["message"], "first");
    write(
        &coll.join("skills/canvas/SKILL.md"),
        "---\nname: x\n---\nChanged.\n",
    );
    let s2 = env.smctl_json(&["snapshot", "create", "default"]);
    let list = env.smctl_json(&["snapshot", "list", "--limit", "1"]);
    assert_eq!(list["snapshots"][0]["id"], s2["id"]);
    assert_eq!(list["next_cursor"], s2["id"]);
    let page2 = env.smctl_json(&[
        "snapshot",
        "list",
        "--limit",
        "1",
        "--cursor",
        s2["id"].as_str().unwrap(),
    ]);
    assert_eq!(page2["snapshots"][0]["id"].as_str(), Some(id1.as_str()));
    let shown = env.smctl_json(&["snapshot", "show", &id1]);
    assert_eq!(shown["versions"].as_array().unwrap().len(), 3, "{shown}");

    let log = env.smctl_json(&["log", "canvas"]);
    let versions = log["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{log}");
    assert_eq!(versions[0]["parent"], versions[1]["id"]);
    let (new, old) = (
        versions[0]["id"].as_str().unwrap(),
        versions[1]["id"].as_str().unwrap(),
    );
    let d = env.smctl_json(&["diff", old, new]);
    let f = &d["files"][0];
    assert_eq!(f["path"], "skills/canvas/SKILL.md");
    assert!(f["unified"].as_str().unwrap().contains("+Changed."), "{d}");
    assert!(
        f["hunks"][0]["lines"]
            .as_array()
            .unwrap()
            .contains(&"-Do things.".into())
    );
    // Snapshot vs current collection: nothing differs after the second snapshot.
    let same = env.smctl_json(&["diff", s2["id"].as_str().unwrap(), "collection"]);
    assert_eq!(same["files"], serde_json::json!([]));
    env.smctl_json(&["tag", old, "good"]);
    assert_eq!(env.smctl_json(&["show", "good"])["id"].as_str(), Some(old));
}

#[test]
fn export_import_round_trips_byte_for_byte() {
    let env = Env::new();
    let coll = make_collection(
        &env.skillmeat_home,
        "default",
        &[Artifact::skill("canvas"), Artifact::command("review")],
    );
    write(&coll.join("skills/canvas/bin.dat"), b"\0\x01\x02binary");
    let _d = env.daemon();
    let id = env.smctl_json(&["snapshot", "create"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["a.tar.zst", "20260101-000000-000000.tar.gz"] {
        let first = env.path(name);
        env.smctl_json(&["snapshot", "export", &id, "-o", first.to_str().unwrap()]);
        let out = env.smctl(&["snapshot", "export", &id, "-o", first.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "an existing file is not overwritten"
        );
        let imported = env.smctl_json(&["snapshot", "import", first.to_str().unwrap()]);
        let new_id = imported["snapshots"][0]["id"].as_str().unwrap().to_string();
        assert_ne!(new_id, id);
        let again = env.path(&format!("again-{name}"));
        let again = again.with_file_name(format!("again-{name}"));
        env.smctl_json(&["snapshot", "export", &new_id, "-o", again.to_str().unwrap()]);
        if name.ends_with(".zst") {
            assert_eq!(
                std::fs::read(&first).unwrap(),
                std::fs::read(&again).unwrap()
            );
        }
        // Same content: the imported snapshot diffs empty against the original.
        let d = env.smctl_json(&["diff", &id, &new_id]);
        assert_eq!(d["files"], serde_json::json!([]), "{name}: {d}");
    }
    // The SkillMeat layout unpacks to the collection, byte for byte.
    let tgz = std::fs::File::open(env.path("20260101-000000-000000.tar.gz")).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let dest = env.path("unpacked");
    ar.unpack(&dest).unwrap();
    for rel in [
        "collection.toml",
        "skills/canvas/SKILL.md",
        "skills/canvas/bin.dat",
        "commands/review.md",
    ] {
        assert_eq!(
            std::fs::read(dest.join("default").join(rel)).unwrap(),
            std::fs::read(coll.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn skillmeat_snapshots_make_old_bases_findable() {
    let env = Env::new();
    let coll = make_collection(
        &env.skillmeat_home,
        "default",
        &[Artifact::command("review")],
    );
    let old_hash = skillmeatd::hash::content_hash(
        &coll.join("commands/review.md"),
        skillmeatd::hash::Variant::DeployedCopy,
    )
    .unwrap();
    // A SkillMeat snapshot of the old state, then the collection moves on.
    let dir = env.skillmeat_home.join("snapshots/default");
    std::fs::create_dir_all(&dir).unwrap();
    let tgz = std::fs::File::create(dir.join("20251217-103000-123456.tar.gz")).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        tgz,
        flate2::Compression::best(),
    ));
    b.append_dir_all("default", &coll).unwrap();
    b.into_inner().unwrap().finish().unwrap();
    write(&coll.join("commands/review.md"), "new text\n");
    let _d = env.daemon();
    let r = env.smctl_json(&["snapshot", "import", "--skillmeat"]);
    assert_eq!(r["snapshots"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["snapshots"][0]["time"], "2025-12-17T10:30:00Z");
    let log = env.smctl_json(&["log", "review"]);
    assert!(
        log["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["content_hash"] == old_hash.as_str()),
        "{log}"
    );
    let again = env.smctl_json(&["snapshot", "import", "--skillmeat"]);
    assert_eq!(again["skipped"], 1);
}

#[test]
fn deployment_base_is_captured_on_drift() {
    let env = Env::new();
    make_collection(&env.skillmeat_home, "default", &[Artifact::skill("canvas")]);
    let project = env.path("proj");
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".claude",
        &[Artifact::skill("canvas")],
    );
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    env.smctl_json(&["drift"]);
    let log = env.smctl_json(&["log", "canvas", "--project", project.to_str().unwrap()]);
    assert_eq!(log["versions"][0]["origin"], "deploy", "{log}");
    let clog = env.smctl_json(&["log", "canvas"]);
    assert_eq!(clog["versions"][0]["origin"], "deploy", "{clog}");
}

fn gz_tar(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&b.into_inner().unwrap()).unwrap();
    e.finish().unwrap()
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    let env = Env::new();
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[history.import]\nmax_total_bytes = 100000\n",
    );
    let _d = env.daemon();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push((
        "dotdot",
        gz_tar(|b| {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"c/../../x");
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
        }),
        "`..`",
    ));
    cases.push((
        "absolute",
        gz_tar(|b| {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..6].copy_from_slice(b"/c/etc");
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
        }),
        "absolute",
    ));
    cases.push((
        "link",
        gz_tar(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "c/x", "../../../etc/passwd").unwrap();
        }),
        "points outside",
    ));
    cases.push((
        "device",
        gz_tar(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Block);
            h.set_size(0);
            b.append_data(&mut h, "c/sda", std::io::empty()).unwrap();
        }),
        "device file",
    ));
    cases.push((
        "bomb",
        gz_tar(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(1 << 20);
            h.set_mode(0o644);
            b.append_data(&mut h, "c/zeros", &vec![0u8; 1 << 20][..])
                .unwrap();
        }),
        "limit",
    ));
    for (name, bytes, why) in cases {
        let p = env.path(&format!("{name}.tar.gz"));
        std::fs::write(&p, bytes).unwrap();
        let out = env.smctl(&["snapshot", "import", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(why) && err.contains("nothing was imported"),
            "{name}: {err}"
        );
    }
    let s = env.smctl_json(&["status"]);
    assert_eq!(s["history"]["versions"], 0, "{s}");
    assert_eq!(s["history"]["blobs"], 0);
    assert_eq!(snapshot_count(&env), 0);
}

/// kill -9 during a storm of edits and snapshots, several times: after each restart every
/// acknowledged snapshot is present and every blob its versions name can be read (an
/// export reads them all).
#[test]
fn acknowledged_snapshots_survive_kill_9() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let env = Arc::new(Env::new());
    let coll = make_collection(
        &env.skillmeat_home,
        "default",
        &[Artifact::skill("canvas"), Artifact::command("review")],
    );
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..4u32 {
        let mut d = env.daemon();
        let stop = Arc::new(AtomicBool::new(false));
        let storm = {
            let (env, acked, stop, coll) = (env.clone(), acked.clone(), stop.clone(), coll.clone());
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    write(
                        &coll.join("skills/canvas/SKILL.md"),
                        format!("round {round} edit {n}\n"),
                    );
                    write(
                        &coll.join(format!("skills/canvas/f{}.md", n % 7)),
                        vec![b'x'; (n as usize * 997) % 20_000],
                    );
                    let out = env.smctl(&["snapshot", "create", "--format", "json"]);
                    if out.status.success() {
                        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                    }
                }
            })
        };
        // Let a few snapshots through, then kill at a moment that varies by round.
        let target = acked.lock().unwrap().len() + 3 + round as usize;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while acked.lock().unwrap().len() < target && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        d.signal_and_wait(libc::SIGKILL);
        stop.store(true, Ordering::SeqCst);
        storm.join().unwrap();
    }
    let _d = env.daemon();
    let ids = acked.lock().unwrap().clone();
    assert!(
        ids.len() >= 12,
        "too few snapshots acknowledged: {}",
        ids.len()
    );
    for (i, id) in ids.iter().enumerate() {
        env.smctl_json(&["snapshot", "show", id]);
        let out = env.path(&format!("check-{i}.tar.zst"));
        env.smctl_json(&["snapshot", "export", id, "-o", out.to_str().unwrap()]);
    }
}

/// While the daemon watches, every distinct content becomes a version whose parent is the
/// previous one, and the changed root gets an automatic snapshot.
#[test]
fn watched_edits_become_versions_with_parents_and_auto_snapshots() {
    let env = Env::new();
    crate::common::write(
        &env.skillmeat_home.join("daemon.toml"),
        "[history]\nauto_snapshot_interval_secs = 0\n",
    );
    let arts = [Artifact::command("hello")];
    let (_coll, project) = super::live::setup(&env, &arts);
    let _d = env.daemon();
    let p = project.to_str().unwrap();
    env.smctl_json(&["project", "add", p]);
    let file = project.join(".claude/commands/hello.md");
    for content in ["first edit\n", "second edit\n"] {
        crate::common::write(&file, content);
        env.smctl_json(&["drift", "--sync"]);
    }
    let log = env.smctl_json(&["log", "hello", "--project", p]);
    let versions = log["versions"].as_array().unwrap();
    let hashes = content_hashes(&log);
    let expect = |s: &str| hex_sha256(s.as_bytes());
    assert_eq!(hashes[0], expect("second edit\n"), "{log:#}");
    assert_eq!(hashes[1], expect("first edit\n"), "{log:#}");
    assert_eq!(versions.len(), 3, "deployed base + two edits: {log:#}");
    assert_eq!(versions[2]["origin"], "deploy");
    for w in versions.windows(2) {
        assert_eq!(w[0]["parent"], w[1]["id"], "parent links: {log:#}");
    }
    assert_eq!(versions[0]["origin"], "watch");
    // Automatic snapshots of the project were taken (rate limit 0 in this test).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let snaps = env.smctl_json(&["snapshot", "list"]);
        let auto = snaps["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["origin"] == "watch" && s["target"]["project"].is_string())
            .count();
        if auto >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no automatic snapshot: {snaps:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A file put back to its deployed content after an edit is a new version, newest in the
/// log: history's newest version is what the file holds, even when that content is the
/// deployment's base (recorded already at the same place).
#[test]
fn an_edit_put_back_to_the_deployed_content_is_the_newest_version() {
    let env = Env::new();
    let arts = [Artifact::command("hello")];
    let (_coll, project) = super::live::setup(&env, &arts);
    let _d = env.daemon();
    let p = project.to_str().unwrap();
    env.smctl_json(&["project", "add", p]);
    let file = project.join(".claude/commands/hello.md");
    let deployed = std::fs::read(&file).unwrap();
    crate::common::write(&file, "edited\n");
    env.smctl_json(&["drift", "--sync"]);
    crate::common::write(&file, &deployed);
    let drift = env.smctl_json(&["drift", "--sync", "--all"]);
    assert_eq!(drift["artifacts"][0]["drift_type"], "in_sync", "{drift:#}");
    let log = env.smctl_json(&["log", "hello", "--project", p]);
    let versions = log["versions"].as_array().unwrap();
    let hashes = content_hashes(&log);
    assert_eq!(
        hashes,
        [
            hex_sha256(&deployed).as_str(),
            hex_sha256(b"edited\n").as_str(),
            hex_sha256(&deployed).as_str()
        ],
        "put back, edit, deployed base: {log:#}"
    );
    assert_eq!(versions[0]["parent"], versions[1]["id"], "{log:#}");
    assert_eq!(versions[0]["origin"], "watch", "{log:#}");
}

/// The content hash of each version in a `smctl log` answer, newest first.
fn content_hashes(log: &serde_json::Value) -> Vec<&str> {
    log["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["content_hash"].as_str().unwrap())
        .collect()
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
