//! A warm restart trusts the hash cache file only as far as the files' stamps allow: a file
//! changed while the daemon was stopped is hashed again however its size and times were
//! left, a hash taken while its file was still changing (racily clean) is taken again, and
//! a torn or damaged cache file is ignored and rebuilt.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::common::world::{World, edit, pair};
use crate::common::{Env, age};

fn files_read(env: &Env) -> u64 {
    env.smctl_json(&["status"])["files_read"].as_u64().unwrap()
}

/// The hash cache file of this world's store.
fn cache_file(env: &Env) -> PathBuf {
    env.state_dir.join("store.hashes")
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Starts the daemon on the world, checks the skill is in sync and that the cache file was
/// written on the way out.
fn first_run(w: &World) {
    let _d = w.start();
    assert_eq!(w.drift(), pair("in_sync"));
    drop(_d);
    assert!(cache_file(&w.env).is_file(), "no hash cache written");
}

#[test]
fn a_same_size_edit_with_a_new_mtime_while_stopped_is_seen() {
    let w = World::new();
    first_run(&w);
    let skill_md = w.project_skill().join("SKILL.md");
    let before = std::fs::metadata(&skill_md).unwrap().len();
    edit(&skill_md, "line one", "LINE ONE");
    assert_eq!(std::fs::metadata(&skill_md).unwrap().len(), before);
    age(&skill_md);
    let _d = w.env.daemon();
    assert_eq!(w.drift(), pair("modified"));
    assert_eq!(files_read(&w.env), 2, "only the edited skill is read");
}

#[test]
fn a_size_change_under_the_same_mtime_while_stopped_is_seen() {
    let w = World::new();
    first_run(&w);
    let guide = w.project_skill().join("refs/guide.md");
    let was = mtime(&guide);
    std::fs::write(&guide, "guide, longer now\n").unwrap();
    set_mtime(&guide, was);
    assert_eq!(mtime(&guide), was);
    let _d = w.env.daemon();
    assert_eq!(w.drift(), pair("modified"));
}

#[test]
fn a_racily_clean_hash_is_taken_again_after_a_restart() {
    let w = World::new();
    // Modified "just now" however long the daemon takes to start: a stamp in the future is
    // always within the racy window, like a file written in the clock tick of its hash.
    let guide = w.project_skill().join("refs/guide.md");
    let soon = SystemTime::now() + Duration::from_secs(600);
    set_mtime(&guide, soon);
    first_run(&w);
    {
        let _d = w.env.daemon();
        assert_eq!(w.drift(), pair("in_sync"));
        assert_eq!(files_read(&w.env), 2, "the racy skill was trusted");
    }
    // The same size, and the same mtime to the nanosecond, while stopped.
    edit(&guide, "guide", "GUIDE");
    set_mtime(&guide, soon);
    let _d = w.env.daemon();
    assert_eq!(w.drift(), pair("modified"));
}

#[test]
fn a_torn_or_damaged_cache_file_is_ignored_and_rebuilt() {
    let w = World::new();
    first_run(&w);
    let file = cache_file(&w.env);
    let whole = std::fs::read(&file).unwrap();
    let flipped = {
        let mut b = whole.clone();
        let mid = b.len() / 2;
        b[mid] ^= 0x20;
        b
    };
    for (what, bytes) in [
        ("torn", whole[..whole.len() / 2].to_vec()),
        ("flipped", flipped),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&file, &bytes).unwrap();
        {
            let d = w.env.daemon();
            assert_eq!(w.drift(), pair("in_sync"), "{what}");
            assert_eq!(files_read(&w.env), 4, "{what}: not rebuilt by hashing");
            assert!(d.log_text().contains("hash cache ignored"), "{what}");
        }
        let _d = w.env.daemon();
        assert_eq!(
            files_read(&w.env),
            0,
            "{what}: the rebuilt cache was not used"
        );
        assert_eq!(w.drift(), pair("in_sync"));
    }
    // An edit while stopped is still seen through a rebuilt cache.
    edit(&w.project_skill().join("SKILL.md"), "line two", "line 2");
    let _d = w.env.daemon();
    assert_eq!(w.drift(), pair("modified"));
}
