//! Snapshots as files: export to `.tar.zst` (this daemon's layout) or `.tar.gz`
//! (SkillMeat's own snapshot layout), and import of both.
//!
//! The `.tar.zst` layout holds `snapshot.json` (target, time, origin, message, and each
//! artifact's location, SkillMeat hash and manifest) followed by `blobs/<sha256>` for
//! every distinct file; it is written deterministically, so exporting an imported
//! snapshot gives the same bytes. The `.tar.gz` layout is what `skillmeat snapshot`
//! writes: one folder named after the collection holding the whole collection.
//!
//! Import reads the whole archive into memory under [`ImportLimits`] and checks every entry
//! before anything is written: absolute paths, `..`, links leading outside, device files,
//! unexpected entries, and sizes beyond the limits are refused with the reason.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::config::ImportLimits;
use crate::formats::collection;

use super::content::{self, Content, FileContent};
use super::{History, HistoryError, time};
use crate::model::{Entry, Location, Origin, Scope, SnapshotId, SnapshotTarget, Version};

const FORMAT: &str = "skillmeatd-snapshot/1";
const META: &str = "snapshot.json";

/// The two archive layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `.tar.zst`, this daemon's.
    Zstd,
    /// `.tar.gz`, SkillMeat's snapshot layout.
    SkillMeat,
}

impl Layout {
    /// The layout a file name asks for.
    ///
    /// # Errors
    /// Neither `.tar.zst` nor `.tar.gz`/`.tgz`.
    pub fn of(path: &Path) -> Result<Layout, HistoryError> {
        let name = path.to_string_lossy();
        if name.ends_with(".tar.zst") {
            Ok(Layout::Zstd)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Ok(Layout::SkillMeat)
        } else {
            Err(HistoryError::Invalid(format!(
                "{}: name the file .tar.zst, or .tar.gz for SkillMeat's layout",
                path.display()
            )))
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format: String,
    target: SnapshotTarget,
    time_ms: i64,
    origin: Origin,
    #[serde(default)]
    message: Option<String>,
    artifacts: Vec<MetaArtifact>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetaArtifact {
    location: Location,
    content_hash: String,
    single_file: bool,
    entries: Vec<Entry>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub snapshots: Vec<SnapshotId>,
    /// Versions whose content was new.
    pub new_versions: u64,
    /// Archives skipped because they were imported before.
    pub skipped: u64,
}

/// One entry of an archive, checked.
#[derive(Debug)]
enum Raw {
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

fn hostile(path: &Path, problem: impl Into<String>) -> HistoryError {
    HistoryError::Hostile {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// A relative archive path made of plain components, `/`-joined (`./` dropped).
fn clean(name: &Path) -> Option<String> {
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
fn read_tar(
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
fn read_archive(
    file: &Path,
    limits: &ImportLimits,
) -> Result<(Layout, BTreeMap<String, Raw>), HistoryError> {
    let f = File::open(file).map_err(HistoryError::io(file, "open"))?;
    read_entries(file, io::BufReader::new(f), limits)
}

/// Reads an archive's entries from a stream (`file` names it in errors), choosing the
/// decompressor by magic bytes.
fn read_entries(
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

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl History {
    /// Writes snapshot `id` to `dest` in the layout its name asks for. `dest` must not
    /// exist; it appears complete or not at all.
    ///
    /// # Errors
    /// Bad name or `dest` exists; SkillMeat's layout for a project snapshot; a blob is
    /// missing; I/O errors.
    pub fn export(&self, id: SnapshotId, dest: &Path) -> Result<u64, HistoryError> {
        let layout = Layout::of(dest)?;
        if fs::symlink_metadata(dest).is_ok() {
            return Err(HistoryError::Invalid(format!(
                "{}: already exists; not overwriting it",
                dest.display()
            )));
        }
        let snap = self.snapshot_record(id)?;
        let members = self.members(&snap)?;
        let tmp = content::temp_sibling(dest, "export");
        let result = (|| {
            let f = File::create(&tmp).map_err(HistoryError::io(&tmp, "create"))?;
            let w = BufWriter::new(f);
            let f = match layout {
                Layout::Zstd => self.write_zstd(&snap, &members, w)?,
                Layout::SkillMeat => self.write_skillmeat(&snap, &members, w)?,
            };
            f.sync_all().map_err(HistoryError::io(&tmp, "sync"))?;
            // A hard link never replaces an existing file: no clobbering, even racing.
            fs::hard_link(&tmp, dest).map_err(HistoryError::io(dest, "create"))?;
            Ok(fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
        })();
        let _ = fs::remove_file(&tmp);
        result
    }

    fn write_zstd(
        &self,
        snap: &super::Snapshot,
        members: &[Version],
        w: BufWriter<File>,
    ) -> Result<File, HistoryError> {
        let io = |e: io::Error| HistoryError::Invalid(format!("writing the archive: {e}"));
        let mut artifacts = Vec::new();
        let mut blobs = BTreeMap::new();
        let mut sorted: Vec<&Version> = members.iter().collect();
        sorted.sort_by(|a, b| a.location.cmp(&b.location));
        for v in sorted {
            let mut entries = v.entries.clone();
            for e in &mut entries {
                // Links leading outside are kept as the plain files they were read as.
                if e.symlink
                    .as_deref()
                    .is_some_and(|t| !content::link_stays_inside(&e.path, t))
                {
                    e.symlink = None;
                }
                blobs.insert(e.blob.clone(), v.id);
            }
            artifacts.push(MetaArtifact {
                location: v.location.clone(),
                content_hash: v.content_hash.clone(),
                single_file: v.single_file,
                entries,
            });
        }
        let meta = Meta {
            format: FORMAT.into(),
            target: snap.target.clone(),
            time_ms: snap.time_ms,
            origin: snap.origin,
            message: snap.message.clone(),
            artifacts,
        };
        let mtime = (snap.time_ms / 1000).max(0) as u64;
        let enc = zstd::stream::write::Encoder::new(w, 19).map_err(io)?;
        let mut tar = tar::Builder::new(enc);
        let json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
        let mut h = header(tar::EntryType::Regular, json.len() as u64, 0o644, mtime);
        tar.append_data(&mut h, META, json.as_slice()).map_err(io)?;
        for (blob, version) in blobs {
            let sha = content::parse_sha(&blob).ok_or(HistoryError::MissingBlob {
                version,
                blob: blob.clone(),
            })?;
            let bytes = self.store().blob(&sha)?.ok_or(HistoryError::MissingBlob {
                version,
                blob: blob.clone(),
            })?;
            let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644, mtime);
            tar.append_data(&mut h, format!("blobs/{blob}"), bytes.as_slice())
                .map_err(io)?;
        }
        let enc = tar.into_inner().map_err(io)?;
        let w = enc.finish().map_err(io)?;
        w.into_inner()
            .map_err(|e| HistoryError::Invalid(format!("writing the archive: {e}")))
    }

    fn write_skillmeat(
        &self,
        snap: &super::Snapshot,
        members: &[Version],
        w: BufWriter<File>,
    ) -> Result<File, HistoryError> {
        let SnapshotTarget::Collection(name) = &snap.target else {
            return Err(HistoryError::Invalid(
                "SkillMeat's snapshot layout holds collections only; export a project \
                 snapshot as .tar.zst"
                    .into(),
            ));
        };
        let io = |e: io::Error| HistoryError::Invalid(format!("writing the archive: {e}"));
        // path inside the collection → (mode, symlink target, bytes); folders implied.
        let mut files: BTreeMap<String, (u32, Option<String>, Vec<u8>)> = BTreeMap::new();
        for v in members {
            let c = self.content_of(v)?;
            for f in c.files {
                let p = if f.path.is_empty() {
                    v.location.path.clone()
                } else {
                    format!("{}/{}", v.location.path, f.path)
                };
                let link = f
                    .symlink
                    .filter(|t| content::link_stays_inside(&f.path, t) && !c.single_file);
                files.insert(p, (f.mode, link, f.bytes));
            }
        }
        let mut paths: Vec<(String, bool)> = vec![(String::new(), true)];
        for p in files.keys() {
            let mut acc = String::new();
            let parts: Vec<&str> = p.split('/').collect();
            for d in &parts[..parts.len() - 1] {
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(d);
                paths.push((acc.clone(), true));
            }
            paths.push((p.clone(), false));
        }
        paths.sort_by(|a, b| content::component_order(&a.0, &b.0));
        paths.dedup();
        let mtime = (snap.time_ms / 1000).max(0) as u64;
        let gz = flate2::GzBuilder::new()
            .filename(format!("{}.tar", time::skillmeat_id(snap.time_ms)))
            .mtime(mtime as u32)
            .write(w, flate2::Compression::best());
        let mut tar = tar::Builder::new(gz);
        for (p, is_dir) in paths {
            let arc = if p.is_empty() {
                name.clone()
            } else {
                format!("{name}/{p}")
            };
            if is_dir {
                let mut h = header(tar::EntryType::Directory, 0, 0o755, mtime);
                tar.append_data(&mut h, &arc, io::empty()).map_err(io)?;
                continue;
            }
            let (mode, link, bytes) = &files[&p];
            match link {
                Some(t) => {
                    let mut h = header(tar::EntryType::Symlink, 0, 0o777, mtime);
                    tar.append_link(&mut h, &arc, t).map_err(io)?;
                }
                None => {
                    let mut h = header(tar::EntryType::Regular, bytes.len() as u64, *mode, mtime);
                    tar.append_data(&mut h, &arc, bytes.as_slice())
                        .map_err(io)?;
                }
            }
        }
        let gz = tar.into_inner().map_err(io)?;
        let w = gz.finish().map_err(io)?;
        w.into_inner()
            .map_err(|e| HistoryError::Invalid(format!("writing the archive: {e}")))
    }

    /// Imports a `.tar.zst` or `.tar.gz` snapshot archive as a new snapshot.
    ///
    /// # Errors
    /// The archive is unreadable or hostile ([`HistoryError::Hostile`]; nothing written);
    /// the store failed.
    pub fn import(&self, file: &Path, limits: &ImportLimits) -> Result<ImportReport, HistoryError> {
        let (layout, entries) = read_archive(file, limits)?;
        let plan = match layout {
            Layout::Zstd => plan_zstd(file, entries)?,
            Layout::SkillMeat => plan_skillmeat(file, entries)?,
        };
        let _w = self.lock();
        self.apply(plan)
    }

    /// Imports every `~/.skillmeat/snapshots/<collection>/*.tar.gz` not imported before,
    /// so the bases they hold become findable by hash.
    ///
    /// # Errors
    /// An archive is hostile or unreadable (the ones before it stay imported); the store
    /// failed.
    pub fn import_skillmeat_snapshots(
        &self,
        limits: &ImportLimits,
    ) -> Result<ImportReport, HistoryError> {
        let dir = self.home.join("snapshots");
        let mut report = ImportReport::default();
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(report);
        };
        let mut files: Vec<_> = rd
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .flat_map(|d| {
                fs::read_dir(d.path())
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
            })
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .collect();
        files.sort();
        for f in files {
            let key = f.to_string_lossy().into_owned();
            if self.store().imported(&key)? {
                report.skipped += 1;
                continue;
            }
            let r = self.import(&f, limits)?;
            self.store().mark_imported(&key)?;
            self.store().flush()?;
            report.snapshots.extend(r.snapshots);
            report.new_versions += r.new_versions;
        }
        Ok(report)
    }

    fn apply(&self, plan: Plan) -> Result<ImportReport, HistoryError> {
        let mut members = Vec::new();
        let mut new: Vec<Version> = Vec::new();
        for (loc, c) in &plan.artifacts {
            let hash = c.hash();
            if let Some(existing) = self.store().versions_with_hash(&hash, Some(loc))?.first() {
                members.push(*existing);
                continue;
            }
            let parent = self
                .versions_of(loc)?
                .into_iter()
                .find(|v| v.time_ms <= plan.time_ms)
                .map(|v| v.id);
            let v = self.new_version(
                loc,
                c,
                hash,
                parent,
                plan.time_ms,
                Origin::Import,
                plan.message.as_deref(),
            )?;
            members.push(v.id);
            new.push(v);
        }
        let id = self.record_snapshot(
            &plan.target,
            plan.time_ms,
            plan.origin,
            plan.message.as_deref(),
            members,
            &new,
        )?;
        Ok(ImportReport {
            snapshots: vec![id],
            new_versions: new.len() as u64,
            skipped: 0,
        })
    }
}

/// A checked archive, ready to record.
struct Plan {
    target: SnapshotTarget,
    time_ms: i64,
    origin: Origin,
    message: Option<String>,
    artifacts: Vec<(Location, Content)>,
}

fn plan_zstd(file: &Path, mut entries: BTreeMap<String, Raw>) -> Result<Plan, HistoryError> {
    let Some(Raw::File { bytes, .. }) = entries.remove(META) else {
        return Err(hostile(file, format!("no {META}")));
    };
    let meta: Meta = serde_json::from_slice(&bytes)
        .map_err(|e| hostile(file, format!("{META} does not parse: {e}")))?;
    if meta.format != FORMAT {
        return Err(hostile(file, format!("unknown format {:?}", meta.format)));
    }
    let mut blobs = BTreeMap::new();
    for (name, raw) in entries {
        let sha = name
            .strip_prefix("blobs/")
            .and_then(content::parse_sha)
            .ok_or_else(|| hostile(file, format!("unexpected entry {name:?}")))?;
        let Raw::File { bytes, .. } = raw else {
            return Err(hostile(file, format!("entry {name:?} is not a plain file")));
        };
        if content::sha256(&bytes) != sha {
            return Err(hostile(
                file,
                format!("blob {name:?} does not match its name"),
            ));
        }
        blobs.insert(hex::encode(sha), bytes);
    }
    let mut artifacts = Vec::new();
    for a in meta.artifacts {
        let same_scope = match (&meta.target, &a.location.scope) {
            (SnapshotTarget::Collection(n), Scope::Collection(m)) => n == m,
            (SnapshotTarget::Project(p), Scope::Project(q)) => p == q,
            _ => false,
        };
        if !same_scope || clean(Path::new(&a.location.path)).is_none() {
            return Err(hostile(
                file,
                format!("artifact {} lies outside the snapshot's target", a.location),
            ));
        }
        let mut files = Vec::new();
        for e in a.entries {
            let path_ok = if a.single_file {
                e.path.is_empty()
            } else {
                clean(Path::new(&e.path)).as_deref() == Some(e.path.as_str())
            };
            if !path_ok {
                return Err(hostile(
                    file,
                    format!(
                        "{}: file {:?} has an absolute path or `..`",
                        a.location, e.path
                    ),
                ));
            }
            if let Some(t) = &e.symlink
                && !content::link_stays_inside(&e.path, t)
            {
                return Err(hostile(
                    file,
                    format!("{}: link {:?} points outside ({t})", a.location, e.path),
                ));
            }
            let bytes = blobs
                .get(&e.blob)
                .ok_or_else(|| hostile(file, format!("blob {} is missing", e.blob)))?;
            files.push(FileContent {
                path: e.path,
                mode: e.mode,
                symlink: e.symlink,
                bytes: bytes.clone(),
            });
        }
        let c = Content {
            single_file: a.single_file,
            files,
        };
        if c.hash() != a.content_hash {
            return Err(hostile(
                file,
                format!(
                    "{}: content does not hash to {}",
                    a.location, a.content_hash
                ),
            ));
        }
        artifacts.push((a.location, c));
    }
    Ok(Plan {
        target: meta.target,
        time_ms: meta.time_ms,
        origin: meta.origin,
        message: meta.message,
        artifacts,
    })
}

fn plan_skillmeat(file: &Path, entries: BTreeMap<String, Raw>) -> Result<Plan, HistoryError> {
    let roots: std::collections::BTreeSet<&str> = entries
        .keys()
        .map(|k| k.split('/').next().unwrap_or(""))
        .collect();
    let name = match roots.into_iter().collect::<Vec<_>>()[..] {
        [one] => one.to_string(),
        _ => {
            return Err(hostile(
                file,
                "not a SkillMeat snapshot: entries are not under one collection folder",
            ));
        }
    };
    let manifest_key = format!("{name}/collection.toml");
    let Some(Raw::File { bytes, .. }) = entries.get(&manifest_key) else {
        return Err(hostile(file, format!("no {manifest_key}")));
    };
    let table: toml::Table = std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| hostile(file, format!("{manifest_key} is not valid TOML")))?;
    let mut coll = collection::Collection::default();
    collection::read_manifest(file, &table, &mut coll);
    // Resolve symlinks to files inside the archive into their bytes, as hashing would.
    let bytes_of = |key: &str| -> Option<(Vec<u8>, u32, Option<String>)> {
        let mut k = key.to_string();
        let mut link = None;
        for _ in 0..40 {
            match entries.get(&k)? {
                Raw::File { bytes, mode } => return Some((bytes.clone(), *mode, link)),
                Raw::Dir => return None,
                Raw::Link(t) => {
                    link.get_or_insert_with(|| t.clone());
                    let mut parts: Vec<&str> = k.split('/').collect();
                    parts.pop();
                    let mut next: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                    for c in t.split('/') {
                        match c {
                            "" | "." => {}
                            ".." => {
                                next.pop()?;
                            }
                            o => next.push(o.to_string()),
                        }
                    }
                    k = next.join("/");
                }
            }
        }
        None
    };
    let mut artifacts = Vec::new();
    let mut paths: Vec<String> = vec!["collection.toml".into(), "collection.lock".into()];
    paths.extend(
        coll.artifacts
            .iter()
            .map(|a| a.path.to_string_lossy().into_owned()),
    );
    for p in paths {
        let key = format!("{name}/{p}");
        let loc = Location::collection(&name, &p);
        let c = if matches!(entries.get(&key), Some(Raw::File { .. } | Raw::Link(_))) {
            let Some((bytes, mode, symlink)) = bytes_of(&key) else {
                continue;
            };
            Content {
                single_file: true,
                files: vec![FileContent {
                    path: String::new(),
                    mode,
                    symlink: symlink.filter(|_| false),
                    bytes,
                }],
            }
        } else {
            let prefix = format!("{key}/");
            let mut files = Vec::new();
            for k in entries.keys().filter(|k| k.starts_with(&prefix)) {
                if let Some((bytes, mode, symlink)) = bytes_of(k) {
                    let rel = k[prefix.len()..].to_string();
                    let symlink = symlink.filter(|t| content::link_stays_inside(&rel, t));
                    files.push(FileContent {
                        path: rel,
                        mode,
                        symlink,
                        bytes,
                    });
                }
            }
            if files.is_empty() && !entries.contains_key(&key) {
                continue;
            }
            Content {
                single_file: false,
                files,
            }
            .deployed_copy()
        };
        artifacts.push((loc, c));
    }
    let stem = file
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".tar.gz").to_string())
        .unwrap_or_default();
    Ok(Plan {
        target: SnapshotTarget::Collection(name),
        time_ms: time::parse_skillmeat_id(&stem).unwrap_or_else(time::now_ms),
        origin: Origin::Import,
        message: Some(format!("imported from SkillMeat snapshot {stem}")),
        artifacts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn refused(bytes: Vec<u8>, limits: &ImportLimits) -> String {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.tar.gz");
        fs::write(&p, gz(&bytes)).unwrap();
        match read_archive(&p, limits) {
            Err(HistoryError::Hostile { problem, .. }) => problem,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn raw_header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    #[test]
    fn arbitrary_bytes_are_checked_without_panics() {
        let limits = ImportLimits::default();
        let good = gz(&tar_with(|b| {
            let data = b"hello\n";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "default/skills/x/SKILL.md", &data[..])
                .unwrap();
        }));
        assert_eq!(check_bytes(&good, &limits).unwrap(), 1);
        for bad in [
            Vec::new(),
            b"\x1f".to_vec(),
            b"not an archive at all".to_vec(),
            good[..good.len() / 2].to_vec(),
            b"\x28\xb5\x2f\xfd garbage".to_vec(),
            gz(b"not a tar stream, only text"),
        ] {
            assert!(check_bytes(&bad, &limits).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostile_entries_are_refused() {
        let limits = ImportLimits::default();
        let abs = tar_with(|b| {
            let h = raw_header(b"/etc/passwd", tar::EntryType::Regular, 1);
            b.append(&h, &b"x"[..]).unwrap();
        });
        assert!(refused(abs, &limits).contains("absolute path or `..`"));
        let dotdot = tar_with(|b| {
            let h = raw_header(b"c/../../x", tar::EntryType::Regular, 1);
            b.append(&h, &b"x"[..]).unwrap();
        });
        assert!(refused(dotdot, &limits).contains("`..`"));
        let link = tar_with(|b| {
            let mut h = header(tar::EntryType::Symlink, 0, 0o777, 0);
            b.append_link(&mut h, "c/evil", "../../etc/passwd").unwrap();
        });
        assert!(refused(link, &limits).contains("points outside"));
        let dev = tar_with(|b| {
            let h = raw_header(b"c/null", tar::EntryType::Char, 0);
            b.append(&h, io::empty()).unwrap();
        });
        assert!(refused(dev, &limits).contains("device file"));
        let small = ImportLimits {
            max_entry_bytes: 1000,
            ..ImportLimits::default()
        };
        let big = tar_with(|b| {
            let mut h = header(tar::EntryType::Regular, 5000, 0o644, 0);
            b.append_data(&mut h, "c/zeros", &vec![0u8; 5000][..])
                .unwrap();
        });
        assert!(refused(big, &small).contains("limit"));
    }

    #[test]
    fn names_choose_layouts() {
        assert_eq!(Layout::of(Path::new("a.tar.zst")).unwrap(), Layout::Zstd);
        assert_eq!(
            Layout::of(Path::new("20251217-103000-123456.tar.gz")).unwrap(),
            Layout::SkillMeat
        );
        assert!(Layout::of(Path::new("a.zip")).is_err());
    }
}
