//! The daemon's persistent store: one sled database under the state directory.
//!
//! This module owns sled: tree names, key layouts and encodings live here and nowhere else;
//! the rest of the daemon sees domain types. Trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | name | framed: `schema` (u32 LE), `stamp` (the write counter), `next_cursor`, `id_floor`, the id counters `ids.*` (see `ids`) (u64 LE) |
//! | `graveyard` | tree byte + key | a tombstone frame of a removed record (read by a salvage only) |
//!
//! Project marks are described in `marks`; the hash cache (a file, not sled) in `hash_cache`; the journal and drift-state
//! trees in `journal`; the history trees in [`history`] (blobs in `blobs`); layout versions
//! and the conversion of older stores in `migrate`; the operations log in `operations`; the
//! notification mutes in `mutes`. Every value worth salvaging is a self-verifying frame
//! ([`frame`]); [`salvage`] reads them back from the raw files of a damaged store, and
//! `heal` opens, checks, reopens and repairs the store (run by [`keep`]); `health` is what
//! status and doctor show. Values are [`crate::model`] types (and [`crate::notification::Mute`]).
//!
//! Writes that answer an RPC are flushed before the answer ([`Store::flush`]). Opened once
//! by [`crate::daemon::run`]; the index, history and engine share clones of it, and every
//! clone follows the database in use when it is reopened or repaired. Every call runs
//! inside `catch_unwind` (a panic inside sled is an error, never the daemon's end); an
//! error that says the store is damaged, full or failed wakes the keeper.

mod blobs;
mod counts;
pub mod frame;
mod hash_cache;
mod heal;
mod health;
pub mod history;
mod history_totals;
mod ids;
mod journal;
mod marks;
mod migrate;
mod mutes;
mod newest;
mod operations;
pub mod salvage;

pub use operations::OperationWatch;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use counts::HistoryTotals;
use frame::TreeId;
pub use hash_cache::{Cached, CachedHash};
pub use heal::keep;
pub use health::{Condition, Health, Moved, TreeSpace};
pub use marks::ProjectMark;

/// Layout version of the trees, bumped when an encoding changes incompatibly (1: bare values;
/// 2: framed, [`frame`]; 3: compact history records, delta blobs); see `migrate`.
const SCHEMA: u32 = 3;

/// Meta keys.
const SCHEMA_KEY: &[u8] = b"schema";
const STAMP_KEY: &[u8] = b"stamp";
/// Versions and snapshots salvaged from a damaged store keep their ids; new ids start
/// above this.
const ID_FLOOR_KEY: &[u8] = b"id_floor";

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store at {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("store at {} has layout version {found}, this daemon reads {SCHEMA}", path.display())]
    Schema { path: PathBuf, found: u32 },
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("store: sled panicked: {0}")]
    Panicked(String),
    #[error("store at {}: {reason}", path.display())]
    Unavailable { path: PathBuf, reason: String },
    #[error("store at {}: {}", path.display(), full_message(.free))]
    Full { path: PathBuf, free: Option<u64> },
    #[error("store: blob {blob} is damaged ({detail})")]
    BadBlob { blob: String, detail: String },
    #[error("store at {}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn full_message(free: &Option<u64>) -> String {
    let free = free
        .map(|b| format!(" ({b} bytes free)"))
        .unwrap_or_default();
    format!(
        "the disk is full{free}: writes and snapshots are refused until space is freed; \
         drift keeps answering and the daemon resumes by itself"
    )
}

/// What an error says about the store as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    /// The disk is full: reopen once space returns.
    Full,
    /// An I/O error: sled stays failed until reopened.
    Failed,
    /// The data is damaged: move the store aside, salvage, start afresh.
    Damaged,
}

impl StoreError {
    fn trouble(&self) -> Option<Trouble> {
        match self {
            StoreError::Sled(sled::Error::Io(e))
            | StoreError::Open {
                source: sled::Error::Io(e),
                ..
            } => Some(if is_no_space(e) {
                Trouble::Full
            } else {
                Trouble::Failed
            }),
            StoreError::Sled(_)
            | StoreError::Open { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Panicked(_) => Some(Trouble::Damaged),
            StoreError::Full { .. } => Some(Trouble::Full),
            _ => None,
        }
    }

    /// Whether the disk holding the store is full (writes are refused until it is not).
    pub fn is_full(&self) -> bool {
        self.trouble() == Some(Trouble::Full)
    }

    /// Whether the store cannot answer now (being repaired or reopened).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Whether an I/O error means "no space left" (or over quota).
pub fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// How to open the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options::from(&crate::config::StoreSettings::default())
    }
}

impl From<&crate::config::StoreSettings> for Options {
    fn from(settings: &crate::config::StoreSettings) -> Self {
        Options {
            cache_bytes: settings.cache_mb << 20,
        }
    }
}

/// The sled trees of one open database.
#[derive(Debug, Clone)]
struct Handles {
    db: sled::Db,
    meta: sled::Tree,
    projects: sled::Tree,
    journal: sled::Tree,
    drift: sled::Tree,
    history: sled::Tree,
    blobs: sled::Tree,
    operations: sled::Tree,
    mutes: sled::Tree,
    /// Tombstones of removed framed records (only a salvage reads them).
    graveyard: sled::Tree,
    /// Sizes of the journal and the history, kept as counters.
    counts: Arc<counts::Counts>,
    /// The newest version of each location recently recorded.
    newest: Arc<newest::Newest>,
}

impl Handles {
    fn open(db: sled::Db) -> Result<Handles, sled::Error> {
        db.drop_tree("hashes")?; // the hash cache's tree before it had its own file
        Ok(Handles {
            meta: db.open_tree("meta")?,
            projects: db.open_tree("projects")?,
            journal: db.open_tree("journal")?,
            drift: journal::open_drift(&db)?,
            history: db.open_tree("history")?,
            blobs: db.open_tree("history_blobs")?,
            operations: db.open_tree(TreeId::Operations.name())?,
            mutes: db.open_tree(TreeId::Mutes.name())?,
            graveyard: db.open_tree("graveyard")?,
            counts: Arc::default(),
            newest: Arc::default(),
            db,
        })
    }

    fn tree(&self, id: TreeId) -> &sled::Tree {
        match id {
            TreeId::Meta => &self.meta,
            TreeId::Projects => &self.projects,
            TreeId::History => &self.history,
            TreeId::Operations => &self.operations,
            TreeId::Mutes => &self.mutes,
            TreeId::Blobs => &self.blobs,
        }
    }
}

/// A change of the database behind the handle, published to whoever rebuilds what it
/// derived from the store (the live task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Generation {
    /// Counts reopens and repairs.
    pub number: u64,
    /// The derived trees (journal, drift state, hash cache) were lost: a repaired store.
    pub derived_lost: bool,
}

struct Shared {
    dir: PathBuf,
    options: Options,
    /// The open database; `None` while it is repaired or could not be reopened.
    handles: RwLock<Option<Handles>>,
    condition: Mutex<(Condition, String)>,
    /// The write counter (stamps of frames).
    stamp: AtomicU64,
    /// The stamp known durable (written before the last successful flush).
    flushed: AtomicU64,
    /// The stamp last written to the seal file.
    sealed: AtomicU64,
    /// Wakes the keeper when the store needs care.
    trouble: tokio::sync::Notify,
    generation: tokio::sync::watch::Sender<Generation>,
    /// The condition, for those who report it (the live task shows it as a problem).
    conditions: tokio::sync::watch::Sender<Condition>,
    /// Blobs found damaged since the start (bounded), shown by `smctl status`.
    bad_blobs: Mutex<std::collections::BTreeSet<String>>,
    /// The last journal cursor known durable, or `u64::MAX` when all the journal holds is
    /// (see `journal`): events of a failed append stay in sled's memory, unflushed.
    journal_durable: AtomicU64,
    /// The hash cache (checked against the files' stamps: kept across reopens and repairs).
    hashes: hash_cache::HashCache,
}

/// The open store. Clones share one database, which can be replaced while running (after a
/// repair or a reopen): every holder keeps working with the new one.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

/// A panic's message.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f`, turning a panic (inside sled) into an error.
fn contained<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(StoreError::Panicked(panic_message(&*p))))
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with default options.
    ///
    /// # Errors
    /// As [`Store::open_with`].
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, &Options::default())
    }

    /// Opens (creating if needed) the store in `dir`. A store that cannot be opened because
    /// it is damaged (sled fails or panics, or it lost writes it had made durable) is moved
    /// aside and a fresh one opened: the store's keeper ([`Store::tend`]) salvages the
    /// damaged copy into it, and until then every call answers "being repaired".
    ///
    /// # Errors
    /// The folder cannot be used (permissions), or the store was written by a newer daemon.
    pub fn open_with(dir: &Path, options: &Options) -> Result<Store, StoreError> {
        let (generation, _) = tokio::sync::watch::channel(Generation::default());
        let store = Store {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                options: options.clone(),
                handles: RwLock::new(None),
                condition: Mutex::new((Condition::Ok, String::new())),
                stamp: AtomicU64::new(0),
                flushed: AtomicU64::new(0),
                sealed: AtomicU64::new(0),
                trouble: tokio::sync::Notify::new(),
                generation,
                conditions: tokio::sync::watch::channel(Condition::Ok).0,
                bad_blobs: Mutex::new(std::collections::BTreeSet::new()),
                journal_durable: AtomicU64::new(u64::MAX),
                hashes: hash_cache::HashCache::load(dir),
            }),
        };
        match heal::open_checked(dir, options) {
            Ok((handles, stamp)) => {
                store.install(handles, stamp);
                store.set_condition(Condition::Ok, String::new());
            }
            Err(e) if e.trouble() == Some(Trouble::Damaged) => {
                tracing::error!(store = %dir.display(), error = %e, "the store is damaged; it will be moved aside and salvaged");
                store.set_condition(Condition::Damaged, e.to_string());
            }
            Err(e) if e.is_full() => {
                tracing::error!(store = %dir.display(), error = %e, "the disk holding the store is full");
                store.set_condition(Condition::Full, e.to_string());
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// Makes `handles` the database in use, with the write counter at `stamp` (the caller
    /// sets the condition, after publishing the generation).
    fn install(&self, handles: Handles, stamp: u64) {
        // A database just opened holds what its files hold: all of it durable.
        self.shared
            .journal_durable
            .store(u64::MAX, Ordering::SeqCst);
        self.shared.stamp.fetch_max(stamp, Ordering::SeqCst);
        self.shared.flushed.fetch_max(stamp, Ordering::SeqCst);
        *self
            .shared
            .handles
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(handles);
    }

    /// Takes the database out of use (it closes once the last call in flight ends).
    fn uninstall(&self) -> Option<Handles> {
        self.shared
            .handles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn set_condition(&self, condition: Condition, detail: String) {
        let mut c = self
            .shared
            .condition
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *c = (condition, detail);
        self.shared.conditions.send_if_modified(|old| {
            let changed = *old != condition;
            *old = condition;
            changed
        });
    }

    /// The folder of the store.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Follows the database behind the handle: a new [`Generation`] after each repair or
    /// reopen.
    pub fn generations(&self) -> tokio::sync::watch::Receiver<Generation> {
        self.shared.generation.subscribe()
    }

    /// Whether the store was closed for good (shutdown).
    pub fn is_closed(&self) -> bool {
        let (c, detail) = self.condition();
        c == Condition::Failed && detail == "closed"
    }

    /// Follows the store's condition.
    pub fn conditions(&self) -> tokio::sync::watch::Receiver<Condition> {
        self.shared.conditions.subscribe()
    }

    /// Runs `f` on the database in use. A panic inside sled becomes an error; an error that
    /// says the store is damaged, full or failed marks it so and wakes the keeper.
    fn with<T>(&self, f: impl FnOnce(&Handles) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let handles = self
            .shared
            .handles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(h) = handles else {
            return Err(self.unavailable());
        };
        let result = if crate::faults::disk_full() {
            Err(StoreError::Sled(sled::Error::Io(
                std::io::Error::from_raw_os_error(libc::ENOSPC),
            )))
        } else {
            contained(|| f(&h))
        };
        drop(h);
        match result {
            Err(e) => {
                self.note(&e);
                // A full disk gets the one clear message, whatever sled said.
                Err(if e.is_full() {
                    StoreError::Full {
                        path: self.shared.dir.clone(),
                        free: heal::free_bytes(&self.shared.dir),
                    }
                } else {
                    e
                })
            }
            ok => ok,
        }
    }

    /// The counters of the database in use (none while there is none).
    fn counts(&self) -> Option<Arc<counts::Counts>> {
        let handles = self
            .shared
            .handles
            .read()
            .unwrap_or_else(|e| e.into_inner());
        handles.as_ref().map(|h| Arc::clone(&h.counts))
    }

    /// The error a call gets while there is no database in use.
    fn unavailable(&self) -> StoreError {
        let (condition, detail) = self.condition();
        match condition {
            Condition::Full => StoreError::Full {
                path: self.shared.dir.clone(),
                free: heal::free_bytes(&self.shared.dir),
            },
            _ => StoreError::Unavailable {
                path: self.shared.dir.clone(),
                reason: if detail.is_empty() {
                    condition.describe().to_string()
                } else {
                    format!("{}: {detail}", condition.describe())
                },
            },
        }
    }

    /// Marks the store after a failed call.
    fn note(&self, e: &StoreError) {
        let Some(trouble) = e.trouble() else {
            return;
        };
        let condition = match trouble {
            Trouble::Full => Condition::Full,
            Trouble::Failed => Condition::Failed,
            Trouble::Damaged => Condition::Damaged,
        };
        {
            let mut c = self
                .shared
                .condition
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // Damage outranks a full disk; a repair under way is not interrupted.
            if c.0 == Condition::Repairing || c.0 == Condition::Damaged || c.0 == condition {
                return;
            }
            tracing::error!(store = %self.shared.dir.display(), error = %e, "store trouble: {}", condition.describe());
            let detail = if condition == Condition::Full {
                full_message(&heal::free_bytes(&self.shared.dir))
            } else {
                e.to_string()
            };
            *c = (condition, detail);
            self.shared.conditions.send_replace(condition);
        }
        self.shared.trouble.notify_one();
    }

    /// The store's condition now, and what caused it.
    pub fn condition(&self) -> (Condition, String) {
        self.shared
            .condition
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refuses a write up front when the store cannot take one (full disk, repair).
    ///
    /// # Errors
    /// [`StoreError::Full`] or [`StoreError::Unavailable`].
    pub fn writable(&self) -> Result<(), StoreError> {
        match self.condition().0 {
            Condition::Ok => Ok(()),
            Condition::Full => Err(StoreError::Full {
                path: self.shared.dir.clone(),
                free: heal::free_bytes(&self.shared.dir),
            }),
            _ => Err(self.unavailable_now()),
        }
    }

    fn unavailable_now(&self) -> StoreError {
        let (condition, detail) = self.condition();
        StoreError::Unavailable {
            path: self.shared.dir.clone(),
            reason: format!("{}: {detail}", condition.describe()),
        }
    }

    /// The next write stamp.
    fn next_stamp(&self) -> u64 {
        self.shared.stamp.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// `value` framed for `tree` under `key`.
    fn frame(&self, tree: TreeId, key: &[u8], value: &[u8]) -> Vec<u8> {
        frame::encode(tree, self.next_stamp(), key, Some(value))
    }

    /// A tombstone for a framed record removed from `tree`.
    fn tombstone(&self, batch: &mut sled::Batch, tree: TreeId, key: &[u8]) {
        let mut k = vec![tree as u8];
        k.extend_from_slice(key);
        batch.insert(k, frame::encode(tree, self.next_stamp(), key, None));
    }

    /// Writes tombstones for records removed from `tree`.
    fn bury(&self, h: &Handles, tree: TreeId, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for k in keys {
            self.tombstone(&mut batch, tree, k);
        }
        h.graveyard.apply_batch(batch)?;
        Ok(())
    }

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// The flush failed (disk full, I/O error).
    pub fn flush(&self) -> Result<(), StoreError> {
        let stamp = self.shared.stamp.load(Ordering::SeqCst);
        self.with(|h| {
            let v = frame::encode(TreeId::Meta, stamp, STAMP_KEY, Some(&stamp.to_le_bytes()));
            h.meta.insert(STAMP_KEY, v)?;
            h.db.flush()?;
            Ok(())
        })?;
        self.shared.flushed.fetch_max(stamp, Ordering::SeqCst);
        Ok(())
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.with(|h| Ok(h.db.size_on_disk()?)).unwrap_or(0)
    }
}

/// Checks that `v` is a frame of `tree` for `key`, and returns its value.
fn unframe<'a>(tree: TreeId, key: &[u8], v: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        tree: tree.name(),
        detail,
    };
    let f = frame::decode(v).map_err(|e| corrupt(e.to_string()))?;
    if f.tree != tree || f.key != key {
        return Err(corrupt("a record framed for another key".into()));
    }
    f.value
        .ok_or_else(|| corrupt("a tombstone where a record belongs".into()))
}
