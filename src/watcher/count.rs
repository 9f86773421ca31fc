//! The number of inotify watches this process holds, for `Status` and `smctl doctor`.
//!
//! The kernel tells it only through the `/proc/self/fdinfo` entry of each inotify
//! descriptor, one line per watch, formatted anew at every read: about 30 ms for 20,000
//! watched folders on a quiet machine, over 200 ms on a busy one. So the count is read when
//! first asked, and again only after the watched set may have changed — a root watched or
//! dropped, or a folder created, removed or renamed below a watched root (the kernel
//! watcher adds or drops its watches itself then) — in the background, at most every [`MIN_INTERVAL`]. An
//! answer never waits for a count but the first, and is at most that interval late.
//!
//! [`changed`] is called by the watcher; [`inotify_watches`] by the `Status` handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// The shortest time between two counts.
pub const MIN_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct WatchCount {
    /// The last count (`None` where it cannot be read) and when it was taken.
    last: Mutex<Option<(Option<u64>, Instant)>>,
    /// The watched set may have changed since the last count.
    changed: AtomicBool,
    /// A background count is under way.
    counting: AtomicBool,
}

static COUNT: LazyLock<WatchCount> = LazyLock::new(WatchCount::default);

/// Says that the watched set may have changed: the next answer starts a count.
pub fn changed() {
    COUNT.changed.store(true, Ordering::Release);
}

/// The number of inotify watches this process holds, as last counted; `None` where that
/// cannot be read (not Linux). Counts at once the first time; after a [`changed`], starts
/// a count in the background and answers with the previous one.
pub fn inotify_watches() -> Option<u64> {
    let c = &*COUNT;
    let last = *c.last.lock().unwrap_or_else(|e| e.into_inner());
    let Some((n, at)) = last else {
        c.changed.store(false, Ordering::Release);
        let n = count();
        *c.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((n, Instant::now()));
        return n;
    };
    if at.elapsed() >= MIN_INTERVAL
        && c.changed.load(Ordering::Acquire)
        && !c.counting.swap(true, Ordering::AcqRel)
    {
        let spawned = std::thread::Builder::new()
            .name("skillmeatd-watches".into())
            .spawn(|| {
                let c = &*COUNT;
                c.changed.store(false, Ordering::Release);
                let n = count();
                *c.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((n, Instant::now()));
                c.counting.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            c.counting.store(false, Ordering::Release);
        }
    }
    n
}

/// Counts now: the `inotify wd:` lines of the process's inotify descriptors (the other
/// descriptors' entries are not read).
pub fn count() -> Option<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    let mut n = 0;
    for entry in dir.flatten() {
        let inotify =
            std::fs::read_link(entry.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:inotify");
        if !inotify {
            continue;
        }
        let info = std::path::Path::new("/proc/self/fdinfo").join(entry.file_name());
        if let Ok(text) = std::fs::read(info) {
            n += text
                .split(|&b| b == b'\n')
                .filter(|l| l.starts_with(b"inotify wd:"))
                .count() as u64;
        }
    }
    Some(n)
}

/// Whether notify adds or drops watches for an event of this kind: a folder created or
/// removed, or anything renamed (the event does not say whether it was a folder).
pub fn moves_watches(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{CreateKind, ModifyKind, RemoveKind};
    matches!(
        kind,
        EventKind::Create(CreateKind::Folder | CreateKind::Any | CreateKind::Other)
            | EventKind::Remove(RemoveKind::Folder | RemoveKind::Any | RemoveKind::Other)
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Other
    )
}
