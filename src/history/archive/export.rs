//! Writing a snapshot as `.tar.zst` (this daemon's layout, deterministic) or `.tar.gz`
//! (SkillMeat's snapshot layout).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;

use crate::history::content;
use crate::history::{History, HistoryError, time};
use crate::model::{Snapshot, SnapshotId, SnapshotTarget, Version};

use super::{FORMAT, Layout, META, Meta, MetaArtifact};

pub(super) fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
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
        let tmp = crate::transient::sibling(dest, "export");
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
        snap: &Snapshot,
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
        snap: &Snapshot,
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
}
