//! The stat-only walk of [`super`]: what a hash of one path reads, each file with its
//! identity and metadata, in SkillMeat's feed order, from the disk or from the listings of a
//! [`Scan`].

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::scan::{Kind, Scan};
use super::{FileStamp, HashError, ListedFile, Listing, Variant, copy_ignores};

/// Lists what hashing `path` with `variant` reads, without reading any file content.
///
/// # Errors
/// [`HashError::NotFound`] when `path` does not exist; I/O errors reading folders or
/// metadata; symlink loops; a `path` that is neither a file nor a folder; for
/// [`Variant::DeployedCopy`], dangling symlinks and special files inside (a deploy's copy
/// fails on both).
pub fn walk(path: &Path, variant: Variant) -> Result<Listing, HashError> {
    walk_in(path, variant, None)
}

/// [`walk`], taking the listing of each folder (and the metadata of each entry) that
/// `scan` holds from it instead of the disk.
///
/// # Errors
/// As [`walk`].
pub fn walk_in(path: &Path, variant: Variant, scan: Option<&Scan>) -> Result<Listing, HashError> {
    let meta = match scan
        .and_then(|s| s.entry(path))
        .filter(|e| e.kind != Kind::Link)
    {
        Some(e) => Stat::of(e.kind, e.stamp),
        None => Stat::from(&fs::metadata(path).map_err(|e| HashError::io(path, "stat", e))?),
    };
    if meta.kind != Kind::Folder {
        if meta.kind != Kind::File {
            let meta = fs::metadata(path).map_err(|e| HashError::io(path, "stat", e))?;
            return Err(HashError::NotRegular {
                path: path.to_path_buf(),
                kind: crate::regular::describe(meta.file_type()),
            });
        }
        return Ok(Listing {
            root: path.to_path_buf(),
            single_file: true,
            files: vec![ListedFile {
                rel: Vec::new(),
                stamp: meta.stamp,
            }],
        });
    }
    let mut files = Vec::new();
    let mut walk = Walk {
        variant,
        scan,
        ancestors: vec![(meta.stamp.dev, meta.stamp.ino)],
        out: &mut files,
    };
    walk.dir(path, (meta.stamp.dev, meta.stamp.ino), &mut Vec::new())?;
    Ok(Listing {
        root: path.to_path_buf(),
        single_file: false,
        files,
    })
}

/// What a walk needs of an entry's metadata (symbolic links followed).
#[derive(Clone, Copy)]
struct Stat {
    kind: Kind,
    stamp: FileStamp,
}

impl Stat {
    fn of(kind: Kind, stamp: FileStamp) -> Stat {
        Stat { kind, stamp }
    }

    fn from(meta: &Metadata) -> Stat {
        Stat::of(Kind::of(meta.file_type()), FileStamp::of(meta))
    }
}

/// One walk's settings and what it found so far.
struct Walk<'a> {
    variant: Variant,
    scan: Option<&'a Scan>,
    /// Identities of the folders being walked, to refuse a loop through a link.
    ancestors: Vec<(u64, u64)>,
    out: &'a mut Vec<ListedFile>,
}

impl<'a> Walk<'a> {
    /// The entries of the folder `dir`, of identity `id`, sorted by name bytes, each with
    /// its `lstat`.
    fn entries(
        &self,
        dir: &Path,
        id: (u64, u64),
    ) -> Result<Vec<(Cow<'a, OsStr>, Stat)>, HashError> {
        if let Some(listing) = self.scan.and_then(|s| s.folder(id)) {
            return Ok(listing
                .entries()
                .iter()
                .map(|e| (Cow::Borrowed(listing.name(e)), Stat::of(e.kind, e.stamp)))
                .collect());
        }
        let mut entries = fs::read_dir(dir)
            .map_err(|e| HashError::io(dir, "read folder", e))?
            .map(|e| e.map(|e| (e.file_name(), e)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| HashError::io(dir, "read folder", e))?;
        // Sorting each folder's children by name bytes, depth first, gives Python's
        // component-wise sort of the whole relative paths.
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        entries
            .into_iter()
            .map(|(name, entry)| {
                // Stated through the open folder (one name to look up, not the whole path).
                let meta = entry
                    .metadata()
                    .map_err(|e| HashError::io(&dir.join(&name), "stat", e))?;
                Ok((Cow::Owned(name), Stat::from(&meta)))
            })
            .collect()
    }

    fn dir(&mut self, dir: &Path, id: (u64, u64), rel: &mut Vec<u8>) -> Result<(), HashError> {
        let variant = self.variant;
        for (name, lstat) in self.entries(dir, id)? {
            let name = name.as_bytes();
            if variant == Variant::DeployedCopy && copy_ignores(name) {
                continue;
            }
            // Built only where needed: not for a plain file, the usual entry.
            let abs = || dir.join(std::ffi::OsStr::from_bytes(name));
            let (meta, via_link) = if lstat.kind == Kind::Link {
                let abs = abs();
                match fs::metadata(&abs) {
                    Ok(m) => (Stat::from(&m), true),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if variant == Variant::DeployedCopy {
                            return Err(HashError::DanglingSymlink { path: abs });
                        }
                        continue;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                        return Err(HashError::SymlinkLoop { path: abs });
                    }
                    Err(e) => return Err(HashError::io(&abs, "stat", e)),
                }
            } else {
                (lstat, false)
            };
            let start = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name);
            match meta.kind {
                Kind::Folder => {
                    let id = (meta.stamp.dev, meta.stamp.ino);
                    if self.ancestors.contains(&id) {
                        return Err(HashError::SymlinkLoop { path: abs() });
                    }
                    // The legacy hash never descends through a symlinked folder; a deploy
                    // copies it as a real folder, which then is hashed.
                    if !via_link || variant == Variant::DeployedCopy {
                        self.ancestors.push(id);
                        self.dir(&abs(), id, rel)?;
                        self.ancestors.pop();
                    }
                }
                Kind::File => self.out.push(ListedFile {
                    rel: rel.clone(),
                    stamp: meta.stamp,
                }),
                _ if variant == Variant::DeployedCopy => {
                    // SkillMeat's hash skips it; a deploy's copy stops on it.
                    let abs = abs();
                    let kind = fs::metadata(&abs).map_or("not a regular file", |m| {
                        crate::regular::describe(m.file_type())
                    });
                    return Err(HashError::NotRegular { path: abs, kind });
                }
                _ => {}
            }
            rel.truncate(start);
        }
        Ok(())
    }
}
