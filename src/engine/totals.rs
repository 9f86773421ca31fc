//! The counters `smctl status` shows that the engine computes: collections and the
//! artifacts their manifests list, files indexed and read, uptime.
//!
//! Each collection's manifest and lock are parsed again only when one of them changed: a
//! parse is kept with the files' stamps (device, inode, size, modification and change times)
//! and reused while they are the same. Like git's index, a stamp too recent to tell a later
//! write within the same clock tick apart is not trusted ([`Stamp::settled`]): such a
//! collection is read again at the next call.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::formats::Problem;
use crate::formats::collection;

use super::{Engine, EngineError, Totals};

/// How much older than the read a file's change time must be for its stamp to be trusted.
const SETTLED: Duration = Duration::from_secs(1);

/// What a file's metadata says about its content (`None`: the file is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(Option<(u64, u64, u64, i64, i64, i64, i64)>);

impl Stamp {
    fn of(path: &Path) -> Stamp {
        Stamp(std::fs::metadata(path).ok().map(|m| {
            (
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            )
        }))
    }

    /// Whether the file last changed at least [`SETTLED`] before `read_at`, so a write
    /// after the read would change its stamp.
    fn settled(&self, read_at: SystemTime) -> bool {
        let Some((.., ctime, ctime_nsec)) = self.0 else {
            return true;
        };
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(ctime.max(0) as u64, ctime_nsec.clamp(0, 999_999_999) as u32);
        changed + SETTLED <= read_at
    }
}

/// One collection's figures, with the stamps of the files they were read from.
#[derive(Debug, Clone)]
struct Counted {
    stamps: [Stamp; 2],
    artifacts: u32,
    problems: Vec<Problem>,
}

/// Each collection's figures, by name, reused while its files are unchanged.
#[derive(Debug, Default)]
pub(super) struct CollectionCounts(Mutex<BTreeMap<String, Counted>>);

impl CollectionCounts {
    /// The number of collections, of artifacts their manifests list, and their problems.
    fn count(&self, home: &Path) -> (u32, u32, Vec<Problem>) {
        let names = collection::list(home);
        let dir = collection::collections_dir(home);
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|n, _| names.contains(n));
        let (mut artifacts, mut problems) = (0, Vec::new());
        for n in &names {
            let stamps = [
                Stamp::of(&dir.join(n).join("collection.toml")),
                Stamp::of(&dir.join(n).join("collection.lock")),
            ];
            let c = match seen.get(n) {
                Some(c) if c.stamps == stamps => c.clone(),
                _ => {
                    let read_at = SystemTime::now();
                    let read = collection::read(home, n);
                    let c = Counted {
                        stamps,
                        artifacts: read.artifacts.len() as u32,
                        problems: read.problems,
                    };
                    if stamps.iter().all(|s| s.settled(read_at)) {
                        seen.insert(n.clone(), c.clone());
                    } else {
                        seen.remove(n);
                    }
                    c
                }
            };
            artifacts += c.artifacts;
            problems.extend(c.problems);
        }
        (names.len() as u32, artifacts, problems)
    }
}

impl Engine {
    /// Collection counters and index counters for `smctl status` (projects and
    /// deployments come from the live state, which already holds them).
    ///
    /// # Errors
    /// The store could not be read.
    pub fn totals(&self) -> Result<Totals, EngineError> {
        let (collections, collection_artifacts, problems) =
            self.collection_counts.count(&self.paths.skillmeat_home);
        Ok(Totals {
            collections,
            collection_artifacts,
            files_indexed: self.store.files_indexed(),
            files_read: self
                .index
                .stats()
                .files_read
                .load(std::sync::atomic::Ordering::Relaxed),
            uptime_seconds: self.started.elapsed().as_secs(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(artifacts: usize) -> String {
        let mut m = String::from(
            "[collection]\nname = \"c\"\nversion = \"1.0.0\"\ncreated = \"x\"\nupdated = \"x\"\n",
        );
        for i in 0..artifacts {
            m += &format!(
                "\n[[artifacts]]\nname = \"s{i}\"\ntype = \"skill\"\npath = \"skills/s{i}\"\norigin = \"local\"\nadded = \"x\"\n"
            );
        }
        m
    }

    /// Sets a file's modification time `ago` in the past (its change time stays now).
    fn age(path: &Path, ago: Duration) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - ago).unwrap();
    }

    #[test]
    fn a_changed_manifest_is_read_again_and_a_recent_one_is_not_trusted() {
        let home = tempfile::tempdir().unwrap();
        let file = collection::collections_dir(home.path()).join("c/collection.toml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, manifest(2)).unwrap();
        let counts = CollectionCounts::default();
        assert_eq!(
            counts.count(home.path()).0..=counts.count(home.path()).1,
            1..=2
        );
        // Just written: not kept, so a rewrite of the same size in the same tick is seen.
        assert!(counts.0.lock().unwrap().is_empty());
        std::fs::write(&file, manifest(3)).unwrap();
        assert_eq!(counts.count(home.path()).1, 3);
        // A settled stamp is kept and reused...
        let old = Counted {
            stamps: [
                Stamp::of(&file),
                Stamp::of(&file.with_file_name("collection.lock")),
            ],
            artifacts: 99,
            problems: Vec::new(),
        };
        counts.0.lock().unwrap().insert("c".into(), old);
        assert_eq!(counts.count(home.path()).1, 99, "the kept figures answer");
        // ...until the file changes.
        std::fs::write(&file, manifest(4)).unwrap();
        age(&file, Duration::from_secs(60));
        assert_eq!(counts.count(home.path()).1, 4);
        std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
        assert_eq!(counts.count(home.path()), (0, 0, Vec::new()));
        assert!(counts.0.lock().unwrap().is_empty());
    }
}
