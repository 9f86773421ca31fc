//! Recording a checked archive as a snapshot: this daemon's `.tar.zst` or SkillMeat's
//! `.tar.gz`, and SkillMeat's own snapshot folder imported once per archive.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::config::ImportLimits;
use crate::formats::collection;
use crate::history::content::{self, Content, FileContent};
use crate::history::{History, HistoryError, time};
use crate::model::{Location, Origin, Scope, SnapshotTarget, Version};

use super::reader::{Raw, clean, hostile, read_archive};
use super::{FORMAT, ImportReport, Layout, META, Meta};

impl History {
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
            let previous = self
                .versions_of(loc)?
                .into_iter()
                .find(|v| v.time_ms <= plan.time_ms);
            let mut parents: Vec<_> = previous.iter().map(|v| v.id).collect();
            // Attached where the hash matches: the same content seen at another location
            // (a deployment's or the collection's) is where this one came from.
            if let Some(twin) = self.fork_point(loc, &hash)? {
                parents.push(twin);
            }
            let v = self.new_version(
                loc,
                c,
                hash,
                parents,
                previous.as_ref(),
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
