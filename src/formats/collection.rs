//! A collection folder: `collection.toml` (the manifest: which artifacts exist and where)
//! and `collection.lock` (each artifact's recorded content hash).
//!
//! A folder under `collections/` is a collection iff it holds `collection.toml`
//! (`core/collection.py` `list_collections`).
//!
//! A manifest that cannot be read, or an entry that cannot be used, never makes an
//! artifact absent: [`Collection::lookup`] says the artifact cannot be known, with the
//! reason, so drift reports `error` rather than `removed`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    Problem, is_contained, normalize_name, parse_toml, read_toml, str_field, string_fields_problem,
};

/// One `[[artifacts]]` record of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionArtifact {
    pub name: String,
    pub artifact_type: String,
    /// Path relative to the collection folder, e.g. `skills/canvas-design`.
    pub path: PathBuf,
}

impl CollectionArtifact {
    /// The identity SkillMeat matches deployments on: normalized name and type.
    pub fn key(&self) -> (String, String) {
        (
            normalize_name(&self.name).to_string(),
            self.artifact_type.clone(),
        )
    }
}

/// A manifest entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    /// Its `name`, when that much could be read.
    pub name: Option<String>,
    /// Why, with the entry's index: `artifacts[2] (canvas): type: expected a string, …`.
    pub reason: String,
}

/// What a collection says about one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(&'a CollectionArtifact),
    /// The manifest is readable and has no such artifact.
    Absent,
    /// The manifest, or an entry that may be this artifact, cannot be read: why.
    Unknown(&'a str),
}

/// What a collection folder holds, as far as it could be read.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub name: String,
    pub dir: PathBuf,
    pub artifacts: Vec<CollectionArtifact>,
    /// `collection.lock` entries: `"<name>::<type>"` → content hash.
    pub lock: BTreeMap<String, String>,
    /// Why the manifest could not be used at all, if it could not (also in `problems`).
    pub unreadable: Option<String>,
    /// Manifest entries that cannot be used (also in `problems`).
    pub bad_entries: Vec<BadEntry>,
    pub problems: Vec<Problem>,
}

impl Collection {
    /// The artifact a deployment of `name` and `artifact_type` came from, or why that
    /// cannot be known: the manifest is unreadable, or an entry of that name (or with no
    /// readable name) is unusable.
    pub fn lookup(&self, name: &str, artifact_type: &str) -> Lookup<'_> {
        if let Some(a) = self.find(name, artifact_type) {
            return Lookup::Found(a);
        }
        if let Some(why) = &self.unreadable {
            return Lookup::Unknown(why);
        }
        let name = normalize_name(name);
        match self
            .bad_entries
            .iter()
            .find(|b| b.name.as_deref().is_none_or(|n| normalize_name(n) == name))
        {
            Some(b) => Lookup::Unknown(&b.reason),
            None => Lookup::Absent,
        }
    }

    /// The unique artifact named `name` (any type), if exactly one is.
    pub fn only_one_named(&self, name: &str) -> Option<&CollectionArtifact> {
        let name = normalize_name(name);
        let mut named = self
            .artifacts
            .iter()
            .filter(|a| normalize_name(&a.name) == name);
        let first = named.next()?;
        named.next().is_none().then_some(first)
    }

    /// The artifact a deployment of `name` (any known extension) and `artifact_type` came
    /// from.
    pub fn find(&self, name: &str, artifact_type: &str) -> Option<&CollectionArtifact> {
        let name = normalize_name(name);
        self.artifacts
            .iter()
            .find(|a| a.artifact_type == artifact_type && normalize_name(&a.name) == name)
    }
}

/// The collections folder of a SkillMeat home.
pub fn collections_dir(home: &Path) -> PathBuf {
    home.join("collections")
}

/// Names of every collection under `home`, sorted.
pub fn list(home: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(collections_dir(home)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().join("collection.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Reads collection `name` of `home`: manifest and lock.
pub fn read(home: &Path, name: &str) -> Collection {
    let dir = collections_dir(home).join(name);
    let mut c = Collection {
        name: name.to_string(),
        dir: dir.clone(),
        ..Default::default()
    };
    let manifest = dir.join("collection.toml");
    match read_toml(&manifest) {
        Ok(t) => read_manifest(&manifest, &t, &mut c),
        Err(e) => c.unusable(&manifest, e),
    }
    let lock = dir.join("collection.lock");
    if lock.exists() {
        match read_toml(&lock) {
            Ok(t) => read_lock(&lock, &t, &mut c),
            Err(e) => c.problems.push(Problem::new(&lock, e)),
        }
    }
    c
}

/// Parses a collection from the bytes of its manifest and (if any) its lock file, as
/// [`read`] would find them in `dir`.
pub fn parse(name: &str, dir: &Path, manifest: &[u8], lock: Option<&[u8]>) -> Collection {
    let mut c = Collection {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let manifest_path = dir.join("collection.toml");
    match parse_toml(manifest) {
        Ok(t) => read_manifest(&manifest_path, &t, &mut c),
        Err(e) => c.unusable(&manifest_path, e),
    }
    if let Some(lock) = lock {
        let lock_path = dir.join("collection.lock");
        match parse_toml(lock) {
            Ok(t) => read_lock(&lock_path, &t, &mut c),
            Err(e) => c.problems.push(Problem::new(&lock_path, e)),
        }
    }
    c
}

impl Collection {
    /// Records that the manifest at `path` cannot be used at all, and why.
    fn unusable(&mut self, path: &Path, why: String) {
        self.problems.push(Problem::new(path, &why));
        self.unreadable = Some(format!("{}: {why}", path.display()));
    }

    /// Records that entry `i` of the manifest at `path` cannot be used, and why.
    fn bad_entry(&mut self, path: &Path, i: usize, name: Option<&str>, why: String) {
        let reason = match name {
            Some(n) => format!("artifacts[{i}] ({n}): {why}"),
            None => format!("artifacts[{i}]: {why}"),
        };
        self.problems.push(Problem::new(path, &reason));
        self.bad_entries.push(BadEntry {
            name: name.map(str::to_string),
            reason: format!("{}: {reason}", path.display()),
        });
    }
}

pub(crate) fn read_manifest(path: &Path, t: &toml::Table, c: &mut Collection) {
    let Some(records) = t.get("artifacts") else {
        return;
    };
    let Some(records) = records.as_array() else {
        c.unusable(path, "`artifacts` is not an array of tables".into());
        return;
    };
    for (i, r) in records.iter().enumerate() {
        let Some(r) = r.as_table() else {
            c.bad_entry(path, i, None, "not a table".into());
            continue;
        };
        let (Some(name), Some(ty), Some(rel)) = (
            str_field(r, "name"),
            str_field(r, "type"),
            str_field(r, "path"),
        ) else {
            let why = string_fields_problem(r, &["name", "type", "path"]).unwrap_or_default();
            c.bad_entry(path, i, str_field(r, "name"), why);
            continue;
        };
        let rel = PathBuf::from(rel.trim_end_matches('/'));
        if !is_contained(&rel) {
            let why = format!("path {} leaves the collection", rel.display());
            c.bad_entry(path, i, Some(name), why);
            continue;
        }
        c.artifacts.push(CollectionArtifact {
            name: name.to_string(),
            artifact_type: ty.to_string(),
            path: rel,
        });
    }
}

fn read_lock(path: &Path, t: &toml::Table, c: &mut Collection) {
    let Some(entries) = t
        .get("lock")
        .and_then(|l| l.get("entries"))
        .and_then(toml::Value::as_table)
    else {
        return;
    };
    for (key, entry) in entries {
        match entry.get("content_hash").and_then(toml::Value::as_str) {
            Some(h) => {
                c.lock.insert(key.clone(), h.to_string());
            }
            None => c.problems.push(Problem::new(
                path,
                format!("lock entry {key:?} has no content_hash"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[collection]
name = "default"
version = "1.0.0"
created = "2025-01-15T10:00:00.000001"
updated = "2025-01-16T09:00:00.600000"

[[artifacts]]
name = "canvas-design"
type = "skill"
path = "skills/canvas-design/"
origin = "github"
added = "2025-01-15T10:30:00.123456"
future_key = 1

[artifacts.metadata]
title = "Canvas Design"

[[artifacts]]
name = "review"
type = "command"
path = "commands/review.md"
origin = "local"
added = "2025-01-16T09:00:00.500000"

[[artifacts]]
name = "broken"
origin = "local"

[[artifacts]]
name = "evil"
type = "skill"
path = "../../etc"
"#;

    #[test]
    fn reads_artifacts_and_reports_bad_records() {
        let home = tempfile::tempdir().unwrap();
        let dir = collections_dir(home.path()).join("default");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("collection.toml"), MANIFEST).unwrap();
        std::fs::write(
            dir.join("collection.lock"),
            "[lock]\nversion = \"1.0.0\"\n\n[lock.entries.\"review::command\"]\ncontent_hash = \"ab\"\nfetched = \"x\"\n",
        )
        .unwrap();
        assert_eq!(list(home.path()), vec!["default".to_string()]);
        let c = read(home.path(), "default");
        assert_eq!(c.artifacts.len(), 2);
        assert_eq!(c.artifacts[0].path, PathBuf::from("skills/canvas-design"));
        assert_eq!(c.find("review.md", "command").unwrap().name, "review");
        assert!(c.find("review", "agent").is_none());
        assert_eq!(
            c.lock.get("review::command").map(String::as_str),
            Some("ab")
        );
        assert_eq!(c.problems.len(), 2, "{:?}", c.problems);
        assert!(
            c.problems[0]
                .message
                .contains("artifacts[2] (broken): missing required key(s): type, path")
        );
        assert!(c.problems[1].message.contains("leaves the collection"));
        // What the bad entries may be is unknown, never absent.
        assert!(matches!(c.lookup("review", "command"), Lookup::Found(_)));
        assert_eq!(c.lookup("other", "skill"), Lookup::Absent);
        assert!(
            matches!(c.lookup("broken", "skill"), Lookup::Unknown(why) if why.contains("artifacts[2] (broken)"))
        );
        assert!(matches!(c.lookup("evil", "skill"), Lookup::Unknown(_)));
    }

    #[test]
    fn a_malformed_manifest_makes_every_artifact_unknown() {
        let home = tempfile::tempdir().unwrap();
        let dir = collections_dir(home.path()).join("default");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("collection.toml"), "[[artifacts]\nname = \"x\"\n").unwrap();
        let c = read(home.path(), "default");
        match c.lookup("canvas", "skill") {
            Lookup::Unknown(why) => assert!(why.contains("invalid TOML at line 1"), "{why}"),
            other => panic!("{other:?}"),
        }
        let entry: toml::Table =
            "artifacts = [{ name = \"canvas\", type = 3, path = \"skills/canvas\" }]"
                .parse()
                .unwrap();
        let mut c = Collection::default();
        read_manifest(Path::new("/c/collection.toml"), &entry, &mut c);
        assert_eq!(
            c.lookup("canvas", "skill"),
            Lookup::Unknown(
                "/c/collection.toml: artifacts[0] (canvas): type: expected a string, found an integer"
            )
        );
    }

    #[test]
    fn empty_collection_as_skillmeat_writes_it() {
        let home = tempfile::tempdir().unwrap();
        let dir = collections_dir(home.path()).join("default");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("collection.toml"),
            "artifacts = []\n\n[collection]\nname = \"default\"\nversion = \"1.0.0\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("collection.lock"),
            "[lock]\nversion = \"1.0.0\"\n\n[lock.entries]\n",
        )
        .unwrap();
        let c = read(home.path(), "default");
        assert!(
            c.artifacts.is_empty() && c.problems.is_empty(),
            "{:?}",
            c.problems
        );
    }
}
