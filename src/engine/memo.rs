//! The side memo: hashes of artifact sides already computed, kept across the live loop's
//! batches and forgotten by the paths that change.
//!
//! Paths are keyed by the bytes of their normal form, so a lookup compares bytes (one
//! `memcmp` per node) instead of parsing both paths into components at every node, and the
//! sides at or below a folder are still one contiguous range (`dir/` as a byte prefix).

use std::collections::BTreeMap;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compact_str::CompactString;

use crate::drift::Side;
use crate::formats::frontmatter;
use crate::hash::scan::{Kind, Scan};
use crate::hash::{HashError, Variant};
use crate::index::HashIndex;

/// Hashes of artifact sides already computed, by path and variant, with the version their
/// front matter declares once it has been read.
///
/// A request uses a fresh memo, so a side shared by many projects (a collection artifact)
/// is walked once. The live loop keeps one across batches and [`SideMemo::invalidate`]s the
/// paths the watcher reports, so unchanged sides are neither walked nor read again: a batch
/// costs the artifacts that changed, not every artifact of their project.
#[derive(Debug, Default, Clone)]
pub struct SideMemo {
    sides: BTreeMap<Key, Memoised>,
    /// Folder listings read by the batch's watch walk, used by its hash walks.
    scan: Option<Arc<Scan>>,
}

/// A memoised side's path, as the bytes of its normal form ([`normal`]), and its variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    path: Vec<u8>,
    variant: Variant,
}

impl Key {
    fn new(path: &Path, variant: Variant) -> Key {
        Key {
            path: path.as_os_str().as_bytes().to_vec(),
            variant,
        }
    }

    /// The key of `path` in its normal form.
    fn of(path: &Path, variant: Variant) -> Key {
        Key {
            path: normal(path).into_os_string().into_vec(),
            variant,
        }
    }
}

/// `path` with its components joined by single `/`: no `.` component inside, no doubled or
/// trailing separator. Two spellings of one path give the same key, as `Path`'s own
/// comparison would have it.
fn normal(path: &Path) -> PathBuf {
    let b = path.as_os_str().as_bytes();
    let spelled_oddly = (b.len() > 1 && b.ends_with(b"/"))
        || b.ends_with(b"/.")
        || memchr::memmem::find(b, b"//").is_some()
        || memchr::memmem::find(b, b"/./").is_some();
    if !spelled_oddly {
        // The usual case, a copy: the paths the engine builds are joined from normal ones.
        path.to_path_buf()
    } else {
        path.components().collect()
    }
}

/// One memoised side, the stamp digest it was hashed from, and its front matter's version
/// once asked for.
#[derive(Debug, Clone)]
struct Memoised {
    side: Side,
    digest: Option<[u8; 32]>,
    version: Option<Option<String>>,
}

impl SideMemo {
    /// The side at `path`, from the memo or hashed through the index.
    pub fn side(&mut self, index: &HashIndex, path: &Path, variant: Variant) -> Side {
        self.entry(index, path, variant).side.clone()
    }

    /// The version the front matter of the artifact at `path` declares
    /// ([`frontmatter::version_of`]), from the memo or the index's cache, or read once.
    pub fn version(
        &mut self,
        index: &HashIndex,
        path: &Path,
        variant: Variant,
    ) -> Option<CompactString> {
        let m = self.entry(index, path, variant);
        if m.version.is_none() {
            m.version = Some(match &m.digest {
                Some(digest) => index.read_version(path, variant, digest),
                None => frontmatter::version_of(path),
            });
        }
        m.version.as_ref()?.as_deref().map(CompactString::from)
    }

    /// Whether something exists at `path` (a symbolic link followed): from the scan's
    /// listing of its folder when the batch has one, else from the disk.
    pub fn exists(&self, path: &Path) -> bool {
        let listed = self.scan.as_deref().and_then(|scan| {
            let listing = scan.listing(path.parent()?)?;
            Some(listing.find(path.file_name()?).map(|e| e.kind))
        });
        match listed {
            Some(None) => false,
            Some(Some(kind)) if kind != Kind::Link => true,
            _ => path.exists(),
        }
    }

    fn entry(&mut self, index: &HashIndex, path: &Path, variant: Variant) -> &mut Memoised {
        let scan = self.scan.as_deref();
        self.sides.entry(Key::of(path, variant)).or_insert_with(|| {
            match index.side_in(path, variant, scan) {
                Ok(h) => Memoised {
                    side: Side::Hash(h.hash),
                    digest: Some(h.digest),
                    version: h.version,
                },
                Err(e) => Memoised {
                    side: match e {
                        HashError::NotFound { .. } => Side::Absent,
                        e => Side::Unreadable(e.to_string()),
                    },
                    digest: None,
                    version: None,
                },
            }
        })
    }

    /// Forgets every side that `changed` could affect: sides at or below it (a folder
    /// renamed or removed) and sides above it (a file inside an artifact changed).
    pub fn invalidate(&mut self, changed: &Path) {
        let changed = normal(changed);
        for a in changed.ancestors() {
            for v in [Variant::Legacy, Variant::DeployedCopy] {
                self.sides.remove(&Key::new(a, v));
            }
        }
        // Below `changed`: every path that starts with `changed/`, one range in byte order.
        let mut prefix = changed.into_os_string().into_vec();
        if !prefix.ends_with(b"/") {
            prefix.push(b'/');
        }
        let below: Vec<Key> = self
            .sides
            .range(
                Key {
                    path: prefix.clone(),
                    variant: Variant::Legacy,
                }..,
            )
            .take_while(|(k, _)| k.path.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.sides.remove(&k);
        }
    }

    /// Takes every entry of `other` (sides computed by another worker; on a key both
    /// hold, `other`'s), merging the two sorted maps in one pass.
    pub fn absorb(&mut self, mut other: SideMemo) {
        self.sides.append(&mut other.sides);
    }

    /// Forgets everything (a full reconcile).
    pub fn clear(&mut self) {
        self.sides.clear();
    }

    /// Walks sides not memoised yet with the listings of `scan` (read after their folders'
    /// watches were added), until it is taken away with `None`.
    pub fn use_scan(&mut self, scan: Option<Arc<Scan>>) {
        self.scan = scan;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_form_is_the_components_joined() {
        for p in [
            "/a/b",
            "/a//b",
            "/a/./b",
            "/a/b/",
            "/a/b/.",
            "a/b",
            "./a",
            "./a/",
            ".",
            "./",
            "/",
            "/.",
            "//a",
            "a/.//b/./",
            "/a/.b/c.",
            "/a/b./..",
            "/a/../b",
        ] {
            let want: PathBuf = Path::new(p).components().collect();
            assert_eq!(normal(Path::new(p)), want, "{p}");
            assert_eq!(normal(Path::new(p)).as_os_str(), want.as_os_str(), "{p}");
        }
    }

    fn memo_with(paths: &[&str]) -> SideMemo {
        let mut memo = SideMemo::default();
        for p in paths {
            for variant in [Variant::Legacy, Variant::DeployedCopy] {
                memo.sides.insert(
                    Key::of(Path::new(p), variant),
                    Memoised {
                        side: Side::Absent,
                        digest: None,
                        version: None,
                    },
                );
            }
        }
        memo
    }

    fn kept(memo: &SideMemo) -> Vec<String> {
        let mut out: Vec<String> = memo
            .sides
            .keys()
            .filter(|k| k.variant == Variant::Legacy)
            .map(|k| String::from_utf8(k.path.clone()).unwrap())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_change_forgets_the_sides_above_and_below_it_and_no_neighbour() {
        let paths = [
            "/p/.claude/skills",
            "/p/.claude/skills/a",
            "/p/.claude/skills/a/SKILL.md",
            "/p/.claude/skills/a/x/y.md",
            "/p/.claude/skills/a-b",
            "/p/.claude/skills/a.c",
            "/p/.claude/skills/a0",
            "/p/.claude/skills/ab",
        ];
        let mut memo = memo_with(&paths);
        // Spelled with a doubled separator and a `.`: the same folder.
        memo.invalidate(Path::new("/p/.claude//skills/./a"));
        assert_eq!(
            kept(&memo),
            [
                "/p/.claude/skills/a-b",
                "/p/.claude/skills/a.c",
                "/p/.claude/skills/a0",
                "/p/.claude/skills/ab",
            ]
        );
        assert_eq!(memo.sides.len(), 8, "both variants of each kept");
    }

    #[test]
    fn two_spellings_of_a_path_are_one_side() {
        let mut memo = memo_with(&["/p/skills/a/"]);
        assert_eq!(kept(&memo), ["/p/skills/a"]);
        memo.invalidate(Path::new("/p/skills/a/SKILL.md"));
        assert!(memo.sides.is_empty());
    }

    #[test]
    fn absorbing_another_memo_keeps_both_and_prefers_the_other() {
        let mut mine = memo_with(&["/a", "/b"]);
        let mut theirs = memo_with(&["/b", "/c"]);
        for m in theirs.sides.values_mut() {
            m.digest = Some([1; 32]);
        }
        mine.absorb(theirs);
        assert_eq!(kept(&mine), ["/a", "/b", "/c"]);
        let b = &mine.sides[&Key::new(Path::new("/b"), Variant::Legacy)];
        assert_eq!(b.digest, Some([1; 32]));
    }

    #[test]
    fn existence_is_taken_from_the_scan_where_it_listed_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), "x").unwrap();
        std::os::unix::fs::symlink("f", root.join("d/link")).unwrap();
        std::os::unix::fs::symlink("nowhere", root.join("d/dangling")).unwrap();
        let mut scan = Scan::new();
        scan.list(root, true);
        scan.list(&root.join("d"), false);
        let mut memo = SideMemo::default();
        memo.use_scan(Some(Arc::new(scan)));
        // Made after the scan: the scan's listing is what the batch judges by.
        std::fs::write(root.join("d/late"), "x").unwrap();
        assert!(memo.exists(&root.join("d/f")));
        assert!(
            !memo.exists(&root.join("d/late")),
            "listed before it was made"
        );
        assert!(
            memo.exists(&root.join("d/link")),
            "a link followed on the disk"
        );
        assert!(!memo.exists(&root.join("d/dangling")));
        assert!(!memo.exists(&root.join("d/missing")));
        std::fs::create_dir(root.join("d/sub")).unwrap();
        std::fs::write(root.join("d/sub/g"), "x").unwrap();
        assert!(
            memo.exists(&root.join("d/sub/g")),
            "a folder not listed: the disk"
        );
    }
}
