//! Writer tests on real folders: failures are provoked for real (a lock held by another
//! process, a read-only folder) or injected between the two renames of a folder swap.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

use super::*;
use crate::transient::STAGE_MARKER;

fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>, u32)> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .map(|e| {
            let m = e.path().symlink_metadata().unwrap();
            let bytes = m.is_file().then(|| std::fs::read(e.path()).unwrap());
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            (rel, bytes, m.permissions().mode())
        })
        .collect()
}

/// Names in `dir` that a write left behind (lock files are meant to stay).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(STAGE_MARKER))
        .collect()
}

fn files(entries: &[(&str, &str, u32)]) -> DirFiles {
    entries
        .iter()
        .map(|(p, c, m)| (PathBuf::from(p), (c.as_bytes().to_vec(), *m)))
        .collect()
}

/// Another process holding SkillMeat's lock on `dest`, via util-linux `flock`.
struct Holder(Child);

impl Holder {
    fn hold(dest: &Path) -> Holder {
        // The shell becomes `sleep` holding fd 9: killing it releases the lock.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "exec 9>>\"$1\" && flock 9 && echo locked && exec sleep 60",
                "sh",
            ])
            .arg(lock_path(dest))
            .stdout(Stdio::piped())
            .spawn()
            .expect("util-linux flock");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes a folder unwritable even for root (chmod, then the immutable flag), undone on drop.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn make(dir: &Path) -> ReadOnly {
        std::fs::set_permissions(dir, Permissions::from_mode(0o555)).unwrap();
        let guard = ReadOnly(dir.to_path_buf());
        if !Self::writable(dir) {
            return guard;
        }
        let ok = Command::new("chattr").arg("+i").arg(dir).status();
        assert!(
            ok.is_ok_and(|s| s.success()) && !Self::writable(dir),
            "cannot make {} read-only here (running as root without chattr?)",
            dir.display()
        );
        guard
    }

    fn writable(dir: &Path) -> bool {
        let probe = dir.join(".probe");
        let ok = File::create(&probe).is_ok();
        let _ = std::fs::remove_file(probe);
        ok
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        let _ = std::fs::set_permissions(&self.0, Permissions::from_mode(0o755));
    }
}

#[test]
fn replace_file_creates_replaces_and_keeps_the_mode() {
    let d = tempfile::tempdir().unwrap();
    let w = Writer::new();
    w.replace_file(d.path(), Path::new("commands/review.md"), b"one\n")
        .unwrap();
    let path = d.path().join("commands/review.md");
    assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
    assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o644);
    std::fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
    w.replace_file(d.path(), &path, b"two\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
    assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert!(leftovers(&d.path().join("commands")).is_empty());
    assert!(
        d.path()
            .join("commands/.review.md.skillmeat-lock")
            .is_file()
    );
}

#[test]
fn update_file_reads_under_the_lock_and_skips_identical_content() {
    let d = tempfile::tempdir().unwrap();
    let w = Writer::new();
    let wrote = w
        .update_file(d.path(), Path::new("f.toml"), |old| {
            assert_eq!(old, None);
            Ok::<_, WriteError>(Some(b"a = 1\n".to_vec()))
        })
        .unwrap();
    assert!(wrote);
    let wrote = w
        .update_file(d.path(), Path::new("f.toml"), |old| {
            Ok::<_, WriteError>(old.map(<[u8]>::to_vec))
        })
        .unwrap();
    assert!(!wrote, "identical bytes are not rewritten");
    let err = w
        .update_file(d.path(), Path::new("f.toml"), |_| {
            Err::<Option<Vec<u8>>, _>(WriteError::BadEntry {
                path: "f.toml".into(),
                entry: "x".into(),
            })
        })
        .unwrap_err();
    assert!(matches!(err, WriteError::BadEntry { .. }));
    assert_eq!(std::fs::read(d.path().join("f.toml")).unwrap(), b"a = 1\n");

    // A refused edit in folders made for it leaves no folder (nor lock file) behind.
    let wrote = w
        .update_file(d.path(), Path::new("new/deep/f.toml"), |_| {
            Ok::<_, WriteError>(None)
        })
        .unwrap();
    assert!(!wrote);
    assert!(!d.path().join("new").exists());
}

#[test]
fn a_lock_held_by_another_process_fails_cleanly_after_the_wait() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("skills/review");
    let w = Writer::new().with_lock_wait(Duration::from_millis(300));
    w.replace_dir(d.path(), &dest, &files(&[("SKILL.md", "old\n", 0o644)]))
        .unwrap();
    std::fs::write(d.path().join("x.md"), "x\n").unwrap();
    let holder = Holder::hold(&dest);
    let holder_x = Holder::hold(&d.path().join("x.md"));
    let before = snapshot(d.path());

    let err = w
        .replace_dir(d.path(), &dest, &files(&[("SKILL.md", "new\n", 0o644)]))
        .unwrap_err();
    assert!(matches!(err, WriteError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    assert!(err.to_string().contains("skills/review"), "{err}");
    let err = w
        .replace_file(d.path(), Path::new("x.md"), b"y\n")
        .unwrap_err();
    assert!(matches!(err, WriteError::Locked { .. }), "{err}");
    let err = w.remove(d.path(), Path::new("x.md")).unwrap_err();
    assert!(matches!(err, WriteError::Locked { .. }), "{err}");
    assert_eq!(snapshot(d.path()), before, "nothing changed");

    drop((holder, holder_x));
    w.replace_dir(d.path(), &dest, &files(&[("SKILL.md", "new\n", 0o644)]))
        .unwrap();
    assert_eq!(std::fs::read(dest.join("SKILL.md")).unwrap(), b"new\n");
}

#[test]
fn a_lock_released_during_the_wait_lets_the_write_through() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("a.md");
    let held = Lock::acquire(&dest, Duration::ZERO, LOCK_POLL).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let root = d.path().to_path_buf();
    let writer = std::thread::spawn(move || {
        tx.send(()).unwrap();
        Writer::new().replace_file(&root, Path::new("a.md"), b"written\n")
    });
    rx.recv().unwrap();
    drop(held);
    writer.join().unwrap().unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"written\n");
}

#[test]
fn a_read_only_folder_leaves_everything_as_it_was() {
    let d = tempfile::tempdir().unwrap();
    let w = Writer::new();
    w.replace_file(d.path(), Path::new("commands/a.md"), b"keep\n")
        .unwrap();
    w.replace_dir(
        d.path(),
        Path::new("skills/s"),
        &files(&[("SKILL.md", "keep\n", 0o644)]),
    )
    .unwrap();
    let before = snapshot(d.path());
    {
        let _ro = ReadOnly::make(&d.path().join("commands"));
        let _ro2 = ReadOnly::make(&d.path().join("skills"));
        let err = w
            .replace_file(d.path(), Path::new("commands/a.md"), b"new\n")
            .unwrap_err();
        assert!(err.to_string().contains("commands"), "{err}");
        assert!(matches!(err, WriteError::Io { .. }), "{err}");
        let err = w
            .replace_dir(
                d.path(),
                Path::new("skills/s"),
                &files(&[("SKILL.md", "new\n", 0o644)]),
            )
            .unwrap_err();
        assert!(matches!(err, WriteError::Io { .. }), "{err}");
        let err = w
            .replace_file(d.path(), Path::new("commands/new/b.md"), b"new\n")
            .unwrap_err();
        assert!(err.to_string().contains("create folder"), "{err}");
        assert!(w.remove(d.path(), Path::new("commands/a.md")).is_err());
    }
    assert_eq!(snapshot(d.path()), before);
}

#[test]
fn a_failed_second_rename_puts_the_old_folder_back() {
    let d = tempfile::tempdir().unwrap();
    let dest = Path::new("skills/s");
    let mut w = Writer::new();
    w.replace_dir(
        d.path(),
        dest,
        &files(&[
            ("SKILL.md", "old\n", 0o644),
            ("lib/run.sh", "#!/bin/sh\n", 0o755),
        ]),
    )
    .unwrap();
    w.replace_file(d.path(), Path::new("x.md"), b"old\n")
        .unwrap();
    let before = snapshot(d.path());
    w.exchange = false;
    w.fault = Some(Fault::SecondDirRename);
    let err = w
        .replace_dir(d.path(), dest, &files(&[("SKILL.md", "new\n", 0o644)]))
        .unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(snapshot(d.path()), before);
    assert!(leftovers(&d.path().join("skills")).is_empty());

    w.fault = Some(Fault::BeforeFileRename);
    let err = w
        .replace_file(d.path(), Path::new("x.md"), b"new\n")
        .unwrap_err();
    assert!(err.to_string().contains("rename staged copy"), "{err}");
    assert!(leftovers(d.path()).is_empty());
    assert_eq!(snapshot(d.path()), before);
}

#[test]
fn replace_dir_writes_exactly_the_given_files_with_modes() {
    let d = tempfile::tempdir().unwrap();
    let w = Writer::new();
    let dest = d.path().join("skills/s");
    w.replace_dir(
        d.path(),
        &dest,
        &files(&[("SKILL.md", "a\n", 0o644), ("old.md", "x\n", 0o644)]),
    )
    .unwrap();
    w.replace_dir(
        d.path(),
        &dest,
        &files(&[
            ("SKILL.md", "b\n", 0o644),
            ("bin/run", "#!/bin/sh\n", 0o755),
        ]),
    )
    .unwrap();
    let got: Vec<_> = snapshot(&dest)
        .into_iter()
        .filter_map(|(p, b, m)| b.map(|b| (p, b, m & 0o777)))
        .collect();
    assert_eq!(
        got,
        vec![
            (PathBuf::from("SKILL.md"), b"b\n".to_vec(), 0o644),
            (PathBuf::from("bin/run"), b"#!/bin/sh\n".to_vec(), 0o755),
        ]
    );
    assert_eq!(dest.metadata().unwrap().permissions().mode() & 0o777, 0o755);
    assert!(leftovers(&d.path().join("skills")).is_empty());

    let err = w
        .replace_dir(d.path(), &dest, &files(&[("../evil", "x", 0o644)]))
        .unwrap_err();
    assert!(matches!(err, WriteError::BadEntry { .. }), "{err}");
}

#[test]
fn symlinks_are_never_followed_out_of_the_root() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.md"), "secret\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("skills")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.md"), root.join("link.md")).unwrap();
    let w = Writer::new();

    let err = w
        .replace_file(&root, Path::new("skills/x.md"), b"x")
        .unwrap_err();
    assert!(matches!(err, WriteError::SymlinkEscape { .. }), "{err}");
    let err = w
        .update_file(&root, Path::new("link.md"), |old| {
            panic!("read through an escaping link: {old:?}")
        })
        .map(|_: bool| ())
        .unwrap_err();
    assert!(matches!(err, WriteError::SymlinkEscape { .. }), "{err}");
    let err = w
        .replace_file(&root, &outside.join("secret.md"), b"x")
        .unwrap_err();
    assert!(matches!(err, WriteError::Outside { .. }), "{err}");
    assert!(err.to_string().contains("outside"), "{err}");

    // Replacing or removing the link itself never touches what it points at.
    w.replace_dir(&root, Path::new("skills"), &files(&[("a.md", "a", 0o644)]))
        .unwrap();
    assert!(w.remove(&root, Path::new("link.md")).unwrap());
    assert_eq!(
        std::fs::read(outside.join("secret.md")).unwrap(),
        b"secret\n"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert!(root.join("skills").symlink_metadata().unwrap().is_dir());
}

#[test]
fn remove_deletes_files_and_folders_and_reports_absence() {
    let d = tempfile::tempdir().unwrap();
    let w = Writer::new();
    w.replace_dir(
        d.path(),
        Path::new("skills/s"),
        &files(&[("a/b.md", "x", 0o644)]),
    )
    .unwrap();
    assert!(w.remove(d.path(), Path::new("skills/s")).unwrap());
    assert!(!d.path().join("skills/s").exists());
    assert!(!w.remove(d.path(), Path::new("skills/s")).unwrap());
    assert!(!w.remove(d.path(), Path::new("no/such/thing")).unwrap());
    assert!(!d.path().join("no").exists(), "remove creates no folders");
    assert!(leftovers(&d.path().join("skills")).is_empty());
}
