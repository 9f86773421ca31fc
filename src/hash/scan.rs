//! Folder listings read once, with every entry's metadata, for the hash walks of the same
//! batch.
//!
//! A warm start must look at every file once: to watch its folder, and to check its stamp
//! against the hash cache. Done as two walks, the tree's folders were opened, listed and
//! closed twice. The watcher now records each folder it lists below a recursive root (the
//! entries with their `lstat`, read through the open folder) into a [`Scan`], and the
//! engine's hash walks of that batch take their listings from it instead of the disk
//! ([`super::walk_in`]).
//!
//! A listing is read after its folder's watch exists, so any change made after it raises
//! an event, which invalidates what was computed from it in the next batch; a hash walk
//! served from the scan is a walk made at the scan's time. The hash index judges raciness
//! against [`Scan::started_ns`], the time before the first listing was read. What the scan
//! does not hold (a folder it could not read whole, a symbolic link's target, anything
//! outside the roots it walked) is read from the disk as before.

use hashbrown::HashMap;
use std::ffi::OsStr;
use std::fs::{FileType, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::FileStamp;

/// What an entry is, by its `lstat` (a symbolic link is not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Folder,
    Link,
    /// A FIFO, a socket, a device.
    Other,
}

impl Kind {
    /// The kind of a file of type `t`.
    pub fn of(t: FileType) -> Kind {
        if t.is_symlink() {
            Kind::Link
        } else if t.is_dir() {
            Kind::Folder
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        }
    }
}

/// One entry of a listed folder.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Where its name is in the scan's buffer of names.
    name: (u32, u32),
    pub kind: Kind,
    /// The entry's own metadata (for a link, the link's).
    pub stamp: FileStamp,
}

impl Entry {
    /// The identity (device, inode) of the entry's own file or folder.
    pub fn id(&self) -> (u64, u64) {
        (self.stamp.dev, self.stamp.ino)
    }
}

/// One folder's entries, sorted by name bytes.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    names: &'a [u8],
    entries: &'a [Entry],
}

impl<'a> Listing<'a> {
    pub fn entries(&self) -> &'a [Entry] {
        self.entries
    }

    /// The name of `entry`, one of this listing's.
    pub fn name(&self, entry: &Entry) -> &'a OsStr {
        name(self.names, entry)
    }

    /// The entry named `name`, if the folder held it when it was listed.
    pub fn find(&self, name: &OsStr) -> Option<&'a Entry> {
        self.entries
            .binary_search_by(|e| self.name(e).as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i])
    }
}

fn name<'a>(names: &'a [u8], entry: &Entry) -> &'a OsStr {
    let (start, len) = (entry.name.0 as usize, entry.name.1 as usize);
    OsStr::from_bytes(&names[start..start + len])
}

/// Where a folder's listing begins, from [`Scan::begin`] to [`Scan::finish`].
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    entries: usize,
    names: usize,
}

/// Listings of folders, each whole and sorted by name bytes, read from
/// [`Scan::started_ns`] on, found through the roots the walks began at.
///
/// Entries and names sit in two buffers and folders are known by identity (device,
/// inode), not path: the scan of 100,000 files is a few large blocks the allocator hands
/// back whole once the batch is done, not 200,000 small ones left between the blocks the
/// daemon keeps.
#[derive(Debug)]
pub struct Scan {
    started_ns: i128,
    /// The folders the walks began at, by path.
    roots: HashMap<PathBuf, (u64, u64)>,
    /// Each folder listed whole, by identity: where its entries are.
    folders: HashMap<(u64, u64), (usize, usize)>,
    entries: Vec<Entry>,
    names: Vec<u8>,
    /// Listings shared with other scans, looked up where this one has none (the
    /// collections' listings under each project's own, say).
    base: Option<Arc<Scan>>,
}

impl Default for Scan {
    fn default() -> Self {
        Scan::new()
    }
}

impl Scan {
    /// An empty scan, started now: call it before the first folder is listed.
    pub fn new() -> Scan {
        let started_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Scan {
            started_ns,
            roots: HashMap::new(),
            folders: HashMap::new(),
            entries: Vec::new(),
            names: Vec::new(),
            base: None,
        }
    }

    /// An empty scan over `base`: its roots and folders are found where this scan has
    /// none of its own.
    pub fn over(base: Arc<Scan>) -> Scan {
        Scan {
            base: Some(base),
            ..Scan::new()
        }
    }

    /// When the first listing may have been read (nanoseconds since the epoch).
    pub fn started_ns(&self) -> i128 {
        self.base
            .as_ref()
            .map_or(self.started_ns, |b| b.started_ns().min(self.started_ns))
    }

    /// Notes that a walk began at the folder `path`, of identity `id`.
    pub fn root(&mut self, path: PathBuf, id: (u64, u64)) {
        self.roots.insert(path, id);
    }

    /// Begins the listing of a folder: [`Scan::push`] its entries, then
    /// [`Scan::finish`] it.
    pub fn begin(&self) -> Mark {
        Mark {
            entries: self.entries.len(),
            names: self.names.len(),
        }
    }

    /// Adds the entry `name` with its `lstat` result `meta` to the listing begun.
    pub fn push(&mut self, name: &OsStr, meta: &Metadata) {
        let kind = Kind::of(meta.file_type());
        let start = self.names.len() as u32;
        self.names.extend_from_slice(name.as_bytes());
        self.entries.push(Entry {
            name: (start, name.len() as u32),
            kind,
            stamp: FileStamp::of(meta),
        });
    }

    /// Records the listing begun at `mark` as that of the folder `id`, when it was read
    /// `whole`; otherwise forgets it.
    pub fn finish(&mut self, mark: Mark, id: (u64, u64), whole: bool) {
        if !whole {
            self.entries.truncate(mark.entries);
            self.names.truncate(mark.names);
            return;
        }
        let names = &self.names;
        self.entries[mark.entries..]
            .sort_by(|a, b| name(names, a).as_bytes().cmp(name(names, b).as_bytes()));
        self.folders
            .insert(id, (mark.entries, self.entries.len() - mark.entries));
    }

    /// Takes every listing and root of `other` (not those of its base), and its start if
    /// earlier.
    pub fn absorb(&mut self, other: Scan) {
        self.started_ns = self.started_ns.min(other.started_ns);
        let (entries, names) = (self.entries.len(), self.names.len() as u32);
        self.names.extend_from_slice(&other.names);
        self.entries.extend(other.entries.into_iter().map(|mut e| {
            e.name.0 += names;
            e
        }));
        self.folders.extend(
            other
                .folders
                .into_iter()
                .map(|(id, (start, len))| (id, (start + entries, len))),
        );
        self.roots.extend(other.roots);
    }

    /// Folders listed (its base's not counted).
    pub fn len(&self) -> usize {
        self.folders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.folders.is_empty()
    }

    /// The listing of the folder of identity `id`, when it was read whole.
    pub fn folder(&self, id: (u64, u64)) -> Option<Listing<'_>> {
        let Some(&(start, len)) = self.folders.get(&id) else {
            return self.base.as_deref()?.folder(id);
        };
        Some(Listing {
            names: &self.names,
            entries: &self.entries[start..start + len],
        })
    }

    /// The listing of the folder at `dir`, reached from a root through folders listed
    /// whole (not through a symbolic link).
    pub fn listing(&self, dir: &Path) -> Option<Listing<'_>> {
        let Some((root, id)) = dir.ancestors().find_map(|a| Some((a, *self.roots.get(a)?))) else {
            return self.base.as_deref()?.listing(dir);
        };
        let mut listing = self.folder(id)?;
        for c in dir.strip_prefix(root).ok()?.components() {
            let e = listing.find(c.as_os_str())?;
            if e.kind != Kind::Folder {
                return None;
            }
            listing = self.folder(e.id())?;
        }
        Some(listing)
    }

    /// The entry at `path`, from its folder's listing.
    pub fn entry(&self, path: &Path) -> Option<&Entry> {
        self.listing(path.parent()?)?.find(path.file_name()?)
    }
}

#[cfg(test)]
impl Scan {
    /// Lists the folder `dir` whole, as the watcher's walk does (a `root` is noted as one
    /// too), and returns the folders in it, links to folders included.
    pub(crate) fn list(&mut self, dir: &Path, root: bool) -> Vec<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir).unwrap();
        let id = (meta.dev(), meta.ino());
        if root {
            self.root(dir.to_path_buf(), id);
        }
        let mark = self.begin();
        let mut folders = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            self.push(&e.file_name(), &e.metadata().unwrap());
            if e.path().is_dir() {
                folders.push(e.path());
            }
        }
        self.finish(mark, id, true);
        folders
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_path_through_their_folder() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.md"), "b").unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::os::unix::fs::symlink("b.md", d.path().join("c")).unwrap();
        let mut scan = Scan::new();
        scan.list(d.path(), true);
        let listing = scan.listing(d.path()).unwrap();
        let names: Vec<&OsStr> = listing.entries().iter().map(|e| listing.name(e)).collect();
        assert_eq!(names, ["a", "b.md", "c"]);
        assert_eq!(scan.entry(&d.path().join("a")).unwrap().kind, Kind::Folder);
        assert_eq!(scan.entry(&d.path().join("b.md")).unwrap().kind, Kind::File);
        assert_eq!(scan.entry(&d.path().join("c")).unwrap().kind, Kind::Link);
        assert!(scan.entry(&d.path().join("zz")).is_none());
        assert!(scan.listing(&d.path().join("a")).is_none());
    }
}
