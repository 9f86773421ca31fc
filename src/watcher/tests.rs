//! The watcher with real kernel events and the poller.

use super::*;

#[tokio::test]
async fn kernel_events_become_hints() {
    let d = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let overflow = Arc::new(Overflow::default());
    let mut w = Watcher::new(tx, overflow, false, Duration::from_millis(100));
    let roots = BTreeMap::from([(d.path().to_path_buf(), Depth::Recursive)]);
    let (added, polled) = w.set_roots(&roots);
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
    w.set_roots(&BTreeMap::from([(
        d.path().to_path_buf(),
        Depth::Recursive,
    )]));
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
    w.set_roots(&BTreeMap::from([(d.path().to_path_buf(), Depth::Flat)]));
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
    w.set_roots(&BTreeMap::from([(
        d.path().to_path_buf(),
        Depth::Recursive,
    )]));
    for i in 0..20 {
        std::fs::write(d.path().join(format!("f{i}")), b"1").unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), overflow.notify.notified())
        .await
        .unwrap();
    assert!(overflow.take());
}
