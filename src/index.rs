//! The hash index: SkillMeat content hashes, re-read only when a file's metadata changed.
//!
//! Each artifact's hash is cached in the store with the stamp digest (names, device, inode,
//! size, mtime, ctime of every file) of what it was computed from. A lookup walks the
//! artifact with `stat` only; an unchanged digest returns the cached hash without reading
//! a byte. SkillMeat's hash is one SHA-256 stream over all files, so a change to any file
//! re-reads that artifact, and only that artifact.
//!
//! Like git's racily-clean rule, a hash computed while a file was being changed (its mtime
//! within [`RACY_WINDOW_NS`] of the walk) is stored as racy and recomputed on the next
//! lookup, since a later same-size write could land within the same timestamp tick and
//! leave every stamp field unchanged.
//!
//! Used by the engine (through its side memo) and by history's captures.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// The hash index over the store.
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
    /// As [`hash::walk`] and [`hash::hash_listing`]. Store failures are logged and the hash
    /// is computed anyway: the cache is an optimisation, never the truth.
    pub fn hash(&self, path: &Path, variant: Variant) -> Result<String, HashError> {
        let started = now_ns();
        let listing = hash::walk(path, variant)?;
        let digest = listing.stamp_digest();
        match self.store.cached_hash(variant, path) {
            Ok(Some(c)) if c.stamp_digest == digest && !c.racy => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(c.hash);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "hash cache read failed"),
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
                .newest_mtime_ns()
                .is_some_and(|t| t >= started - RACY_WINDOW_NS),
            files: listing.files.len() as u64,
            hash: hash.clone(),
        };
        if let Err(e) = self.store.put_hash(variant, path, &entry) {
            tracing::warn!(path = %path.display(), error = %e, "hash cache write failed");
        }
        Ok(hash)
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

    /// Sets a file's mtime into the past so its stamp is not racy.
    fn age(path: &Path) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - std::time::Duration::from_secs(60))
            .unwrap();
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
