//! Reading an archive under the import limits: every entry checked (absolute paths, `..`,
//! links leading outside, device files, sizes) before anything is written anywhere.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Component, Path};

use crate::config::ImportLimits;
use crate::history::HistoryError;
use crate::history::content;

use super::Layout;

/// One entry of an archive, checked.
#[derive(Debug)]
pub(super) enum Raw {
    File { bytes: Vec<u8>, mode: u32 },
    Dir,
    Link(String),
}

/// Fails reads once more than `left` bytes came through: the decompression-bomb guard.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "archive expands beyond the limit",
            )
        })?;
        Ok(n)
    }
}

pub(super) fn hostile(path: &Path, problem: impl Into<String>) -> HistoryError {
    HistoryError::Hostile {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// A relative archive path made of plain components, `/`-joined (`./` dropped).
pub(super) fn clean(name: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Reads and checks every entry of a tar stream.
pub(super) fn read_tar(
    file: &Path,
    stream: impl Read,
    limits: &ImportLimits,
) -> Result<BTreeMap<String, Raw>, HistoryError> {
    let slack = limits.max_entries.saturating_mul(1024) + (1 << 20);
    let capped = Capped {
        inner: stream,
        left: limits.max_total_bytes.saturating_add(slack),
    };
    let mut ar = tar::Archive::new(capped);
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    let entries = ar
        .entries()
        .map_err(|e| hostile(file, format!("not a tar archive: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| hostile(file, format!("unreadable archive: {e}")))?;
        let kind = e.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            continue;
        }
        if out.len() as u64 >= limits.max_entries {
            return Err(hostile(
                file,
                format!("more than {} entries", limits.max_entries),
            ));
        }
        let raw_path = e
            .path()
            .map_err(|e| hostile(file, format!("unreadable entry name: {e}")))?
            .into_owned();
        let name = clean(&raw_path).ok_or_else(|| {
            hostile(
                file,
                format!(
                    "entry {:?} has an absolute path or `..`",
                    raw_path.display()
                ),
            )
        })?;
        let raw = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = e.header().size().unwrap_or(u64::MAX);
                if size > limits.max_entry_bytes {
                    return Err(hostile(
                        file,
                        format!(
                            "entry {name:?} is {size} bytes, over the {} byte limit",
                            limits.max_entry_bytes
                        ),
                    ));
                }
                total += size;
                if total > limits.max_total_bytes {
                    return Err(hostile(
                        file,
                        format!(
                            "entries total more than the {} byte limit",
                            limits.max_total_bytes
                        ),
                    ));
                }
                let mut bytes = Vec::with_capacity(size as usize);
                e.read_to_end(&mut bytes)
                    .map_err(|err| hostile(file, format!("entry {name:?}: {err}")))?;
                let mode = e.header().mode().unwrap_or(0o644) & 0o7777;
                Raw::File { bytes, mode }
            }
            tar::EntryType::Directory => Raw::Dir,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .ok()
                    .flatten()
                    .and_then(|t| t.to_str().map(str::to_string))
                    .ok_or_else(|| hostile(file, format!("link {name:?} has no target")))?;
                let inside = if kind == tar::EntryType::Link {
                    clean(Path::new(&target)).is_some()
                } else {
                    content::link_stays_inside(&name, &target)
                };
                if !inside {
                    return Err(hostile(
                        file,
                        format!("link {name:?} points outside the archive ({target})"),
                    ));
                }
                if kind == tar::EntryType::Link {
                    match out.get(&clean(Path::new(&target)).unwrap_or_default()) {
                        Some(Raw::File { bytes, mode }) => Raw::File {
                            bytes: bytes.clone(),
                            mode: *mode,
                        },
                        _ => {
                            return Err(hostile(
                                file,
                                format!("hard link {name:?} names no earlier file"),
                            ));
                        }
                    }
                } else {
                    Raw::Link(target)
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(hostile(file, format!("entry {name:?} is a device file")));
            }
            other => {
                return Err(hostile(
                    file,
                    format!("entry {name:?} has unsupported type {other:?}"),
                ));
            }
        };
        out.insert(name, raw);
    }
    Ok(out)
}

/// Opens an archive and reads its entries, choosing the decompressor by magic bytes.
///
/// Only a regular file is opened, without blocking ([`crate::regular::open`]): a FIFO, a
/// socket or a device is refused at once, before any read.
pub(super) fn read_archive(
    file: &Path,
    limits: &ImportLimits,
) -> Result<(Layout, BTreeMap<String, Raw>), HistoryError> {
    crate::faults::point("history.import");
    let f = crate::regular::open(file).map_err(|e| {
        if crate::regular::is_not_regular(&e) {
            HistoryError::Invalid(format!(
                "{}: {e}; only an archive file (.tar.zst or .tar.gz) can be imported",
                file.display()
            ))
        } else {
            HistoryError::io(file, "open")(e)
        }
    })?;
    read_entries(file, io::BufReader::new(f), limits)
}

/// Reads an archive's entries from a stream (`file` names it in errors), choosing the
/// decompressor by magic bytes.
pub(super) fn read_entries(
    file: &Path,
    mut stream: impl Read,
    limits: &ImportLimits,
) -> Result<(Layout, BTreeMap<String, Raw>), HistoryError> {
    let mut magic = Vec::with_capacity(4);
    (&mut stream)
        .take(4)
        .read_to_end(&mut magic)
        .map_err(HistoryError::io(file, "read"))?;
    let n = magic.len();
    let buf = io::Cursor::new(magic.clone()).chain(stream);
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        let entries = read_tar(file, flate2::read::GzDecoder::new(buf), limits)?;
        Ok((Layout::SkillMeat, entries))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let dec = zstd::stream::read::Decoder::new(buf)
            .map_err(|e| hostile(file, format!("not zstd: {e}")))?;
        Ok((Layout::Zstd, read_tar(file, dec, limits)?))
    } else {
        Err(hostile(file, "neither a .tar.zst nor a .tar.gz archive"))
    }
}

/// Checks archive bytes the way an import does (every hostile-entry and size rule) without
/// touching the store; returns the number of entries accepted. For fuzzing and tests.
///
/// # Errors
/// The archive is malformed, hostile, or beyond `limits`.
pub fn check_bytes(bytes: &[u8], limits: &ImportLimits) -> Result<usize, HistoryError> {
    read_entries(Path::new("<archive>"), bytes, limits).map(|(_, e)| e.len())
}
