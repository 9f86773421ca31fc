//! The hash index: SkillMeat content hashes, re-read only when a file's metadata changed.
//!
//! Each artifact's hash is cached in the store's hash cache (one table in memory, one
//! sequential file on disk, read whole when the store opens) with the stamp digest (names,
//! device, inode, size, mtime, ctime of every file) of what it was computed from, and the
//! version its front matter declares once read. A lookup walks the artifact with `stat`
//! only (or takes the listings the watcher just read, [`crate::hash::scan`]); an unchanged
//! digest returns the cached hash (and version) without reading a byte.
//! SkillMeat's hash is one SHA-256 stream over all files, so a change to any file re-reads
//! that artifact, and only that artifact; so does a change made while the daemon was
//! stopped, since the digest covers every stamp field.
//!
//! Like git's racily-clean rule, a hash computed while a file was being changed (its mtime
//! or ctime within [`RACY_WINDOW_NS`] of the walk) is stored as racy and recomputed on the
//! next lookup, after a restart too, since a later same-size write could land within the
//! same timestamp tick and leave every stamp field unchanged.
//!
//! Used by the engine (through its side memo) and by history's captures.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::formats::frontmatter;
use crate::hash::scan::Scan;
use crate::hash::{self, HashError, Variant};
use crate::store::{CachedHash, Store};

/// Files changed this close (ns) to a hash's start are not trusted to keep their stamp.
pub const RACY_WINDOW_NS: i128 = 100_000_000;

/// Counters of the work the index did (for `smctl status` and tests).
#[derive(Debug, Default)]
pub struct IndexStats {
    /// Files whose bytes were read.
    pub files_read: AtomicU64,
    /// Bytes read.
    pub bytes_read: AtomicU64,
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
}

/// The hash of one side, with the stamp digest of the files it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// SkillMeat's hex content hash.
    pub hash: String,
    /// [`hash::Listing::stamp_digest`] of the walk that found it.
    pub digest: [u8; 32],
    /// The front matter's version, when the cache knew it for this digest.
    pub version: Option<Option<String>>,
}

/// The hash index over the store's hash cache.
#[derive(Debug)]
pub struct HashIndex {
    store: Store,
    stats: IndexStats,
}

impl HashIndex {
    pub fn new(store: Store) -> HashIndex {
        HashIndex {
            store,
            stats: IndexStats::default(),
        }
    }

    pub fn stats(&self) -> &IndexStats {
        &self.stats
    }

    /// SkillMeat's content hash of `path`, from the cache when no file changed.
    ///
    /// # Errors
    /// As [`hash::walk`] and [`hash::hash_listing`].
    pub fn hash(&self, path: &Path, variant: Variant) -> Result<String, HashError> {
        self.side(path, variant).map(|h| h.hash)
    }

    /// The hash of `path` with its stamp digest (and cached version), from the cache when no
    /// file changed. The cache is an optimisation, never the truth: an entry holds only
    /// while the digest of the walk is the one it was computed from, and never when it was
    /// racy.
    ///
    /// # Errors
    /// As [`hash::walk`] and [`hash::hash_listing`].
    pub fn side(&self, path: &Path, variant: Variant) -> Result<Hashed, HashError> {
        self.side_in(path, variant, None)
    }

    /// [`HashIndex::side`], walking with the listings `scan` holds; a file changed close to
    /// the scan's start is racy.
    ///
    /// # Errors
    /// As [`hash::walk`] and [`hash::hash_listing`].
    pub fn side_in(
        &self,
        path: &Path,
        variant: Variant,
        scan: Option<&Scan>,
    ) -> Result<Hashed, HashError> {
        let now = now_ns();
        let started = scan.map_or(now, |s| s.started_ns().min(now));
        let listing = hash::walk_in(path, variant, scan)?;
        let digest = listing.stamp_digest();
        if let Some(c) = self.store.cached_hash(variant, path)
            && c.entry.stamp_digest == digest
            && !c.entry.racy
        {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Hashed {
                hash: c.entry.hash,
                digest,
                version: c.version,
            });
        }
        let hash = hash::hash_listing(&listing)?;
        self.stats
            .files_read
            .fetch_add(listing.files.len() as u64, Ordering::Relaxed);
        self.stats
            .bytes_read
            .fetch_add(listing.total_bytes(), Ordering::Relaxed);
        let entry = CachedHash {
            stamp_digest: digest,
            racy: listing
                .newest_change_ns()
                .is_some_and(|t| t >= started - RACY_WINDOW_NS),
            files: listing.files.len() as u64,
            hash: hash.clone(),
        };
        self.store.put_hash(variant, path, &entry);
        Ok(Hashed {
            hash,
            digest,
            version: None,
        })
    }

    /// The version the front matter of the artifact at `path` declares
    /// ([`frontmatter::version_of`]), read now and remembered with the side's `digest`.
    pub fn read_version(&self, path: &Path, variant: Variant, digest: &[u8; 32]) -> Option<String> {
        let version = frontmatter::version_of(path);
        self.store
            .put_version(variant, path, digest, version.as_deref());
        version
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets a file's mtime into the past and lets the racy window pass (its change time
    /// is now), so its stamp is not racy.
    fn age(path: &Path) {
        let now = SystemTime::now();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(now - std::time::Duration::from_secs(60))
            .unwrap();
        while SystemTime::now() < now + std::time::Duration::from_millis(150) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn unchanged_files_are_not_read_twice() {
        let store_dir = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("SKILL.md");
        std::fs::write(&f, b"hello\n").unwrap();
        age(&f);
        let index = HashIndex::new(Store::open(store_dir.path()).unwrap());
        let a = index.hash(d.path(), Variant::Legacy).unwrap();
        assert_eq!(index.stats().files_read.load(Ordering::Relaxed), 1);
        let b = index.hash(d.path(), Variant::Legacy).unwrap();
        assert_eq!(a, b);
        assert_eq!(index.stats().files_read.load(Ordering::Relaxed), 1);
        assert_eq!(index.stats().hits.load(Ordering::Relaxed), 1);
        std::fs::write(&f, b"hello again\n").unwrap();
        let c = index.hash(d.path(), Variant::Legacy).unwrap();
        assert_ne!(a, c);
        assert_eq!(c, hash::content_hash(d.path(), Variant::Legacy).unwrap());
    }

    /// Stamps taken from a scan are judged racy against the scan's start, not against
    /// the hash: a file written as the listing was read is hashed again next time,
    /// however long after the scan the hash was taken.
    #[test]
    fn a_file_changed_just_before_a_scan_is_racy() {
        let store_dir = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir().unwrap();
        let mut scan = Scan::new();
        std::fs::write(d.path().join("x"), b"1").unwrap();
        scan.list(d.path(), false);
        // Past the racy window, counted from the write and from the scan.
        std::thread::sleep(std::time::Duration::from_millis(250));
        let index = HashIndex::new(Store::open(store_dir.path()).unwrap());
        index
            .side_in(d.path(), Variant::Legacy, Some(&scan))
            .unwrap();
        index.side(d.path(), Variant::Legacy).unwrap();
        assert_eq!(index.stats().files_read.load(Ordering::Relaxed), 2);
        // Now stored from a walk long after the write: trusted.
        index.side(d.path(), Variant::Legacy).unwrap();
        assert_eq!(index.stats().files_read.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn racy_entries_are_recomputed() {
        let store_dir = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir().unwrap();
        let x = d.path().join("x");
        std::fs::write(&x, b"1").unwrap();
        // Modified "just now" however long the test waits to be scheduled: a stamp in the
        // future is always within the racy window.
        std::fs::File::options()
            .write(true)
            .open(&x)
            .unwrap()
            .set_modified(SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
        let index = HashIndex::new(Store::open(store_dir.path()).unwrap());
        index.hash(d.path(), Variant::Legacy).unwrap();
        index.hash(d.path(), Variant::Legacy).unwrap();
        assert_eq!(index.stats().files_read.load(Ordering::Relaxed), 2);
    }
}
