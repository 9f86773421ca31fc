//! The watcher with real kernel events and the poller.

use super::*;

#[tokio::test]
async fn kernel_events_become_hints() {
    let d = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let overflow = Arc::new(Overflow::default());
    let mut w = Watcher::new(tx, overflow, false, Duration::from_millis(100));
    let roots = BTreeMap::from([(d.path().to_path_buf(), Depth::Recursive)]);
    let (added, polled) = w.set_roots(&roots, None);
    assert_eq!(added, [d.path().to_path_buf()]);
    assert!(polled.is_empty());
    std::fs::write(d.path().join("f"), b"1").unwrap();
    let hint = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(hint.paths.iter().any(|p| p.ends_with("f")), "{hint:?}");
}

#[tokio::test]
async fn a_write_is_complete_when_closed_and_a_rename_into_place_at_once() {
    let d = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let overflow = Arc::new(Overflow::default());
    let mut w = Watcher::new(tx, overflow, false, Duration::from_millis(100));
    w.set_roots(
        &BTreeMap::from([(d.path().to_path_buf(), Depth::Recursive)]),
        None,
    );
    let (f, staged) = (d.path().join("f"), d.path().join("staged"));
    let mut open = std::fs::File::create(&f).unwrap();
    std::io::Write::write_all(&mut open, b"1").unwrap();
    std::fs::write(&staged, b"2").unwrap();
    let next = async |rx: &mut mpsc::Receiver<Hint>| {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap()
    };
    // Until `open` is closed, `f` is only being written.
    let mut f_stages = Vec::new();
    loop {
        let h = next(&mut rx).await;
        if h.paths.contains(&staged) && h.stage == Stage::Complete {
            break;
        }
        if h.paths.contains(&f) {
            f_stages.push(h.stage);
        }
    }
    assert!(
        f_stages.iter().all(|s| *s == Stage::Writing),
        "{f_stages:?}"
    );
    drop(open);
    std::fs::remove_file(&f).unwrap();
    std::fs::rename(&staged, &f).unwrap();
    // Closed, removed, then renamed into place: complete again.
    let mut seen = Vec::new();
    while !(seen.contains(&(f.clone(), Stage::Removed))
        && seen.last() == Some(&(f.clone(), Stage::Complete)))
    {
        let h = next(&mut rx).await;
        seen.extend(h.paths.into_iter().map(|p| (p, h.stage)));
    }
    assert!(seen.contains(&(staged.clone(), Stage::Removed)), "{seen:?}");
}

#[tokio::test]
async fn a_walk_asked_for_sends_its_marker_after_the_changes_it_found() {
    let d = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let overflow = Arc::new(Overflow::default());
    // Forced polling, an interval no test waits for: only the request makes a walk.
    let mut w = Watcher::new(tx, overflow, true, Duration::from_secs(3600));
    w.set_roots(
        &BTreeMap::from([(d.path().to_path_buf(), Depth::Flat)]),
        None,
    );
    std::fs::write(d.path().join("f"), b"1").unwrap();
    let marker = d.path().join(crate::transient::cookie_name(1));
    w.poll_now().request(marker.clone());
    let wait = Duration::from_secs(10);
    let first = tokio::time::timeout(wait, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.paths.contains(&d.path().join("f")), "{first:?}");
    let second = tokio::time::timeout(wait, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.paths, [marker]);
    assert!(!d.path().join(crate::transient::cookie_name(1)).exists());
}

#[tokio::test]
async fn a_full_queue_raises_overflow() {
    let d = tempfile::tempdir().unwrap();
    let (tx, _rx) = mpsc::channel(1);
    let overflow = Arc::new(Overflow::default());
    let mut w = Watcher::new(tx, Arc::clone(&overflow), false, Duration::from_millis(100));
    w.set_roots(
        &BTreeMap::from([(d.path().to_path_buf(), Depth::Recursive)]),
        None,
    );
    for i in 0..20 {
        std::fs::write(d.path().join(format!("f{i}")), b"1").unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), overflow.notify.notified())
        .await
        .unwrap();
    assert!(overflow.take());
}

/// The next hint naming `path` (within 10 s), with the hints before it.
async fn hint_for(rx: &mut mpsc::Receiver<Hint>, path: &Path) -> (Hint, Vec<Hint>) {
    let mut before = Vec::new();
    loop {
        let h = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no hint for {path:?}; saw {before:?}"))
            .unwrap();
        if h.paths.iter().any(|p| p == path) {
            return (h, before);
        }
        before.push(h);
    }
}

fn watcher(root: &Path, depth: Depth) -> (Watcher, mpsc::Receiver<Hint>) {
    let (tx, rx) = mpsc::channel(1024);
    let mut w = Watcher::new(
        tx,
        Arc::new(Overflow::default()),
        false,
        Duration::from_secs(3600),
    );
    let (_, polled) = w.set_roots(&BTreeMap::from([(root.to_path_buf(), depth)]), None);
    assert!(polled.is_empty(), "{polled:?}");
    (w, rx)
}

#[tokio::test]
async fn folders_made_below_a_recursive_root_are_watched_at_once() {
    let d = tempfile::tempdir().unwrap();
    let (_w, mut rx) = watcher(d.path(), Depth::Recursive);
    // Made and written in one go: a folder made after its parent's walk is watched when
    // its own event comes, so the hints are taken until they stop.
    let deep = d.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("first"), b"1").unwrap();
    let mut seen = Vec::new();
    while let Ok(Some(h)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        seen.extend(h.paths);
    }
    assert!(seen.contains(&d.path().join("a")), "{seen:?}");
    // Every folder made is watched: its own changes come.
    std::fs::write(deep.join("f"), b"1").unwrap();
    let mut stages = Vec::new();
    while stages.last() != Some(&Stage::Complete) {
        stages.push(hint_for(&mut rx, &deep.join("f")).await.0.stage);
    }
    assert_eq!(stages[0], Stage::Writing, "made, then written: {stages:?}");
}

#[tokio::test]
async fn a_folder_renamed_inside_the_root_reports_under_its_new_path_only() {
    let d = tempfile::tempdir().unwrap();
    let (old, new) = (d.path().join("x"), d.path().join("y"));
    std::fs::create_dir_all(old.join("sub")).unwrap();
    let (_w, mut rx) = watcher(d.path(), Depth::Recursive);
    std::fs::rename(&old, &new).unwrap();
    let (h, _) = hint_for(&mut rx, &new).await;
    assert_eq!(h.stage, Stage::Complete, "renamed into place");
    std::fs::write(new.join("sub/f"), b"1").unwrap();
    let (_, before) = hint_for(&mut rx, &new.join("sub/f")).await;
    let stale: Vec<&PathBuf> = before
        .iter()
        .flat_map(|h| &h.paths)
        .filter(|p| p.starts_with(&old) && *p != &old)
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
}

#[tokio::test]
async fn a_folder_moved_out_of_the_root_is_no_longer_reported() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let away = d.path().join("away");
    std::fs::create_dir_all(root.join("x")).unwrap();
    let (_w, mut rx) = watcher(&root, Depth::Recursive);
    std::fs::rename(root.join("x"), &away).unwrap();
    hint_for(&mut rx, &root.join("x")).await;
    std::fs::write(away.join("f"), b"1").unwrap();
    // A marker written after it: every hint before the marker's is checked.
    std::fs::write(root.join("marker"), b"1").unwrap();
    let (_, before) = hint_for(&mut rx, &root.join("marker")).await;
    assert!(
        before
            .iter()
            .all(|h| h.paths.iter().all(|p| !p.ends_with("f"))),
        "{before:?}"
    );
}

#[tokio::test]
async fn a_folder_linked_below_a_recursive_root_is_watched_through_its_link() {
    let d = tempfile::tempdir().unwrap();
    let (root, target) = (d.path().join("root"), d.path().join("elsewhere/skill"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, root.join("skill")).unwrap();
    // A link back up (a loop) is not followed.
    std::os::unix::fs::symlink(&root, target.join("loop")).unwrap();
    let (_w, mut rx) = watcher(&root, Depth::Recursive);
    std::fs::write(target.join("SKILL.md"), b"1").unwrap();
    hint_for(&mut rx, &root.join("skill/SKILL.md")).await;
}

#[tokio::test]
async fn dropping_a_flat_root_keeps_the_recursive_root_inside_it() {
    let d = tempfile::tempdir().unwrap();
    let inner = d.path().join(".claude");
    std::fs::create_dir_all(inner.join("skills")).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let mut w = Watcher::new(
        tx,
        Arc::new(Overflow::default()),
        false,
        Duration::from_secs(3600),
    );
    w.set_roots(
        &BTreeMap::from([
            (d.path().to_path_buf(), Depth::Flat),
            (inner.clone(), Depth::Recursive),
        ]),
        None,
    );
    w.set_roots(&BTreeMap::from([(inner.clone(), Depth::Recursive)]), None);
    std::fs::write(inner.join("skills/f"), b"1").unwrap();
    hint_for(&mut rx, &inner.join("skills/f")).await;
}

/// notify's watcher, used where inotify is not, still turns events into hints.
#[tokio::test]
async fn the_portable_watcher_turns_events_into_hints() {
    let d = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let mut k = portable::Kernel::start(tx, Arc::new(Overflow::default())).unwrap();
    k.watch(d.path(), Depth::Recursive).unwrap();
    std::fs::create_dir_all(d.path().join("a")).unwrap();
    std::fs::write(d.path().join("f"), b"1").unwrap();
    let (h, _) = hint_for(&mut rx, &d.path().join("f")).await;
    assert!(matches!(h.stage, Stage::Writing | Stage::Complete), "{h:?}");
    k.unwatch(d.path(), Depth::Recursive);
}

/// A folder swapped into place (`RENAME_EXCHANGE`, as the daemon's own writes do) is
/// watched under its path afterwards; the one swapped away is not reported there.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_folder_swapped_into_place_is_watched() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let (live, staged) = (d.path().join("skill"), d.path().join("staged"));
    std::fs::create_dir_all(live.join("refs")).unwrap();
    std::fs::create_dir_all(staged.join("refs")).unwrap();
    let (_w, mut rx) = watcher(d.path(), Depth::Recursive);
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let (a, b) = (c(&staged), c(&live));
    // SAFETY: two valid NUL-terminated paths; the flags are a plain exchange.
    let swapped = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(swapped, 0, "{}", std::io::Error::last_os_error());
    hint_for(&mut rx, &live).await;
    // Written in the folder now at `skill`, and in the one swapped away to `staged`.
    std::fs::write(live.join("refs/new.md"), b"1").unwrap();
    let (_, before) = hint_for(&mut rx, &live.join("refs/new.md")).await;
    std::fs::write(staged.join("refs/old.md"), b"1").unwrap();
    std::fs::write(d.path().join("marker"), b"1").unwrap();
    let (_, after) = hint_for(&mut rx, &d.path().join("marker")).await;
    let wrong: Vec<&PathBuf> = before
        .iter()
        .chain(&after)
        .flat_map(|h| &h.paths)
        .filter(|p| p.ends_with("refs/old.md") && p.starts_with(&live))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// The folders below a recursive root are listed as they are watched, each with every
/// entry's metadata; a flat root's are not, nor anything already watched.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn watching_a_root_lists_its_folders_for_the_hash_walks() {
    use crate::hash::scan::Kind;
    let d = tempfile::tempdir().unwrap();
    let (tree, flat) = (d.path().join("tree"), d.path().join("flat"));
    std::fs::create_dir_all(tree.join("skill/sub")).unwrap();
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::write(tree.join("skill/SKILL.md"), b"s").unwrap();
    std::fs::write(tree.join("skill/sub/notes.txt"), b"notes").unwrap();
    std::fs::write(flat.join("f"), b"f").unwrap();
    let (tx, _rx) = mpsc::channel(1024);
    let mut w = Watcher::new(
        tx,
        Arc::new(Overflow::default()),
        false,
        Duration::from_secs(3600),
    );
    let mut scan = Scan::new();
    let roots = BTreeMap::from([
        (tree.clone(), Depth::Recursive),
        (flat.clone(), Depth::Flat),
    ]);
    let (added, polled) = w.set_roots(&roots, Some(&mut scan));
    assert_eq!(added.len(), 2);
    assert!(polled.is_empty(), "{polled:?}");
    let names = |dir: &Path| -> Vec<String> {
        let listing = scan
            .listing(dir)
            .unwrap_or_else(|| panic!("{} not listed", dir.display()));
        listing
            .entries()
            .iter()
            .map(|e| listing.name(e).to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&tree), ["skill"]);
    assert_eq!(names(&tree.join("skill")), ["SKILL.md", "sub"]);
    assert_eq!(names(&tree.join("skill/sub")), ["notes.txt"]);
    let notes = scan.entry(&tree.join("skill/sub/notes.txt")).unwrap();
    assert_eq!((notes.kind, notes.stamp.size), (Kind::File, 5));
    assert!(scan.listing(&flat).is_none());
    assert_eq!(scan.len(), 3);
    for variant in [
        crate::hash::Variant::Legacy,
        crate::hash::Variant::DeployedCopy,
    ] {
        assert_eq!(
            crate::hash::walk_in(&tree.join("skill"), variant, Some(&scan)).unwrap(),
            crate::hash::walk(&tree.join("skill"), variant).unwrap()
        );
    }
    // Roots already watched are not walked again.
    let mut again = Scan::new();
    let (added, _) = w.set_roots(&roots, Some(&mut again));
    assert!(added.is_empty());
    assert!(again.is_empty());
}
