//! Write-back operations: sync pull, sync push, merge, rollback and undo, and the log of
//! every one of them (`smctl audit`).
//!
//! Each operation is a synchronous function over the [`Engine`] (its history and store)
//! and a [`Writer`], run by the RPC layer on the blocking pool. They share one shape:
//!
//! 1. find the deployment (or collection artifact) and read every side into memory;
//! 2. with `dry_run`, stop there and say what would change;
//! 3. take a safety snapshot of every collection or project about to change
//!    ([`History::snapshot`]) *before* the first byte is written;
//! 4. write through the [`Writer`] (SkillMeat's lock, atomic swap, confined to the profile
//!    root or the collection folder): artifacts whole (a skill folder with
//!    [`Writer::replace_dir`], a single file with [`Writer::replace_file`]), then the
//!    bookkeeping files (`.skillmeat-deployed.toml`, `collection.lock`, the rollback audit);
//! 5. record the operation ([`OperationRecord`]): what it touched and which snapshot holds
//!    the previous content of each, so [`undo`] can put it back. Failed operations are
//!    recorded too, with their error.
//!
//! # Directions and choices
//! - `sync pull` is collection → project (a redeploy). SkillMeat's own `sync-pull` verb goes
//!   the other way (project → collection); ours for that is `sync push`.
//! - `merge` writes the merged result into the **project** copy (LOCAL = project, REMOTE =
//!   collection), unlike SkillMeat's sync merge, which writes into the collection. The
//!   base is the version in history whose hash is the deployment's `content_hash`. When no
//!   conflict is left, the deployment record's hash becomes the collection's hash (the
//!   collection content is now the merge base, and the project shows as `modified` by the
//!   local edits it kept); with conflicts left, the record is not touched.
//! - Restoring from a snapshot writes what history kept: collection artifacts as a deploy
//!   copies them (SkillMeat's copy-ignored names are not part of their versions), project
//!   copies byte for byte, symbolic links as the files they pointed to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::formats::deployment_write::{self, DeploymentWriteError, RecordKey, RecordUpdate};
use crate::formats::lock_write::{self, LockUpdate, LockWriteError};
use crate::formats::rollback_audit::{self, AuditWriteError, RollbackRecord};
use crate::formats::{collection, deployment, normalize_name, timestamp};
use crate::hash::{self, HashError, Variant};
use crate::history::content::{Content, FileContent};
use crate::history::{History, HistoryError, time};
use crate::merge::{self, ConflictKind, FileOutcome, Resolution, Side, Tree};
use crate::model::{
    Event, Location, OperationRecord, Origin, Scope, Snapshot, SnapshotId, SnapshotTarget, Touched,
    Version,
};
use crate::paths::canonical;
use crate::store::StoreError;
use crate::writer::{DEFAULT_FILE_MODE, DirFiles, WriteError, Writer};

impl OperationRecord {
    fn new(operation: &str, targets: Vec<String>) -> OperationRecord {
        OperationRecord {
            id: 0,
            time_ms: time::now_ms(),
            operation: operation.to_string(),
            targets,
            files_restored: Vec::new(),
            files_merged: Vec::new(),
            files_conflicted: Vec::new(),
            safety_snapshots: Vec::new(),
            touched: Vec::new(),
            success: false,
            error: None,
            undoes: None,
        }
    }
}

/// Why an operation did not happen (or stopped). Each names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Deployment(#[from] DeploymentWriteError),
    #[error(transparent)]
    Lock(#[from] LockWriteError),
    #[error(transparent)]
    Audit(#[from] AuditWriteError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpError {
    /// Whether the failure is another process holding SkillMeat's lock.
    pub fn is_locked(&self) -> bool {
        matches!(
            self,
            OpError::Write(WriteError::Locked { .. })
                | OpError::Deployment(DeploymentWriteError::Write(WriteError::Locked { .. }))
                | OpError::Lock(LockWriteError::Write(WriteError::Locked { .. }))
                | OpError::Audit(AuditWriteError::Write(WriteError::Locked { .. }))
        )
    }
}

/// A file conflict, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: String,
    /// `both_modified`, `add_add`, `deleted_locally`, `deleted_in_collection`.
    pub kind: String,
    pub binary: bool,
    /// The side a `--prefer` took, if any.
    pub resolved: Option<String>,
}

/// A merged file, for dry runs: its path and merged bytes (None = deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedFile {
    pub path: String,
    pub content: Option<Vec<u8>>,
}

/// What an operation did (or, for a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct OpReport {
    /// The recorded operation (None for dry runs).
    pub record: Option<OperationRecord>,
    pub dry_run: bool,
    /// Files that change (restored, copied or merged).
    pub changed: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// The files of the result that differ from what is there now (merge dry runs).
    pub merged: Vec<MergedFile>,
    /// The base version of a merge.
    pub base: Option<String>,
}

/// A deployment found by project and artifact name or path.
#[derive(Debug, Clone)]
struct Deployed {
    project: PathBuf,
    root: String,
    record: deployment::Deployment,
    collection_dir: PathBuf,
    /// The collection copy's path relative to the collection folder.
    collection_rel: PathBuf,
}

impl Deployed {
    fn managed(&self) -> PathBuf {
        self.project.join(&self.root)
    }
    fn project_path(&self) -> PathBuf {
        self.managed().join(&self.record.artifact_path)
    }
    fn collection_path(&self) -> PathBuf {
        self.collection_dir.join(&self.collection_rel)
    }
    fn project_loc(&self) -> Location {
        Location::project(
            &self.project,
            &self.root,
            &self.record.artifact_path.to_string_lossy(),
        )
    }
    fn collection_loc(&self) -> Location {
        Location::collection(
            &self.record.from_collection,
            &self.collection_rel.to_string_lossy(),
        )
    }
    fn deployment_file_loc(&self) -> Location {
        Location::project(&self.project, &self.root, deployment::FILE_NAME)
    }
    fn claim(&self) -> Claim {
        Claim::new(
            Some(&self.project),
            &self.record.artifact_name,
            &self.record.artifact_type,
        )
    }
    fn key(&self) -> RecordKey<'_> {
        RecordKey {
            name: &self.record.artifact_name,
            artifact_type: &self.record.artifact_type,
            profile_id: self.record.profile_id.as_deref(),
        }
    }
}

/// Whether `spec` names this artifact: its name (any SkillMeat extension), its path in the
/// profile root, or `type/name`.
fn names(spec: &str, name: &str, artifact_type: &str, path: &Path) -> bool {
    let spec = spec.trim_end_matches('/');
    normalize_name(spec) == normalize_name(name)
        || Path::new(spec) == path
        || spec == format!("{artifact_type}/{}", normalize_name(name))
}

fn find_deployment(home: &Path, project: &Path, artifact: &str) -> Result<Deployed, OpError> {
    let project = canonical(project);
    if !project.is_dir() {
        return Err(OpError::NotFound(format!("project {}", project.display())));
    }
    let mut found = Vec::new();
    for file in deployment::read_project(&project) {
        for r in file.records {
            if names(
                artifact,
                &r.artifact_name,
                &r.artifact_type,
                &r.artifact_path,
            ) {
                found.push((file.root.clone(), r));
            }
        }
    }
    let (root, record) = match found.len() {
        0 => {
            return Err(OpError::NotFound(format!(
                "deployment of {artifact:?} in {}",
                project.display()
            )));
        }
        1 => found.remove(0),
        _ => {
            let all: Vec<String> = found
                .iter()
                .map(|(root, r)| format!("{root}/{}", r.artifact_path.display()))
                .collect();
            return Err(OpError::Invalid(format!(
                "{artifact:?} names several deployments in {}: {}; give the path instead",
                project.display(),
                all.join(", ")
            )));
        }
    };
    let coll = collection::read(home, &record.from_collection);
    let source = coll
        .find(&record.artifact_name, &record.artifact_type)
        .ok_or_else(|| {
            OpError::NotFound(format!(
                "{} {:?} in collection {:?}",
                record.artifact_type, record.artifact_name, record.from_collection
            ))
        })?;
    Ok(Deployed {
        collection_rel: source.path.clone(),
        collection_dir: coll.dir.clone(),
        project,
        root,
        record,
    })
}

/// The artifact's content, or None when it is not there.
fn read_opt(path: &Path, variant: Variant) -> Result<Option<Content>, OpError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let c = Content::read(path, variant)?;
    Ok(Some(match variant {
        Variant::DeployedCopy => c.deployed_copy(),
        Variant::Legacy => c,
    }))
}

fn tree_of(c: &Content) -> Tree {
    c.files
        .iter()
        .map(|f| (PathBuf::from(&f.path), f.bytes.clone()))
        .collect()
}

/// Paths (relative to the artifact) whose bytes differ between `a` and `b`.
fn changed_paths(a: Option<&Content>, b: Option<&Content>) -> Vec<String> {
    let ta = a.map(tree_of).unwrap_or_default();
    let tb = b.map(tree_of).unwrap_or_default();
    let keys: BTreeSet<&PathBuf> = ta.keys().chain(tb.keys()).collect();
    keys.into_iter()
        .filter(|k| ta.get(*k) != tb.get(*k))
        .map(|k| k.to_string_lossy().into_owned())
        .collect()
}

/// `rel` inside the artifact at display path `artifact` (`.claude/skills/x/SKILL.md`).
fn file_label(artifact: &str, rel: &str) -> String {
    if rel.is_empty() {
        artifact.to_string()
    } else {
        format!("{artifact}/{rel}")
    }
}

/// A tree merge as reported: its conflicts, the files of the result that differ from the
/// local side, and the files merged or taken from one side.
struct MergeReport {
    conflicts: Vec<Conflict>,
    merged: Vec<MergedFile>,
    changed: Vec<String>,
    merged_labels: Vec<String>,
}

/// Reports merge `m` of the artifact at display path `label`; `remote` names the incoming
/// side in conflict kinds and resolutions (`collection`, `target`).
fn report_merge(label: &str, m: &merge::TreeMerge, local: &Tree, remote: &str) -> MergeReport {
    let mut conflicts = Vec::new();
    let mut merged = Vec::new();
    for (path, outcome) in &m.outcomes {
        let p = path.to_string_lossy().into_owned();
        if let FileOutcome::Conflict(c) = outcome {
            conflicts.push(Conflict {
                path: file_label(label, &p),
                kind: match c.kind {
                    ConflictKind::BothModified => "both_modified".into(),
                    ConflictKind::AddAdd => "add_add".into(),
                    ConflictKind::DeletedBy(Side::Local) => "deleted_locally".into(),
                    ConflictKind::DeletedBy(Side::Remote) => format!("deleted_in_{remote}"),
                },
                binary: c.binary,
                resolved: c.resolved.map(|s| match s {
                    Side::Local => "local".into(),
                    Side::Remote => remote.into(),
                }),
            });
        }
        if m.files.get(path) != local.get(path) {
            merged.push(MergedFile {
                path: file_label(label, &p),
                content: m.files.get(path).cloned(),
            });
        }
    }
    let changed = merged.iter().map(|f| f.path.clone()).collect();
    let merged_labels = m
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, FileOutcome::Merged | FileOutcome::Took { .. }))
        .map(|(p, _)| file_label(label, &p.to_string_lossy()))
        .collect();
    MergeReport {
        conflicts,
        merged,
        changed,
        merged_labels,
    }
}

/// The content of merge result `m`, with the file modes of `remote` then `local`.
fn merged_content(
    m: &merge::TreeMerge,
    local: Option<&Content>,
    remote: Option<&Content>,
) -> Content {
    let single_file = local.or(remote).is_some_and(|c| c.single_file);
    let modes: BTreeMap<String, u32> = [remote, local]
        .into_iter()
        .flatten()
        .flat_map(|c| c.files.iter().map(|f| (f.path.clone(), f.mode)))
        .collect();
    Content {
        single_file,
        files: m
            .files
            .iter()
            .map(|(p, bytes)| {
                let path = p.to_string_lossy().into_owned();
                FileContent {
                    mode: modes.get(&path).copied().unwrap_or(DEFAULT_FILE_MODE),
                    path,
                    symlink: None,
                    bytes: bytes.clone(),
                }
            })
            .collect(),
    }
}

/// Writes `content` as the whole artifact `dest` under `root`.
fn write_content(
    writer: &Writer,
    root: &Path,
    dest: &Path,
    content: &Content,
) -> Result<(), OpError> {
    if content.single_file {
        let f = content
            .files
            .first()
            .ok_or_else(|| OpError::Invalid(format!("{}: no content to write", dest.display())))?;
        writer.replace_file(root, dest, &f.bytes)?;
    } else {
        let files: DirFiles = content
            .files
            .iter()
            .map(|f| (PathBuf::from(&f.path), (f.bytes.clone(), f.mode)))
            .collect();
        writer.replace_dir(root, dest, &files)?;
    }
    Ok(())
}

/// The preserve merge of one artifact at display path `label`: base, local = `current`,
/// remote = `target`, overlapping edits marked. The content to write (None = remove it)
/// and its report.
fn preserve_merge(
    label: &str,
    base: &Tree,
    current: Option<&Content>,
    target: &Content,
) -> (Option<Content>, MergeReport) {
    let local = current.map(tree_of).unwrap_or_default();
    let m = merge::merge_trees(base, &local, &tree_of(target), Resolution::Markers);
    let r = report_merge(label, &m, &local, "target");
    let content = (!m.files.is_empty()).then(|| merged_content(&m, current, Some(target)));
    (content, r)
}

/// One artifact a whole-target preserve rollback writes.
struct PreserveWrite {
    loc: Location,
    /// The merged content; None removes the artifact.
    content: Option<Content>,
    /// The collection artifact's name and type, for its lock entry.
    lock_entry: Option<(String, String)>,
}

/// Whether `loc` is a file describing the artifacts (not an artifact).
fn is_bookkeeping(loc: &Location) -> bool {
    matches!(
        loc.path.as_str(),
        "collection.toml" | "collection.lock" | deployment::FILE_NAME
    )
}

/// `c` as history compares it at `loc` (collection copies as a deploy copies them).
fn normalized(loc: &Location, c: Content) -> Content {
    match loc.scope {
        Scope::Collection(_) => c.deployed_copy(),
        Scope::Project(_) => c,
    }
}

/// The managed folder holding `loc` (profile root or collection folder).
fn managed_root(home: &Path, loc: &Location) -> PathBuf {
    match &loc.scope {
        Scope::Collection(n) => collection::collections_dir(home).join(n),
        Scope::Project(p) => p.join(&loc.root),
    }
}

/// How long after an operation ends the drift events of its writes are still attributed
/// to it (the watcher settles changes before it reports them).
pub const CLAIM_GRACE: Duration = Duration::from_secs(60);

/// One artifact an operation is writing: a project's deployment (`project` set) or a
/// collection's artifact (every deployment of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub operation: u64,
    pub project: Option<PathBuf>,
    pub name: String,
    pub artifact_type: String,
    expires: Option<Instant>,
}

impl Claim {
    fn new(project: Option<&Path>, name: &str, artifact_type: &str) -> Claim {
        Claim {
            operation: 0,
            project: project.map(Path::to_path_buf),
            name: normalize_name(name).to_string(),
            artifact_type: artifact_type.to_string(),
            expires: None,
        }
    }

    fn matches(&self, e: &Event) -> bool {
        normalize_name(&e.name) == self.name
            && e.artifact_type == self.artifact_type
            && self
                .project
                .as_ref()
                .is_none_or(|p| p.display().to_string() == e.project)
    }
}

/// Which operations are writing which artifacts, so that the drift events their writes
/// cause carry the operation's id (`DriftEvent.operation`). Shared by the RPC layer (which
/// claims before writing) and the live task (which attributes events).
#[derive(Debug, Default)]
pub struct Claims {
    inner: Mutex<Vec<Claim>>,
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Claim>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that operation `id` is about to write these artifacts.
    pub fn claim(&self, id: u64, claims: &[Claim]) {
        self.lock().extend(claims.iter().map(|c| Claim {
            operation: id,
            ..c.clone()
        }));
    }

    /// Operation `id` ended: its claims last [`CLAIM_GRACE`] more.
    pub fn release(&self, id: u64) {
        let until = Instant::now() + CLAIM_GRACE;
        for c in self.lock().iter_mut().filter(|c| c.operation == id) {
            c.expires = Some(until);
        }
    }

    /// Sets `operation` on the events of claimed artifacts (the newest claim wins), and
    /// forgets expired claims.
    pub fn attribute(&self, events: &mut [Event]) {
        let mut claims = self.lock();
        let now = Instant::now();
        claims.retain(|c| c.expires.is_none_or(|t| t > now));
        for e in events.iter_mut().filter(|e| e.operation.is_empty()) {
            if let Some(c) = claims.iter().rev().find(|c| c.matches(e)) {
                e.operation = c.operation.to_string();
            }
        }
    }
}

/// What a rollback goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTo {
    /// A version id (`v12`), a tag, or a snapshot id (`s7`).
    Spec(String),
    /// A time (ms since the epoch): the version current then, or the newest snapshot
    /// taken at or before it.
    At(i64),
}

/// How a rollback treats the current content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollbackMode {
    /// Exact restore of the target.
    #[default]
    Replace,
    /// Three-way merge keeping the changes made since the last recorded version (see
    /// [`Operations::rollback`]).
    Preserve,
}

/// Runs and logs operations.
pub struct Operations<'a> {
    engine: &'a Engine,
    writer: Writer,
    claims: Option<&'a Claims>,
}

impl<'a> Operations<'a> {
    pub fn new(engine: &'a Engine, writer: Writer) -> Operations<'a> {
        Operations {
            engine,
            writer,
            claims: None,
        }
    }

    /// The same, announcing what each operation writes to `claims`.
    pub fn with_claims(mut self, claims: &'a Claims) -> Operations<'a> {
        self.claims = Some(claims);
        self
    }

    fn history(&self) -> &History {
        self.engine.history()
    }

    fn home(&self) -> &Path {
        self.history().skillmeat_home()
    }

    /// Runs `body` as a logged operation: the record is stored whatever the outcome.
    /// `claims` are the artifacts it writes (for event attribution).
    fn logged(
        &self,
        mut rec: OperationRecord,
        claims: &[Claim],
        body: impl FnOnce(&mut OperationRecord) -> Result<(), OpError>,
    ) -> Result<OperationRecord, OpError> {
        rec.id = self.engine.store().next_operation_id()?;
        if let Some(c) = self.claims {
            c.claim(rec.id, claims);
        }
        let result = body(&mut rec);
        if let Some(c) = self.claims {
            c.release(rec.id);
        }
        rec.success = result.is_ok();
        rec.error = result.as_ref().err().map(ToString::to_string);
        self.engine.store().put_operation(&rec)?;
        result.map(|()| rec)
    }

    /// The newest snapshot of `target` taken at or before `ms`.
    fn snapshot_at(&self, target: &SnapshotTarget, ms: i64) -> Result<SnapshotId, OpError> {
        let mut cursor = None;
        loop {
            let (page, next) = self.history().snapshots(Some(target), 100, cursor)?;
            if let Some(s) = page.iter().find(|s| s.time_ms <= ms) {
                return Ok(s.id);
            }
            match next {
                Some(n) => cursor = Some(n),
                None => {
                    return Err(OpError::NotFound(format!(
                        "a snapshot of {target} at or before {}",
                        time::format(ms)
                    )));
                }
            }
        }
    }

    fn safety_snapshot(
        &self,
        rec: &mut OperationRecord,
        target: SnapshotTarget,
        origin: Origin,
        what: &str,
    ) -> Result<SnapshotId, OpError> {
        let msg = format!("before {what} (operation {})", rec.id);
        let id = self.history().snapshot(&target, origin, Some(&msg))?;
        rec.safety_snapshots.push(id);
        Ok(id)
    }

    /// Safety snapshot of `d`'s project, recorded as covering the deployed copy and its
    /// deployment file (what writing one deployment touches).
    fn snapshot_deployment(
        &self,
        rec: &mut OperationRecord,
        d: &Deployed,
        origin: Origin,
        what: &str,
    ) -> Result<SnapshotId, OpError> {
        let snap = self.safety_snapshot(
            rec,
            SnapshotTarget::Project(d.project.clone()),
            origin,
            what,
        )?;
        for location in [d.project_loc(), d.deployment_file_loc()] {
            rec.touched.push(Touched {
                location,
                snapshot: snap,
            });
        }
        Ok(snap)
    }

    fn update_deployment(&self, d: &Deployed, content_hash: String) -> Result<(), OpError> {
        deployment_write::update_record(
            &self.writer,
            &d.project,
            &d.root,
            d.key(),
            &RecordUpdate {
                content_hash,
                deployed_at: timestamp::isoformat(timestamp::now_local()),
            },
        )?;
        Ok(())
    }

    fn update_lock(
        &self,
        collection_dir: &Path,
        name: &str,
        artifact_type: &str,
        copy: &Path,
    ) -> Result<(), OpError> {
        lock_write::update_entry(
            &self.writer,
            collection_dir,
            name,
            artifact_type,
            &LockUpdate {
                content_hash: hash::content_hash(copy, Variant::Legacy)?,
                fetched: timestamp::isoformat(timestamp::now_utc()),
            },
        )?;
        Ok(())
    }

    /// Collection → project: replaces the project copy with the collection's (as a deploy
    /// copies it) and records the new copy's hash in the deployment.
    ///
    /// # Errors
    /// See [`OpError`]; files are as they were unless the error says otherwise.
    pub fn sync_pull(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let incoming = read_opt(&d.collection_path(), Variant::DeployedCopy)?.ok_or_else(|| {
            OpError::NotFound(format!("collection copy {}", d.collection_path().display()))
        })?;
        let current = read_opt(&d.project_path(), Variant::Legacy)?;
        let label = d.project_loc().display_path();
        let changed: Vec<String> = changed_paths(current.as_ref(), Some(&incoming))
            .iter()
            .map(|p| file_label(&label, p))
            .collect();
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                ..OpReport::default()
            });
        }
        let rec = OperationRecord::new("sync_pull", vec![d.project_loc().to_string()]);
        let rec = self.logged(rec, &[d.claim()], |rec| {
            self.snapshot_deployment(rec, &d, Origin::Sync, &format!("sync pull {label}"))?;
            write_content(&self.writer, &d.managed(), &d.project_path(), &incoming)?;
            rec.files_restored = changed.clone();
            let h = hash::content_hash(&d.project_path(), Variant::Legacy)?;
            self.update_deployment(&d, h)
        })?;
        Ok(OpReport {
            record: Some(rec),
            changed,
            ..OpReport::default()
        })
    }

    /// Project → collection: replaces the collection copy with the project's, then sets the
    /// lock entry and the deployment record so both sides agree.
    ///
    /// # Errors
    /// See [`OpError`].
    pub fn sync_push(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let incoming = read_opt(&d.project_path(), Variant::Legacy)?
            .ok_or_else(|| {
                OpError::NotFound(format!("project copy {}", d.project_path().display()))
            })?
            .deployed_copy();
        let current = read_opt(&d.collection_path(), Variant::DeployedCopy)?;
        let label = d.collection_loc().display_path();
        let changed: Vec<String> = changed_paths(current.as_ref(), Some(&incoming))
            .iter()
            .map(|p| file_label(&label, p))
            .collect();
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                ..OpReport::default()
            });
        }
        let coll = d.record.from_collection.clone();
        let rec = OperationRecord::new(
            "sync_push",
            vec![d.collection_loc().to_string(), d.project_loc().to_string()],
        );
        let rec = self.logged(
            rec,
            &[Claim::new(
                None,
                &d.record.artifact_name,
                &d.record.artifact_type,
            )],
            |rec| {
                let what = format!("sync push {}", d.project_loc().display_path());
                let cs = self.safety_snapshot(
                    rec,
                    SnapshotTarget::Collection(coll.clone()),
                    Origin::Sync,
                    &what,
                )?;
                let ps = self.safety_snapshot(
                    rec,
                    SnapshotTarget::Project(d.project.clone()),
                    Origin::Sync,
                    &what,
                )?;
                rec.touched.push(Touched {
                    location: d.collection_loc(),
                    snapshot: cs,
                });
                rec.touched.push(Touched {
                    location: Location::collection(&coll, lock_write::FILE_NAME),
                    snapshot: cs,
                });
                rec.touched.push(Touched {
                    location: d.deployment_file_loc(),
                    snapshot: ps,
                });
                write_content(
                    &self.writer,
                    &d.collection_dir,
                    &d.collection_path(),
                    &incoming,
                )?;
                rec.files_restored = changed.clone();
                self.update_lock(
                    &d.collection_dir,
                    &d.record.artifact_name,
                    &d.record.artifact_type,
                    &d.collection_path(),
                )?;
                let h = hash::content_hash(&d.project_path(), Variant::Legacy)?;
                self.update_deployment(&d, h)
            },
        )?;
        Ok(OpReport {
            record: Some(rec),
            changed,
            ..OpReport::default()
        })
    }

    /// The deployment's base version: a version whose hash is the record's `content_hash`,
    /// preferably at the project copy, then at the collection copy, then anywhere.
    fn base_of(&self, d: &Deployed) -> Result<Option<Version>, OpError> {
        let h = self.history();
        for loc in [Some(d.project_loc()), Some(d.collection_loc()), None] {
            if let Some(v) = h
                .find_by_hash(loc.as_ref(), &d.record.content_hash)?
                .into_iter()
                .next()
            {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Three-way merge into the project copy: base = the deployment's recorded content
    /// (from history), local = the project copy, remote = the collection copy.
    ///
    /// # Errors
    /// [`OpError::Precondition`] when history has no version with the deployment's hash;
    /// otherwise see [`OpError`].
    pub fn merge(
        &self,
        project: &Path,
        artifact: &str,
        dry_run: bool,
        resolution: Resolution,
    ) -> Result<OpReport, OpError> {
        let d = find_deployment(self.home(), project, artifact)?;
        let base_v = self.base_of(&d)?.ok_or_else(|| {
            OpError::Precondition(format!(
                "no known base for {}: history has no version with the deployment's hash {}; \
                 compare the two copies with `smctl diff collection project --artifact {artifact} --project {}` \
                 and use `smctl sync pull` or `smctl sync push`",
                d.project_loc(),
                d.record.content_hash,
                d.project.display()
            ))
        })?;
        let base = tree_of(&self.history().content_of(&base_v)?);
        let local_c = read_opt(&d.project_path(), Variant::Legacy)?;
        let remote_c = read_opt(&d.collection_path(), Variant::DeployedCopy)?;
        let local = local_c.as_ref().map(tree_of).unwrap_or_default();
        let remote = remote_c.as_ref().map(tree_of).unwrap_or_default();
        let m = merge::merge_trees(&base, &local, &remote, resolution);
        let label = d.project_loc().display_path();
        let MergeReport {
            conflicts,
            merged: merged_files,
            changed,
            merged_labels,
        } = report_merge(&label, &m, &local, "collection");
        let base_name = Some(base_v.id.to_string());
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                conflicts,
                merged: merged_files,
                base: base_name,
                ..OpReport::default()
            });
        }
        let result = merged_content(&m, local_c.as_ref(), remote_c.as_ref());
        let unresolved = m.has_unresolved();
        let rec = OperationRecord::new("merge", vec![d.project_loc().to_string()]);
        let rec = self.logged(rec, &[d.claim()], |rec| {
            self.snapshot_deployment(rec, &d, Origin::Merge, &format!("merge {label}"))?;
            rec.files_merged = merged_labels.clone();
            rec.files_conflicted = conflicts.iter().map(|c| c.path.clone()).collect();
            if !changed.is_empty() {
                write_content(&self.writer, &d.managed(), &d.project_path(), &result)?;
            }
            if !unresolved && let Some(remote) = &remote_c {
                self.update_deployment(&d, remote.hash())?;
            }
            Ok(())
        })?;
        Ok(OpReport {
            record: Some(rec),
            changed,
            conflicts,
            base: base_name,
            ..OpReport::default()
        })
    }

    /// Writes back what `loc` was in snapshot `snap` (removing it if it was absent).
    fn restore(&self, loc: &Location, snap: SnapshotId) -> Result<Vec<String>, OpError> {
        let h = self.history();
        let record = h.snapshot_record(snap)?;
        let version = h.members(&record)?.into_iter().find(|v| &v.location == loc);
        let root = managed_root(self.home(), loc);
        let dest = loc.on_disk(self.home());
        let before = read_opt(&dest, loc.variant())?;
        let label = loc.display_path();
        match version {
            Some(v) => {
                let content = h.content_of(&v)?;
                let changed = changed_paths(before.as_ref(), Some(&content));
                if !changed.is_empty() || before.is_none() {
                    write_content(&self.writer, &root, &dest, &content)?;
                }
                Ok(changed.iter().map(|p| file_label(&label, p)).collect())
            }
            None => {
                self.writer.remove(&root, &dest)?;
                Ok(changed_paths(before.as_ref(), None)
                    .iter()
                    .map(|p| file_label(&label, p))
                    .collect())
            }
        }
    }

    /// Restores what operation `id` (default: the last one that changed something and was
    /// not undone yet) touched, from its safety snapshots. Itself an operation, with its
    /// own safety snapshots, so it can be undone too.
    ///
    /// # Errors
    /// No such operation, nothing to undo; otherwise see [`OpError`].
    pub fn undo(&self, id: Option<u64>, dry_run: bool) -> Result<OpReport, OpError> {
        let store = self.engine.store();
        let all = store.all_operations()?;
        let undone: BTreeSet<u64> = all
            .iter()
            .filter(|o| o.success)
            .filter_map(|o| o.undoes)
            .collect();
        let target = match id {
            Some(id) => store
                .operation(id)?
                .ok_or_else(|| OpError::NotFound(format!("operation {id}")))?,
            None => all
                .iter()
                .rev()
                .find(|o| o.operation != "undo" && !o.touched.is_empty() && !undone.contains(&o.id))
                .cloned()
                .ok_or_else(|| OpError::Precondition("no operation to undo".into()))?,
        };
        if target.touched.is_empty() {
            return Err(OpError::Precondition(format!(
                "operation {} changed nothing; nothing to undo",
                target.id
            )));
        }
        let mut targets: Vec<SnapshotTarget> = Vec::new();
        for t in &target.touched {
            let st = self.history().snapshot_record(t.snapshot)?.target;
            if !targets.contains(&st) {
                targets.push(st);
            }
        }
        if dry_run {
            let mut changed = Vec::new();
            for t in &target.touched {
                let h = self.history();
                let v = h
                    .members(&h.snapshot_record(t.snapshot)?)?
                    .into_iter()
                    .find(|v| v.location == t.location);
                let now = read_opt(&t.location.on_disk(self.home()), t.location.variant())?;
                let then = v.map(|v| h.content_of(&v)).transpose()?;
                let label = t.location.display_path();
                changed.extend(
                    changed_paths(now.as_ref(), then.as_ref())
                        .iter()
                        .map(|p| file_label(&label, p)),
                );
            }
            return Ok(OpReport {
                dry_run: true,
                changed,
                ..OpReport::default()
            });
        }
        let mut rec = OperationRecord::new("undo", target.targets.clone());
        rec.undoes = Some(target.id);
        let rec = self.logged(rec, &[], |rec| {
            let mut snaps = BTreeMap::new();
            for st in &targets {
                let s = self.safety_snapshot(
                    rec,
                    st.clone(),
                    Origin::Rollback,
                    &format!("undo of operation {}", target.id),
                )?;
                snaps.insert(st.clone(), s);
            }
            for t in &target.touched {
                let st = self.history().snapshot_record(t.snapshot)?.target;
                rec.touched.push(Touched {
                    location: t.location.clone(),
                    snapshot: snaps[&st],
                });
            }
            for t in &target.touched {
                let files = self.restore(&t.location, t.snapshot)?;
                rec.files_restored.extend(files);
            }
            Ok(())
        })?;
        Ok(OpReport {
            changed: rec.files_restored.clone(),
            record: Some(rec),
            ..OpReport::default()
        })
    }

    /// Rolls one artifact (a project's deployment, or a collection's artifact) back to a
    /// version (`v12`, a tag), its member in a snapshot (`s7`), or its version current at a
    /// time. A collection rollback also sets the lock entry and appends to SkillMeat's
    /// rollback audit; a project rollback leaves the deployment record alone (drift then
    /// says how the copy relates to it).
    ///
    /// In [`RollbackMode::Preserve`] the result is a three-way merge: base = the newest
    /// version in history whose content differs from the current content (the last state
    /// the daemon recorded before the current edits), local = the current content, remote
    /// = the target. Edits made since that version are kept, everything else returns to the
    /// target, overlapping edits get SkillMeat's markers (binary conflicts keep the current
    /// bytes) and are reported.
    ///
    /// # Errors
    /// Unknown artifact, version or snapshot, nothing that old, no base for preserve;
    /// otherwise see [`OpError`].
    pub fn rollback(
        &self,
        artifact: &str,
        project: Option<&Path>,
        collection_name: Option<&str>,
        to: &RollbackTo,
        mode: RollbackMode,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let home = self.home().to_path_buf();
        let (loc, coll_entry, claim) = match (project, collection_name) {
            (Some(p), None) => {
                let d = find_deployment(&home, p, artifact)?;
                (d.project_loc(), None, d.claim())
            }
            (None, Some(c)) => {
                let coll = collection::read(&home, c);
                if !coll.dir.join("collection.toml").is_file() {
                    return Err(OpError::NotFound(format!("collection {c:?}")));
                }
                let a = coll
                    .artifacts
                    .iter()
                    .find(|a| names(artifact, &a.name, &a.artifact_type, &a.path))
                    .ok_or_else(|| {
                        OpError::NotFound(format!("artifact {artifact:?} in collection {c:?}"))
                    })?;
                (
                    Location::collection(c, &a.path.to_string_lossy()),
                    Some((coll.dir.clone(), a.name.clone(), a.artifact_type.clone())),
                    Claim::new(None, &a.name, &a.artifact_type),
                )
            }
            _ => {
                return Err(OpError::Invalid(
                    "give either a project or a collection".into(),
                ));
            }
        };
        let h = self.history();
        let version = match to {
            RollbackTo::Spec(to) => match to.parse::<SnapshotId>() {
                Ok(sid) => {
                    let snap = h.snapshot_record(sid)?;
                    h.members(&snap)?
                        .into_iter()
                        .find(|v| v.location == loc)
                        .ok_or_else(|| OpError::NotFound(format!("{loc} in snapshot {sid}")))?
                }
                Err(()) => h.resolve_version(to)?,
            },
            RollbackTo::At(ms) => h
                .versions_of(&loc)?
                .into_iter()
                .find(|v| v.time_ms <= *ms)
                .ok_or_else(|| {
                    OpError::NotFound(format!(
                        "a version of {loc} at or before {}",
                        time::format(*ms)
                    ))
                })?,
        };
        let to_label = match to {
            RollbackTo::Spec(s) => s.clone(),
            RollbackTo::At(_) => version.id.to_string(),
        };
        let collection_side = matches!(loc.scope, Scope::Collection(_));
        let norm = |c: Content| {
            if collection_side {
                c.deployed_copy()
            } else {
                c
            }
        };
        let target_content = norm(h.content_of(&version)?);
        let dest = loc.on_disk(&home);
        let root = managed_root(&home, &loc);
        let label = loc.display_path();
        let current = read_opt(&dest, loc.variant())?;
        let mut report = OpReport::default();
        let mut merged_labels = Vec::new();
        let content = match mode {
            RollbackMode::Replace => {
                report.changed = changed_paths(current.as_ref(), Some(&target_content))
                    .iter()
                    .map(|p| file_label(&label, p))
                    .collect();
                Some(target_content)
            }
            RollbackMode::Preserve => {
                let local = current.as_ref().map(tree_of).unwrap_or_default();
                let mut base = None;
                for v in h.versions_of(&loc)? {
                    let t = tree_of(&norm(h.content_of(&v)?));
                    if current.is_none() || t != local {
                        base = Some((v.id, t));
                        break;
                    }
                }
                let (base_id, base) = base.ok_or_else(|| {
                    OpError::Precondition(format!(
                        "no recorded version of {loc} before its current content, so there \
                         are no local changes to tell apart; use --mode replace"
                    ))
                })?;
                let (c, r) = preserve_merge(&label, &base, current.as_ref(), &target_content);
                report.changed = r.changed;
                report.conflicts = r.conflicts;
                report.merged = r.merged;
                report.base = Some(base_id.to_string());
                merged_labels = r.merged_labels;
                c
            }
        };
        if dry_run {
            report.dry_run = true;
            return Ok(report);
        }
        report.merged.clear();
        let target = match &loc.scope {
            Scope::Collection(n) => SnapshotTarget::Collection(n.clone()),
            Scope::Project(p) => SnapshotTarget::Project(p.clone()),
        };
        let changed = report.changed.clone();
        let conflicted: Vec<String> = report.conflicts.iter().map(|c| c.path.clone()).collect();
        let rec = OperationRecord::new("rollback", vec![loc.to_string()]);
        let rec = self.logged(rec, std::slice::from_ref(&claim), |rec| {
            let snap = self.safety_snapshot(
                rec,
                target,
                Origin::Rollback,
                &format!("rollback of {label} to {to_label}"),
            )?;
            rec.touched.push(Touched {
                location: loc.clone(),
                snapshot: snap,
            });
            if let Scope::Collection(n) = &loc.scope {
                rec.touched.push(Touched {
                    location: Location::collection(n, lock_write::FILE_NAME),
                    snapshot: snap,
                });
            }
            match &content {
                Some(c) => write_content(&self.writer, &root, &dest, c)?,
                None => {
                    self.writer.remove(&root, &dest)?;
                }
            }
            rec.files_restored = changed.clone();
            rec.files_merged = merged_labels.clone();
            rec.files_conflicted = conflicted.clone();
            if let (Some((dir, name, ty)), Scope::Collection(n)) = (&coll_entry, &loc.scope) {
                if content.is_some() {
                    self.update_lock(dir, name, ty, &dest)?;
                }
                let preserve = mode == RollbackMode::Preserve;
                rollback_audit::append(
                    &self.writer,
                    &home,
                    &RollbackRecord {
                        collection_name: n.clone(),
                        source_snapshot_id: snap.to_string(),
                        target_snapshot_id: to_label.clone(),
                        operation_type: if preserve { "intelligent" } else { "selective" }.into(),
                        files_restored: changed.clone(),
                        files_merged: merged_labels.clone(),
                        conflicts_pending: conflicted.clone(),
                        preserve_changes_enabled: preserve,
                        success: true,
                        selective_paths: Some(vec![loc.path.clone()]),
                        ..RollbackRecord::default()
                    },
                    timestamp::now_local(),
                )?;
            }
            Ok(())
        })?;
        report.record = Some(rec);
        Ok(report)
    }

    /// Replaces a whole collection or project with snapshot `to` (SkillMeat's replace
    /// mode): every artifact and bookkeeping file the snapshot holds is written back, and
    /// what it covers now but did not then is removed. A collection rollback appends to
    /// SkillMeat's rollback audit. In [`RollbackMode::Preserve`], each artifact is merged
    /// instead and local changes are kept (see `rollback_all_preserve`).
    ///
    /// # Errors
    /// `to` is not a snapshot of `target`; otherwise see [`OpError`].
    pub fn rollback_all(
        &self,
        target: &SnapshotTarget,
        to: &RollbackTo,
        mode: RollbackMode,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let h = self.history();
        let sid: SnapshotId = match to {
            RollbackTo::Spec(to) => to.parse().map_err(|()| {
                OpError::Invalid(format!(
                    "{to:?}: rolling back a whole {target} needs a snapshot id (s<N>); give an \
                     artifact to roll back to a version or tag"
                ))
            })?,
            RollbackTo::At(ms) => self.snapshot_at(target, *ms)?,
        };
        let snap = h.snapshot_record(sid)?;
        if &snap.target != target {
            return Err(OpError::Invalid(format!(
                "snapshot {sid} is of {}, not of {target}",
                snap.target
            )));
        }
        if mode == RollbackMode::Preserve {
            return self.rollback_all_preserve(target, sid, &snap, dry_run);
        }
        let home = self.home().to_path_buf();
        let then = h.members(&snap)?;
        let mut locs: BTreeSet<Location> = then.iter().map(|v| v.location.clone()).collect();
        locs.extend(h.members_on_disk(target)?.into_iter().map(|(l, _)| l));
        // Artifacts first, the files that describe them last.
        let mut order: Vec<Location> = locs
            .iter()
            .filter(|l| !is_bookkeeping(l))
            .cloned()
            .collect();
        order.extend(locs.iter().filter(|l| is_bookkeeping(l)).cloned());
        let mut changed = Vec::new();
        for loc in &order {
            let now = read_opt(&loc.on_disk(&home), loc.variant())?;
            let old = then
                .iter()
                .find(|v| &v.location == loc)
                .map(|v| h.content_of(v))
                .transpose()?;
            let label = loc.display_path();
            changed.extend(
                changed_paths(now.as_ref(), old.as_ref())
                    .iter()
                    .map(|p| file_label(&label, p)),
            );
        }
        if dry_run {
            return Ok(OpReport {
                dry_run: true,
                changed,
                ..OpReport::default()
            });
        }
        let rec = OperationRecord::new("rollback", vec![target.to_string()]);
        let rec = self.logged(rec, &[], |rec| {
            let safety = self.safety_snapshot(
                rec,
                target.clone(),
                Origin::Rollback,
                &format!("rollback of {target} to {sid}"),
            )?;
            for loc in &order {
                rec.touched.push(Touched {
                    location: loc.clone(),
                    snapshot: safety,
                });
            }
            for loc in &order {
                let files = self.restore(loc, sid)?;
                rec.files_restored.extend(files);
            }
            if let SnapshotTarget::Collection(n) = target {
                rollback_audit::append(
                    &self.writer,
                    &home,
                    &RollbackRecord {
                        collection_name: n.clone(),
                        source_snapshot_id: safety.to_string(),
                        target_snapshot_id: sid.to_string(),
                        operation_type: "simple".into(),
                        files_restored: rec.files_restored.clone(),
                        success: true,
                        ..RollbackRecord::default()
                    },
                    timestamp::now_local(),
                )?;
            }
            Ok(())
        })?;
        Ok(OpReport {
            changed: rec.files_restored.clone(),
            record: Some(rec),
            ..OpReport::default()
        })
    }

    /// [`Operations::rollback_all`] in [`RollbackMode::Preserve`]: every artifact snapshot
    /// `sid` holds gets the single-artifact preserve merge, with one base for the whole
    /// target: its newest snapshot (the last state the daemon recorded of it). An artifact
    /// unchanged since then returns to the snapshot, edits made since are kept, overlapping
    /// ones marked. Artifacts the snapshot does not hold are kept; those it holds but that
    /// are gone now are restored. `collection.toml` and `.skillmeat-deployed.toml` are left
    /// as they are; in a collection, the lock entries of the artifacts written are updated
    /// and SkillMeat's rollback audit gets an `intelligent` entry.
    fn rollback_all_preserve(
        &self,
        target: &SnapshotTarget,
        sid: SnapshotId,
        snap: &Snapshot,
        dry_run: bool,
    ) -> Result<OpReport, OpError> {
        let h = self.history();
        let home = self.home().to_path_buf();
        let (newest, _) = h.snapshots(Some(target), 1, None)?;
        let last = match newest.first() {
            Some(s) => h.members(s)?,
            None => Vec::new(),
        };
        let coll = match target {
            SnapshotTarget::Collection(n) => Some(collection::read(&home, n)),
            SnapshotTarget::Project(_) => None,
        };
        let mut report = OpReport::default();
        let mut merged_labels = Vec::new();
        let mut writes: Vec<PreserveWrite> = Vec::new();
        for v in h.members(snap)? {
            let loc = v.location.clone();
            if is_bookkeeping(&loc) {
                continue;
            }
            let label = loc.display_path();
            let target_content = normalized(&loc, h.content_of(&v)?);
            let current = read_opt(&loc.on_disk(&home), loc.variant())?;
            let (content, r) = match &current {
                None => {
                    let changed = changed_paths(None, Some(&target_content))
                        .iter()
                        .map(|p| file_label(&label, p))
                        .collect();
                    let r = MergeReport {
                        conflicts: Vec::new(),
                        merged: Vec::new(),
                        changed,
                        merged_labels: Vec::new(),
                    };
                    (Some(target_content), r)
                }
                Some(cur) => {
                    let base = match last.iter().find(|l| l.location == loc) {
                        Some(l) => tree_of(&normalized(&loc, h.content_of(l)?)),
                        None => Tree::default(),
                    };
                    preserve_merge(&label, &base, Some(cur), &target_content)
                }
            };
            report.conflicts.extend(r.conflicts);
            report.merged.extend(r.merged);
            merged_labels.extend(r.merged_labels);
            if r.changed.is_empty() {
                continue;
            }
            report.changed.extend(r.changed);
            let entry = coll.as_ref().and_then(|c| {
                c.artifacts
                    .iter()
                    .find(|a| a.path == Path::new(&loc.path))
                    .map(|a| (a.name.clone(), a.artifact_type.clone()))
            });
            writes.push(PreserveWrite {
                loc,
                content,
                lock_entry: entry,
            });
        }
        report.base = newest.first().map(|s| s.id.to_string());
        if dry_run {
            report.dry_run = true;
            return Ok(report);
        }
        report.merged.clear();
        let changed = report.changed.clone();
        let conflicted: Vec<String> = report.conflicts.iter().map(|c| c.path.clone()).collect();
        let claims: Vec<Claim> = writes
            .iter()
            .filter_map(|w| w.lock_entry.as_ref())
            .map(|(name, ty)| Claim::new(None, name, ty))
            .collect();
        let rec = OperationRecord::new("rollback", vec![target.to_string()]);
        let rec = self.logged(rec, &claims, |rec| {
            let safety = self.safety_snapshot(
                rec,
                target.clone(),
                Origin::Rollback,
                &format!("rollback of {target} to {sid} keeping local changes"),
            )?;
            for w in &writes {
                rec.touched.push(Touched {
                    location: w.loc.clone(),
                    snapshot: safety,
                });
            }
            if let SnapshotTarget::Collection(n) = target {
                rec.touched.push(Touched {
                    location: Location::collection(n, lock_write::FILE_NAME),
                    snapshot: safety,
                });
            }
            for w in &writes {
                let root = managed_root(&home, &w.loc);
                let dest = w.loc.on_disk(&home);
                match &w.content {
                    Some(c) => write_content(&self.writer, &root, &dest, c)?,
                    None => {
                        self.writer.remove(&root, &dest)?;
                    }
                }
                if let (Some(c), Some((name, ty)), Some(_)) = (&coll, &w.lock_entry, &w.content) {
                    self.update_lock(&c.dir, name, ty, &dest)?;
                }
            }
            rec.files_restored = changed.clone();
            rec.files_merged = merged_labels.clone();
            rec.files_conflicted = conflicted.clone();
            if let SnapshotTarget::Collection(n) = target {
                rollback_audit::append(
                    &self.writer,
                    &home,
                    &RollbackRecord {
                        collection_name: n.clone(),
                        source_snapshot_id: safety.to_string(),
                        target_snapshot_id: sid.to_string(),
                        operation_type: "intelligent".into(),
                        files_restored: changed.clone(),
                        files_merged: merged_labels.clone(),
                        conflicts_pending: conflicted.clone(),
                        preserve_changes_enabled: true,
                        success: true,
                        ..RollbackRecord::default()
                    },
                    timestamp::now_local(),
                )?;
            }
            Ok(())
        })?;
        report.record = Some(rec);
        Ok(report)
    }

    /// The operations log, oldest first, optionally only those at or after `since_ms`.
    ///
    /// # Errors
    /// The store failed.
    pub fn audit(&self, since_ms: Option<i64>) -> Result<Vec<OperationRecord>, OpError> {
        Ok(self
            .engine
            .store()
            .all_operations()?
            .into_iter()
            .filter(|o| since_ms.is_none_or(|s| o.time_ms >= s))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_match_by_name_path_or_type() {
        let p = Path::new("skills/canvas");
        assert!(names("canvas", "canvas", "skill", p));
        assert!(names("skills/canvas/", "canvas", "skill", p));
        assert!(names("skill/canvas", "canvas", "skill", p));
        assert!(names(
            "review",
            "review.md",
            "command",
            Path::new("commands/review.md")
        ));
        assert!(!names("canvas2", "canvas", "skill", p));
    }

    #[test]
    fn claimed_artifacts_name_the_operation_in_their_events() {
        let claims = Claims::default();
        let event = |project: &str, name: &str| {
            let mut e = Event::polling("", "");
            e.project = project.into();
            e.name = name.into();
            e.artifact_type = "skill".into();
            e.operation.clear();
            e
        };
        claims.claim(3, &[Claim::new(Some(Path::new("/p")), "canvas", "skill")]);
        claims.claim(4, &[Claim::new(None, "review.md", "skill")]);
        claims.release(3);
        let mut events = vec![
            event("/p", "canvas"),
            event("/q", "canvas"),
            event("/q", "review"),
            event("/p", "other"),
        ];
        claims.attribute(&mut events);
        let ops: Vec<&str> = events.iter().map(|e| e.operation.as_str()).collect();
        assert_eq!(ops, ["3", "", "4", ""]);
    }

    #[test]
    fn changed_paths_lists_differences_both_ways() {
        let f = |p: &str, b: &[u8]| FileContent {
            path: p.into(),
            mode: 0o644,
            symlink: None,
            bytes: b.to_vec(),
        };
        let a = Content {
            single_file: false,
            files: vec![f("a", b"1"), f("b", b"2")],
        };
        let b = Content {
            single_file: false,
            files: vec![f("a", b"1"), f("c", b"3")],
        };
        assert_eq!(changed_paths(Some(&a), Some(&b)), vec!["b", "c"]);
        assert_eq!(changed_paths(None, Some(&a)), vec!["a", "b"]);
        assert!(changed_paths(Some(&a), Some(&a)).is_empty());
    }
}
