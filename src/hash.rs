//! SkillMeat's content hash, bit for bit, split into a stat-only walk and a read pass.
//!
//! SkillMeat stores one hash per artifact (`content_hash` in `.skillmeat-deployed.toml` and
//! `collection.lock`): for a file, SHA-256 of its bytes; for a folder, one SHA-256 over every
//! file in path-component order, each fed as its relative path followed by its bytes, with no
//! separators and nothing excluded ("legacy" in the formats doc, §3.2). A deploy records that
//! hash of the *deployed copy*, which drops a fixed list of names and dereferences symlinks
//! ([`Variant::DeployedCopy`], §3.3).
//!
//! [`walk`] lists what a hash would read, with each file's identity and metadata, without
//! reading any content; [`hash_listing`] reads it.
//!
//! Where SkillMeat would hash something that is not content, we refuse instead, for both
//! variants: a symlink loop (a link that resolves to itself, or a linked folder that
//! contains the link) and an artifact path that is neither a file nor a folder (a FIFO, a
//! device) are errors, so drift calls such a side unreadable rather than guessing. Files
//! are opened without blocking ([`crate::regular`]). The index uses the walk alone to decide
//! whether a cached hash still holds. Everything here is synchronous; its callers (the index,
//! history, the operations, `skillmeatd hash`) run it off the async runtime.

use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub mod scan;
mod walk;

pub use walk::{walk, walk_in};

/// SHA-256 of nothing: the hash of an empty file or a folder with no files.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Which of SkillMeat's two stored hashes to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// `compute_content_hash(path)` on the tree as it is: every file, symlinked folders not
    /// followed.
    Legacy,
    /// The legacy hash of the copy `skillmeat deploy` would make: names matching the copy
    /// ignore list dropped at any depth, symlinks dereferenced, dangling symlinks an error.
    DeployedCopy,
}

impl Variant {
    /// A one-byte tag, stable across releases (used in store keys).
    pub fn tag(self) -> u8 {
        match self {
            Variant::Legacy => b'L',
            Variant::DeployedCopy => b'D',
        }
    }
}

/// Why a hash could not be computed. Every variant names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("{}: does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{}: symbolic link points at nothing (a deploy would fail)", path.display())]
    DanglingSymlink { path: PathBuf },
    #[error("{}: symbolic link loop", path.display())]
    SymlinkLoop { path: PathBuf },
    #[error("{}: is {kind}, not a regular file or folder", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
}

impl HashError {
    fn io(path: &Path, op: &'static str, source: io::Error) -> HashError {
        if source.kind() == io::ErrorKind::NotFound {
            HashError::NotFound {
                path: path.to_path_buf(),
            }
        } else if source.raw_os_error() == Some(libc::ELOOP) {
            HashError::SymlinkLoop {
                path: path.to_path_buf(),
            }
        } else {
            HashError::Io {
                path: path.to_path_buf(),
                op,
                source,
            }
        }
    }
}

/// Identity and metadata of one file, as `stat` reports them (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status-change time, nanoseconds since the epoch.
    pub ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// One file a hash reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Path relative to the hashed folder, `/`-separated, as raw bytes (empty for a single
    /// file, whose name is not hashed).
    pub rel: Vec<u8>,
    pub stamp: FileStamp,
}

/// Everything a hash of one path reads, in feed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The path hashed.
    pub root: PathBuf,
    /// The path was a single file (hash = SHA-256 of its bytes, no name).
    pub single_file: bool,
    pub files: Vec<ListedFile>,
}

impl Listing {
    /// Where to read `file`: built when it is read, not for every file listed (a stamp
    /// check, the usual case, reads none).
    pub fn path_of(&self, file: &ListedFile) -> PathBuf {
        if self.single_file {
            self.root.clone()
        } else {
            self.root.join(std::ffi::OsStr::from_bytes(&file.rel))
        }
    }

    /// A digest of every name, identity and metadata in the listing: equal digests mean no
    /// file was added, removed, renamed or touched, so a cached hash still holds.
    pub fn stamp_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([u8::from(self.single_file)]);
        for f in &self.files {
            h.update((f.rel.len() as u64).to_le_bytes());
            h.update(&f.rel);
            let s = f.stamp;
            h.update(s.dev.to_le_bytes());
            h.update(s.ino.to_le_bytes());
            h.update(s.size.to_le_bytes());
            h.update(s.mtime_ns.to_le_bytes());
            h.update(s.ctime_ns.to_le_bytes());
        }
        h.finalize().into()
    }

    /// The newest change to any file, if any: a write lands in both its modification and
    /// its change time, and whichever is newer tells how recent the change was.
    pub fn newest_change_ns(&self) -> Option<i128> {
        self.files
            .iter()
            .map(|f| f.stamp.mtime_ns.max(f.stamp.ctime_ns))
            .max()
    }

    /// Total bytes the hash reads.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.stamp.size).sum()
    }
}

/// Names a deploy never copies (`FilesystemManager.copy_artifact`'s ignore list, matched
/// with `fnmatch` against each entry's name at any depth).
pub fn copy_ignores(name: &[u8]) -> bool {
    const EXACT: [&[u8]; 9] = [
        b".git",
        b".github",
        b".gitignore",
        b"__pycache__",
        b"node_modules",
        b".venv",
        b"venv",
        b".DS_Store",
        b"Thumbs.db",
    ];
    const SUFFIX: [&[u8]; 3] = [b".pyc", b".pyo", b".egg-info"];
    EXACT.contains(&name) || SUFFIX.iter().any(|s| name.ends_with(s))
}

/// Reads every file of `listing` and returns the lowercase hex SHA-256 SkillMeat stores.
///
/// # Errors
/// I/O errors opening or reading a file (a file that vanished since the walk is
/// [`HashError::NotFound`]).
pub fn hash_listing(listing: &Listing) -> Result<String, HashError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    for f in &listing.files {
        if !listing.single_file {
            h.update(&f.rel);
        }
        let abs = listing.path_of(f);
        let mut file = crate::regular::open(&abs).map_err(|e| HashError::io(&abs, "open", e))?;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HashError::io(&abs, "read", e)),
            };
            h.update(&buf[..n]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Walks and hashes `path` in one go.
///
/// # Errors
/// As [`walk`] and [`hash_listing`].
pub fn content_hash(path: &Path, variant: Variant) -> Result<String, HashError> {
    hash_listing(&walk(path, variant)?)
}

#[cfg(test)]
mod tests {
    use super::scan::Scan;
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn single_file_is_plain_sha256() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("review.md");
        fs::write(&f, b"hello\n").unwrap();
        assert_eq!(content_hash(&f, Variant::Legacy).unwrap(), sha(b"hello\n"));
    }

    #[test]
    fn folder_feeds_path_then_bytes_in_component_order() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("a")).unwrap();
        fs::write(d.path().join("a/b.md"), b"1").unwrap();
        fs::write(d.path().join("a.md"), b"2").unwrap();
        fs::write(d.path().join("a b.md"), b"3").unwrap();
        let expected = sha(b"a/b.md1a b.md3a.md2");
        assert_eq!(content_hash(d.path(), Variant::Legacy).unwrap(), expected);
    }

    #[test]
    fn empty_folder_hashes_to_empty_sha() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("x/y")).unwrap();
        assert_eq!(
            content_hash(d.path(), Variant::Legacy).unwrap(),
            EMPTY_SHA256
        );
    }

    #[test]
    fn deployed_copy_drops_ignored_names_and_follows_folder_links() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("skill");
        fs::create_dir_all(root.join("shared")).unwrap();
        fs::write(root.join("SKILL.md"), b"s").unwrap();
        fs::write(root.join(".DS_Store"), b"junk").unwrap();
        fs::write(root.join("x.pyc"), b"junk").unwrap();
        fs::write(root.join("shared/data.txt"), b"d").unwrap();
        symlink("shared", root.join("linked")).unwrap();
        assert_eq!(
            content_hash(&root, Variant::Legacy).unwrap(),
            sha(b".DS_StorejunkSKILL.mdsshared/data.txtdx.pycjunk")
        );
        assert_eq!(
            content_hash(&root, Variant::DeployedCopy).unwrap(),
            sha(b"SKILL.mdslinked/data.txtdshared/data.txtd")
        );
    }

    #[test]
    fn a_walk_through_a_scan_lists_what_the_disk_held_when_it_was_read() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("skill");
        fs::create_dir_all(root.join("shared/deep")).unwrap();
        fs::write(root.join("SKILL.md"), b"s").unwrap();
        fs::write(root.join("x.pyc"), b"junk").unwrap();
        fs::write(root.join("shared/deep/data.txt"), b"d").unwrap();
        symlink("shared", root.join("linked")).unwrap();
        symlink("SKILL.md", root.join("alias.md")).unwrap();
        // Every folder listed, links to folders followed, as the watcher's walk does.
        let mut scan = Scan::new();
        let mut pending = scan.list(d.path(), true);
        while let Some(dir) = pending.pop() {
            pending.extend(scan.list(&dir, false));
        }
        for variant in [Variant::Legacy, Variant::DeployedCopy] {
            for path in [root.clone(), root.join("SKILL.md"), root.join("linked")] {
                assert_eq!(
                    walk_in(&path, variant, Some(&scan)).unwrap(),
                    walk(&path, variant).unwrap(),
                    "{variant:?} {}",
                    path.display()
                );
            }
        }
        // What changed since is not seen through the scan, only on the disk.
        fs::write(root.join("shared/deep/data.txt"), b"longer").unwrap();
        fs::write(root.join("new.md"), b"n").unwrap();
        let scanned = walk_in(&root, Variant::Legacy, Some(&scan)).unwrap();
        let now = walk(&root, Variant::Legacy).unwrap();
        assert_ne!(scanned.stamp_digest(), now.stamp_digest());
        assert_eq!(scanned.files.len() + 1, now.files.len());
        let data = |l: &Listing| {
            l.files
                .iter()
                .find(|f| f.rel == b"shared/deep/data.txt")
                .unwrap()
                .stamp
                .size
        };
        assert_eq!((data(&scanned), data(&now)), (1, 6));
        // A path the scan does not hold is read from the disk.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("f"), b"f").unwrap();
        assert_eq!(
            walk_in(outside.path(), Variant::Legacy, Some(&scan)).unwrap(),
            walk(outside.path(), Variant::Legacy).unwrap()
        );
    }

    #[test]
    fn symlink_loops_are_errors_for_both_variants() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("SKILL.md"), b"s").unwrap();
        symlink(".", d.path().join("self")).unwrap();
        let e = tempfile::tempdir().unwrap();
        fs::write(e.path().join("SKILL.md"), b"s").unwrap();
        symlink("b", e.path().join("a")).unwrap();
        symlink("a", e.path().join("b")).unwrap();
        for path in [d.path(), e.path(), &e.path().join("a")] {
            for v in [Variant::Legacy, Variant::DeployedCopy] {
                let err = content_hash(path, v).unwrap_err();
                assert!(
                    matches!(err, HashError::SymlinkLoop { .. }),
                    "{} {v:?}: {err}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn special_files_are_errors_where_a_deploy_would_fail() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("SKILL.md"), b"s").unwrap();
        let fifo = d.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Inside a folder, SkillMeat's hash skips it; a deploy's copy stops on it.
        assert_eq!(
            content_hash(d.path(), Variant::Legacy).unwrap(),
            sha(b"SKILL.mds")
        );
        assert!(matches!(
            content_hash(d.path(), Variant::DeployedCopy),
            Err(HashError::NotRegular { .. })
        ));
        // As the artifact itself, it has no content to hash.
        let err = content_hash(&fifo, Variant::Legacy).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is a FIFO (named pipe), not a regular file or folder"),
            "{err}"
        );
    }

    #[test]
    fn missing_path_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            content_hash(&d.path().join("nope"), Variant::Legacy),
            Err(HashError::NotFound { .. })
        ));
    }

    #[test]
    fn stamp_digest_changes_when_a_file_is_touched() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), b"1").unwrap();
        let a = walk(d.path(), Variant::Legacy).unwrap().stamp_digest();
        fs::write(d.path().join("f"), b"22").unwrap();
        let b = walk(d.path(), Variant::Legacy).unwrap().stamp_digest();
        assert_ne!(a, b);
    }
}
