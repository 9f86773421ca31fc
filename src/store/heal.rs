//! Opening, checking, reopening and repairing the store.
//!
//! - **Open** ([`open_checked`]): sled opens the folder inside `catch_unwind`; the layout
//!   version is checked (a version 1 store is converted to framed records, a version 2 one
//!   to compact history records and delta blobs); the store's
//!   write counter is compared with the *seal*, a small file beside the store that records
//!   the counter last made durable. sled silently drops the rest of its log after a damaged
//!   spot, so a store that opens but holds fewer writes than it sealed is damaged. A marker
//!   file beside the store is present while sled opens it: if the process died there, the
//!   next start treats the store as damaged instead of dying again.
//! - **Reopen** ([`Store::tend`] on a full or failed store): sled stays failed after an I/O
//!   error, so once the disk has room again the database is closed and opened again, and a
//!   flush proves writes work.
//! - **Repair** ([`Store::tend`] on a damaged store): the store is moved aside (kept, as
//!   `store.damaged-<time>`), a fresh one is opened, and [`super::salvage`] copies every
//!   readable record and blob into it; the report is written into the damaged copy.
//!
//! Each reopen or repair publishes a new [`Generation`], so the live task rebuilds what it
//! derives from the store. [`keep`] is the supervised task that calls [`Store::tend`].

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::frame::TreeId;
use super::health::{MOVED_PREFIX, Moved, REPORT};
use super::{
    Condition, Handles, ID_FLOOR_KEY, Options, STAMP_KEY, Store, StoreError, Trouble, contained,
    unframe,
};

/// How often the keeper looks at the store (seal, reopen attempts).
const KEEP_EVERY: Duration = Duration::from_secs(2);
/// Free space below which a reopen is not even tried.
const MIN_FREE: u64 = 1 << 20;

/// Now, in ms since the epoch (the store sits below the history engine, which owns the
/// clock's formats).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// The seal file of the store in `dir`.
fn seal_path(dir: &Path) -> PathBuf {
    beside(dir, ".seal")
}

/// The seal: the write counter made durable and, after a clean close, each sled file's
/// size and modification time (so a start can tell that something else touched them).
#[derive(Debug, Default, PartialEq, Eq)]
struct Seal {
    stamp: u64,
    /// `Some` after a clean close.
    files: Option<Vec<String>>,
}

fn read_seal(dir: &Path) -> Option<Seal> {
    let text = std::fs::read_to_string(seal_path(dir)).ok()?;
    let mut lines = text.lines();
    let stamp = lines.next()?.strip_prefix("stamp ")?.trim().parse().ok()?;
    let files = (lines.next() == Some("clean")).then(|| lines.map(str::to_string).collect());
    Some(Seal { stamp, files })
}

fn write_seal(dir: &Path, seal: &Seal) -> std::io::Result<()> {
    let path = seal_path(dir);
    let tmp = beside(dir, ".seal.tmp");
    let mut text = format!("stamp {}\n", seal.stamp);
    if let Some(files) = &seal.files {
        text += "clean\n";
        for f in files {
            text += f;
            text.push('\n');
        }
    }
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

/// Each file of the store with its size and modification time, sorted.
fn file_stamps(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let rel = e.path().strip_prefix(dir).ok()?.display().to_string();
            Some(format!(
                "{rel} {} {}.{}",
                m.len(),
                m.mtime(),
                m.mtime_nsec()
            ))
        })
        .collect();
    out.sort();
    out
}

/// Copies the files of `from` into a new folder `to`.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in walkdir::WalkDir::new(from) {
        let e = e.map_err(std::io::Error::other)?;
        let dest = to.join(e.path().strip_prefix(from).map_err(std::io::Error::other)?);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if e.file_type().is_file() {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Bytes available to this user on the filesystem holding `dir` (or its parent).
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let probe = if dir.exists() { dir } else { dir.parent()? };
    let c = std::ffi::CString::new(probe.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `s` points to writable memory of the
    // right size; statvfs fills it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `s`.
    let s = unsafe { s.assume_init() };
    // The field types differ between platforms (u32 on macOS).
    #[allow(clippy::useless_conversion)]
    Some(u64::from(s.f_bavail).saturating_mul(u64::from(s.f_frsize)))
}

/// Reads a framed `u64` from meta (LE), or a version 1 bare value.
fn meta_u64(h: &Handles, key: &[u8]) -> Result<Option<u64>, StoreError> {
    let Some(v) = h.meta.get(key)? else {
        return Ok(None);
    };
    let bytes = unframe(TreeId::Meta, key, &v)?;
    let n = bytes
        .try_into()
        .map(u64::from_le_bytes)
        .map_err(|_| StoreError::Corrupt {
            tree: "meta",
            detail: format!("{} is not a number", String::from_utf8_lossy(key)),
        })?;
    Ok(Some(n))
}

/// Opens sled's database in `dir`. Its file lock outlives a database closed in this
/// process while sled's flusher thread ends, and calls in flight may hold the old database
/// a moment longer: a lock still held is waited for, up to a second.
fn open_sled(dir: &Path, options: &Options) -> Result<sled::Db, StoreError> {
    let mut attempt = 0;
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .segment_size(super::migrate::segment_size(dir))
            .open();
        match opened {
            Err(sled::Error::Io(e)) if lock_held(&e) && attempt < 50 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                return other.map_err(|source| StoreError::Open {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// Whether sled failed to open because its file lock is held. sled reports that as an
/// error of kind `Other` whose text holds the lock's own error, so the text is all there is
/// to tell it by.
fn lock_held(e: &std::io::Error) -> bool {
    let text = e.to_string();
    text.starts_with("could not acquire lock on ") && text.contains("WouldBlock")
}

/// Opens sled in `dir` and checks it: layout version (converting version 1), write counter
/// against the seal. Returns the trees and the write counter.
///
/// # Errors
/// sled fails or panics, the store is newer than this daemon, or it is damaged.
pub(super) fn open_checked(dir: &Path, options: &Options) -> Result<(Handles, u64), StoreError> {
    let marker = beside(dir, ".opening");
    if marker.exists() {
        let _ = std::fs::remove_file(&marker);
        return Err(StoreError::Corrupt {
            tree: "store",
            detail: "the last attempt to open it ended the process".into(),
        });
    }
    if let Some(parent) = dir.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let existed = dir.join("conf").exists();
    if !existed {
        // A new store: a seal left by an earlier one says nothing about it.
        let _ = std::fs::remove_file(seal_path(dir));
    }
    // sled rewrites and truncates its log when it opens a damaged store, destroying what a
    // salvage could still read. A store not closed cleanly, or whose files changed since,
    // is copied first; the copy is what a repair salvages.
    let evidence = beside(dir, ".evidence");
    let _ = std::fs::remove_dir_all(&evidence);
    let suspect =
        existed && read_seal(dir).is_some_and(|s| s.files.as_ref() != Some(&file_stamps(dir)));
    if suspect && let Err(e) = copy_tree(dir, &evidence) {
        tracing::warn!(error = %e, "cannot copy the store before opening it");
        let _ = std::fs::remove_dir_all(&evidence);
    }
    let _ = std::fs::write(&marker, b"");
    let result = contained(|| {
        let h = Handles::open(open_sled(dir, options)?)?;
        super::migrate::check_schema(dir, &h)?;
        let stamp = meta_u64(&h, STAMP_KEY)?.unwrap_or(0);
        if let Some(sealed) = read_seal(dir).map(|s| s.stamp)
            && sealed > stamp
        {
            return Err(StoreError::Corrupt {
                tree: "store",
                detail: format!(
                    "it lost writes it had made durable (it ends at write {stamp}, write \
                     {sealed} was sealed)"
                ),
            });
        }
        Ok((h, stamp))
    });
    let _ = std::fs::remove_file(&marker);
    match &result {
        Ok((_, stamp)) => {
            let _ = std::fs::remove_dir_all(&evidence);
            // Open now: a crash from here on leaves an unclean seal.
            let _ = write_seal(
                dir,
                &Seal {
                    stamp: *stamp,
                    files: None,
                },
            );
        }
        Err(_) if evidence.is_dir() => {
            // Salvage the copy taken before sled touched the files.
            if std::fs::remove_dir_all(dir).is_ok() {
                let _ = std::fs::rename(&evidence, dir);
            }
        }
        Err(_) => {}
    }
    result
}

impl Store {
    /// Does what the store needs now: repair it when damaged, reopen it when full or failed
    /// (once there is room), or seal what was made durable; the hash cache is written back
    /// when due. Blocking; called by the keeper.
    pub fn tend(&self) {
        self.save_hashes_if_due();
        match self.condition().0 {
            Condition::Damaged => self.repair(),
            Condition::Failed if self.is_closed() => {}
            Condition::Full | Condition::Failed => self.reopen(),
            Condition::Ok => self.seal(),
            Condition::Repairing => {}
        }
    }

    /// Flushes, closes the database and seals it with its files' sizes and times (on
    /// shutdown; the store answers "unavailable" afterwards).
    ///
    /// # Errors
    /// The flush failed.
    pub fn close(&self) -> Result<(), StoreError> {
        if self.condition().0 != Condition::Ok {
            return Ok(());
        }
        self.flush()?;
        let stamp = self.shared.flushed.load(Ordering::SeqCst);
        self.set_condition(Condition::Failed, "closed".into());
        drop(self.uninstall());
        // Calls in flight may hold the database a moment longer (sled flushes on close).
        let lock = self.shared.dir.join("db");
        for _ in 0..50 {
            if std::fs::File::open(&lock).is_ok_and(|f| f.try_lock().is_ok()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let seal = Seal {
            stamp,
            files: Some(file_stamps(&self.shared.dir)),
        };
        if let Err(e) = write_seal(&self.shared.dir, &seal) {
            tracing::warn!(error = %e, "cannot seal the store");
        }
        Ok(())
    }

    /// Records the counter made durable in the seal file.
    fn seal(&self) {
        let s = &self.shared;
        if s.stamp.load(Ordering::SeqCst) > s.flushed.load(Ordering::SeqCst)
            && self.flush().is_err()
        {
            return;
        }
        let flushed = s.flushed.load(Ordering::SeqCst);
        if flushed > s.sealed.load(Ordering::SeqCst) {
            let seal = Seal {
                stamp: flushed,
                files: None,
            };
            match write_seal(&s.dir, &seal) {
                Ok(()) => s.sealed.store(flushed, Ordering::SeqCst),
                // A new page every time, where sled's small writes may still fit in pages
                // it has: a full disk shows here first.
                Err(e) if super::is_no_space(&e) => self.note(&StoreError::Full {
                    path: s.dir.clone(),
                    free: free_bytes(&s.dir),
                }),
                Err(e) => tracing::debug!(error = %e, "cannot write the store's seal"),
            }
        }
    }

    fn publish(&self, derived_lost: bool) {
        self.shared.generation.send_modify(|g| {
            g.number += 1;
            g.derived_lost = derived_lost;
        });
    }

    /// Opens the same folder again once the disk has room (sled stays failed after an I/O
    /// error until reopened).
    fn reopen(&self) {
        let dir = self.shared.dir.clone();
        if free_bytes(&dir).is_some_and(|f| f < MIN_FREE) || crate::faults::disk_full() {
            return;
        }
        drop(self.uninstall());
        match open_checked(&dir, &self.shared.options) {
            Ok((handles, stamp)) => {
                self.install(handles, stamp);
                // A flush proves writes work again.
                if let Err(e) = self.flush() {
                    tracing::debug!(error = %e, "the store still cannot be written");
                    return;
                }
                tracing::info!(store = %dir.display(), "the store works again");
                self.publish(false);
                self.set_condition(Condition::Ok, String::new());
            }
            Err(e) => match e.trouble() {
                Some(Trouble::Damaged) => {
                    self.set_condition(Condition::Damaged, e.to_string());
                    self.shared.trouble.notify_one();
                }
                Some(Trouble::Full) => self.set_condition(Condition::Full, e.to_string()),
                _ => self.set_condition(Condition::Failed, e.to_string()),
            },
        }
    }

    /// Moves the damaged store aside, opens a fresh one and salvages the damaged copy into
    /// it.
    fn repair(&self) {
        let dir = self.shared.dir.clone();
        let reason = self.condition().1;
        self.set_condition(Condition::Repairing, reason.clone());
        drop(self.uninstall());
        let moved = match move_aside(&dir) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(store = %dir.display(), error = %e, "cannot move the damaged store aside");
                self.set_condition(Condition::Failed, format!("cannot move it aside: {e}"));
                return;
            }
        };
        let _ = std::fs::remove_file(seal_path(&dir));
        tracing::warn!(store = %dir.display(), moved = %moved.as_ref().map_or("-".into(), |m| m.display().to_string()), %reason, "repairing the store");
        let (handles, stamp) = match open_checked(&dir, &self.shared.options) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(store = %dir.display(), error = %e, "cannot open a fresh store");
                let c = if e.is_full() {
                    Condition::Full
                } else {
                    Condition::Failed
                };
                self.set_condition(c, e.to_string());
                return;
            }
        };
        self.shared.stamp.fetch_max(stamp, Ordering::SeqCst);
        let mut report = Moved {
            reason,
            time_ms: now_ms(),
            ..Moved::default()
        };
        if let Some(m) = &moved {
            match contained(|| super::salvage::salvage_into(self, &handles, m)) {
                Ok(s) => {
                    report.salvaged = s.summary();
                    report.unsaved = s.unsaved;
                }
                Err(e) => {
                    report.salvaged = "nothing".into();
                    report.unsaved = vec![format!("the salvage failed: {e}")];
                }
            }
            if let Err(e) = std::fs::write(
                m.join(REPORT),
                serde_json::to_vec_pretty(&report).expect("a report serializes"),
            ) {
                tracing::warn!(error = %e, "cannot write the salvage report");
            }
        }
        tracing::warn!(
            store = %dir.display(),
            moved = %moved.as_ref().map_or("-".into(), |m| m.display().to_string()),
            salvaged = %report.salvaged,
            unsaved = report.unsaved.len(),
            "the store was repaired"
        );
        for u in report.unsaved.iter().take(20) {
            tracing::warn!("not salvaged: {u}");
        }
        self.install(handles, self.shared.stamp.load(Ordering::SeqCst));
        let _ = self.flush();
        self.publish(true);
        self.set_condition(Condition::Ok, String::new());
        self.seal();
    }

    /// Sets the floor above which new version and snapshot ids are handed out.
    pub(super) fn raise_id_floor(&self, h: &Handles, floor: u64) -> Result<(), StoreError> {
        let current = meta_u64(h, ID_FLOOR_KEY)?.unwrap_or(0);
        if floor > current {
            let v = self.frame(TreeId::Meta, ID_FLOOR_KEY, &floor.to_le_bytes());
            h.meta.insert(ID_FLOOR_KEY, v)?;
        }
        Ok(())
    }

    /// The floor above which new version and snapshot ids are handed out.
    pub(super) fn id_floor(&self, h: &Handles) -> Result<u64, StoreError> {
        Ok(meta_u64(h, ID_FLOOR_KEY)?.unwrap_or(0))
    }

    /// Reads a framed number from meta.
    pub(super) fn meta_number(&self, h: &Handles, key: &[u8]) -> Result<Option<u64>, StoreError> {
        meta_u64(h, key)
    }
}

/// Renames `dir` to `store.damaged-<time>` beside it; `None` when there was nothing there.
fn move_aside(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    if !dir.exists() {
        return Ok(None);
    }
    let time = chrono::Local::now().format("%Y%m%dT%H%M%S");
    let mut n = 0;
    loop {
        let name = if n == 0 {
            format!("{MOVED_PREFIX}{time}")
        } else {
            format!("{MOVED_PREFIX}{time}-{n}")
        };
        let to = dir.with_file_name(name);
        if !to.exists() {
            std::fs::rename(dir, &to)?;
            return Ok(Some(to));
        }
        n += 1;
    }
}

/// The store's keeper, a supervised task: repairs, reopens and seals the store
/// ([`Store::tend`]) when a call found trouble, and every few seconds.
pub async fn keep(store: Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(KEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = store.shared.trouble.notified() => {}
            _ = tick.tick() => {}
        }
        let s = store.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || s.tend()).await {
            tracing::error!(error = %e, "the store keeper failed; trying again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProjectMark;

    #[test]
    fn a_lock_held_by_a_database_still_closing_is_waited_for() {
        let d = tempfile::tempdir().unwrap();
        let options = Options::default();
        let first = open_sled(d.path(), &options).unwrap();
        // sled tells a held lock only by the text of an error of kind `Other`.
        let again = sled::Config::new()
            .path(d.path())
            .segment_size(super::super::migrate::segment_size(d.path()))
            .open();
        match again {
            Err(sled::Error::Io(e)) => assert!(lock_held(&e), "{e}"),
            other => panic!("opened twice: {other:?}"),
        }
        let closing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        let second = open_sled(d.path(), &options);
        closing.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
    }

    #[test]
    fn a_store_that_lost_sealed_writes_is_damaged() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("store");
        {
            let s = Store::open(&dir).unwrap();
            let mark = ProjectMark {
                manual: true,
                ignored: false,
            };
            s.set_project_mark(Path::new("/p"), &mark).unwrap();
            s.close().unwrap();
        }
        let seal = read_seal(&dir).unwrap();
        assert!(seal.stamp > 0 && seal.files.is_some(), "{seal:?}");
        // Flipped bytes everywhere: sled opens it as an empty store, without an error.
        let db = dir.join("db");
        let bytes: Vec<u8> = std::fs::read(&db)
            .unwrap()
            .iter()
            .map(|b| b ^ 0x55)
            .collect();
        std::fs::write(&db, bytes).unwrap();
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.condition().0, Condition::Damaged, "{:?}", s.condition());
    }
}
