//! The engine: SkillMeat's world as the daemon sees it, and the answers computed from it.
//!
//! It ties the readers ([`crate::formats`]), the hash index, the project set and the pure
//! drift rules together, and holds the store, history and the receiver of the configuration
//! in force ([`crate::config::Shared`]). Every method is synchronous and may touch the disk;
//! the live worker calls them on the blocking pool for each batch, the RPC layer and the
//! operations for each request. The engine holds no lock across I/O: the store and the
//! index are safe to share, and each call reads SkillMeat's files afresh.
//!
//! A deployment whose record or collection cannot be read is `error` with the reason, never
//! `removed` or `added` (`unreadable`, a private submodule).

mod memo;
mod totals;
mod unreadable;

pub use memo::SideMemo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use compact_str::CompactString;
use hashbrown::HashMap;

use crate::config::{self, Config};
use crate::drift::{self, Side};
use crate::formats::Problem;
use crate::formats::collection::{self, Collection, Lookup};
use crate::formats::deployment;
use crate::hash::Variant;
use crate::history::{History, HistoryError};
use crate::index::HashIndex;
use crate::model::{ArtifactReport, ContentHash, Location};
use crate::paths::{Paths, canonical};
use crate::projects::{self, KnownProject};
use crate::store::{Store, StoreError};

/// Something a caller asked for that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{}: not a folder", path.display())]
    NotAFolder { path: PathBuf },
    #[error("{}: not added as a project: {refusal} (--force adds it anyway)", path.display())]
    NotAProject {
        path: PathBuf,
        refusal: projects::Refusal,
    },
    #[error("{}: not a known project (see `smctl project list`)", path.display())]
    UnknownProject { path: PathBuf },
    #[error("{}: the project folder no longer exists", path.display())]
    MissingProject { path: PathBuf },
    #[error("{}: was not added by hand; use `smctl project ignore` to hide it", path.display())]
    NotManual { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Drift of some projects, plus the problems met computing it.
#[derive(Debug, Clone, Default)]
pub struct DriftReport {
    pub artifacts: Vec<ArtifactReport>,
    pub problems: Vec<Problem>,
    /// Copies that still hash to their deployment's record: candidates for the deployment's
    /// base version, recorded later by the live worker (off the answer's path; see
    /// [`crate::history::Capture::Base`]).
    pub bases: Vec<Base>,
}

/// A copy at `path` whose content is a deployment's recorded base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub location: Location,
    pub path: PathBuf,
    pub content_hash: String,
}

/// Daemon-wide counters for `smctl status`.
#[derive(Debug, Clone)]
pub struct Totals {
    pub collections: u32,
    /// Artifacts listed in the collections' manifests.
    pub collection_artifacts: u32,
    pub files_indexed: u64,
    pub files_read: u64,
    pub uptime_seconds: u64,
    pub problems: Vec<Problem>,
}

/// The daemon's core.
#[derive(Debug)]
pub struct Engine {
    paths: Paths,
    store: Store,
    index: HashIndex,
    history: History,
    config: config::Shared,
    started: Instant,
    collection_counts: totals::CollectionCounts,
}

impl Engine {
    /// An engine over `paths`, with its store and history already open, reading the
    /// configuration in force from `config`.
    pub fn new(paths: Paths, store: Store, history: History, config: config::Shared) -> Engine {
        Engine {
            index: HashIndex::new(store.clone()),
            history,
            paths,
            store,
            config,
            started: Instant::now(),
            collection_counts: totals::CollectionCounts::default(),
        }
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.borrow().config)
    }

    /// A receiver of the configuration in force, to follow its changes.
    pub fn config_watch(&self) -> config::Shared {
        self.config.clone()
    }

    /// Every known project, ignored ones included, and discovery problems.
    ///
    /// # Errors
    /// The store could not be read.
    pub fn known_projects(&self) -> Result<(Vec<KnownProject>, Vec<Problem>), EngineError> {
        Ok(projects::known(
            &self.store,
            &self.paths.skillmeat_home,
            &self.config(),
        )?)
    }

    /// Drift of every deployment of `project`, in sync ones included, plus `added` entries
    /// for collection artifacts it does not have. Sides already in `memo` are not hashed
    /// again; new ones are added to it. `prior` is the project's previous reports: the
    /// deployments last seen in a deployment file that cannot be read now stay listed, as
    /// `error`.
    pub fn project_drift<'p>(
        &self,
        project: &Path,
        prior: impl IntoIterator<Item = &'p ArtifactReport>,
        collections: &mut Collections,
        memo: &mut SideMemo,
    ) -> DriftReport {
        let mut report = DriftReport::default();
        let files = deployment::read_project(project);
        let prior: Vec<&ArtifactReport> = prior.into_iter().collect();
        // What each deployment's record said at the last look, to tell a record that moved on.
        let recorded: HashMap<(&str, &str, &str), Option<&ContentHash>> = prior
            .iter()
            .map(|r| {
                let id = (
                    r.profile_root.as_str(),
                    r.artifact_type.as_str(),
                    r.name.as_str(),
                );
                (id, r.deployed_sha.as_ref())
            })
            .collect();
        let mut claims = unreadable::Claims::default();
        let mut used_collections = Vec::new();
        let mut use_collection = |name: &str| {
            if !used_collections.iter().any(|n| n == name) {
                used_collections.push(name.to_string());
            }
        };
        for file in &files {
            for p in &file.problems {
                report.problems.push(Problem {
                    project: Some(project.to_path_buf()),
                    ..p.clone()
                });
            }
            if let Some(why) = &file.unreadable {
                let why = format!("{}: {why}", file.path.display());
                for r in unreadable::carried(&prior, &file.root, &why) {
                    claims.claim(Some(&r.collection), &r.name, Some(&r.artifact_type));
                    use_collection(&r.collection);
                    report.artifacts.push(r);
                }
                claims.unidentified(why);
            }
            for bad in &file.bad_records {
                let why = format!(
                    "{}: deployed[{}]: {}",
                    file.path.display(),
                    bad.index,
                    bad.reason
                );
                let Some(name) = &bad.artifact_name else {
                    claims.unidentified(why);
                    continue;
                };
                let coll = bad.from_collection.as_deref().map(|c| collections.get(c));
                let r = unreadable::bad_record(project, &file.root, bad, name, coll, why);
                let known_type = (!r.artifact_type.is_empty()).then_some(r.artifact_type.as_str());
                claims.claim(bad.from_collection.as_deref(), name, known_type);
                if let Some(c) = &bad.from_collection {
                    use_collection(c);
                }
                report.artifacts.push(r);
            }
            let root = project.join(&file.root);
            for rec in &file.records {
                claims.claim(
                    Some(&rec.from_collection),
                    &rec.artifact_name,
                    Some(&rec.artifact_type),
                );
                use_collection(&rec.from_collection);
                let coll = collections.get(&rec.from_collection);
                let (source, c_side) = match coll.lookup(&rec.artifact_name, &rec.artifact_type) {
                    Lookup::Found(a) => (Some(a), None),
                    Lookup::Absent => (None, Some(Side::Absent)),
                    Lookup::Unknown(why) => (None, Some(Side::Unreadable(why.to_string()))),
                };
                let c_path = source.map(|a| coll.dir.join(&a.path));
                let mut p_path = root.join(&rec.artifact_path);
                if !memo.exists(&p_path) && memo.exists(&project.join(&rec.artifact_path)) {
                    // Old records kept paths relative to the project.
                    p_path = project.join(&rec.artifact_path);
                }
                // A record is written after the copies it describes (SkillMeat's deploy and
                // sync, our write-backs). One that moved on since the last look may have
                // been read before the copies' own change hints arrived (or while they still
                // settle): its copies are read again, never judged as the memo last saw them.
                let id = (
                    file.root.as_str(),
                    rec.artifact_type.as_str(),
                    rec.artifact_name.as_str(),
                );
                if !recorded
                    .get(&id)
                    .is_some_and(|h| h.is_some_and(|h| h.is(&rec.content_hash)))
                {
                    memo.invalidate(&p_path);
                    if let Some(c) = &c_path {
                        memo.invalidate(c);
                    }
                }
                let c_side = match (c_side, &c_path) {
                    (Some(side), _) => side,
                    (None, Some(path)) => memo.side(&self.index, path, Variant::DeployedCopy),
                    (None, None) => Side::Absent,
                };
                let p_side = memo.side(&self.index, &p_path, Variant::Legacy);
                // History: a copy that still hashes to the record is the deployment's base.
                if p_path == root.join(&rec.artifact_path) {
                    let loc = Location::project(
                        project,
                        &file.root,
                        &rec.artifact_path.to_string_lossy(),
                    );
                    report
                        .bases
                        .extend(base(loc, &p_path, &p_side, &rec.content_hash));
                }
                if let (Some(a), Some(path)) = (source, &c_path) {
                    let loc = Location::collection(&rec.from_collection, &a.path.to_string_lossy());
                    report
                        .bases
                        .extend(base(loc, path, &c_side, &rec.content_hash));
                }
                let verdict = drift::classify(&rec.content_hash, &c_side, &p_side);
                report.artifacts.push(ArtifactReport {
                    project: project.to_path_buf(),
                    profile_root: file.root.as_str().into(),
                    name: rec.artifact_name.as_str().into(),
                    artifact_type: rec.artifact_type.as_str().into(),
                    kind: verdict.kind,
                    recommendation: verdict.recommendation.into(),
                    change_origin: verdict.change_origin.into(),
                    deployed_sha: Some(ContentHash::new(&rec.content_hash)),
                    collection_version: c_path.as_deref().map(|p| {
                        memo.version(&self.index, p, Variant::DeployedCopy)
                            .unwrap_or_else(|| "unknown".into())
                    }),
                    project_version: matches!(p_side, Side::Hash(_))
                        .then(|| memo.version(&self.index, &p_path, Variant::Legacy))
                        .flatten(),
                    error: side_error(&c_side).or_else(|| side_error(&p_side)),
                    collection_sha: side_hash(c_side),
                    project_sha: side_hash(p_side),
                    last_deployed: Some(compact_str::format_compact!("{}Z", rec.deployed_at)),
                    collection: rec.from_collection.as_str().into(),
                    artifact_path: rec.artifact_path.clone(),
                    collection_path: source.map(|a| a.path.clone()),
                });
            }
        }
        for name in used_collections {
            let coll = collections.get(&name);
            for a in &coll.artifacts {
                if claims.covers(&name, &a.name, &a.artifact_type) {
                    continue;
                }
                if let Some(why) = claims.unknown() {
                    report.artifacts.push(unreadable::report(
                        project,
                        "",
                        &name,
                        &a.name,
                        &a.artifact_type,
                        a.path.clone(),
                        format!("cannot tell whether it is deployed here: {why}"),
                    ));
                    continue;
                }
                let path = coll.dir.join(&a.path);
                let side = memo.side(&self.index, &path, Variant::DeployedCopy);
                let verdict = drift::added();
                report.artifacts.push(ArtifactReport {
                    project: project.to_path_buf(),
                    profile_root: CompactString::default(),
                    name: a.name.as_str().into(),
                    artifact_type: a.artifact_type.as_str().into(),
                    kind: verdict.kind,
                    recommendation: verdict.recommendation.into(),
                    change_origin: verdict.change_origin.into(),
                    deployed_sha: None,
                    collection_version: Some(
                        memo.version(&self.index, &path, Variant::DeployedCopy)
                            .unwrap_or_else(|| "unknown".into()),
                    ),
                    project_version: None,
                    error: side_error(&side),
                    collection_sha: side_hash(side),
                    project_sha: None,
                    last_deployed: None,
                    collection: name.as_str().into(),
                    artifact_path: a.path.clone(),
                    collection_path: Some(a.path.clone()),
                });
            }
        }
        report
    }

    /// Registers `path` by hand. Unless `force`, a folder that cannot be meant as a
    /// project is refused ([`projects::refusal`]: `/`, the home folder itself, system
    /// folders, folders without a deployment file).
    ///
    /// # Errors
    /// `path` is not a folder, or is refused; the store failed.
    pub fn add_project(&self, path: &Path, force: bool) -> Result<PathBuf, EngineError> {
        let path = canonical(path);
        if !path.is_dir() {
            return Err(EngineError::NotAFolder { path });
        }
        let home = std::env::var_os("HOME").map(|h| canonical(Path::new(&h)));
        if !force && let Some(refusal) = projects::refusal(&path, home.as_deref()) {
            return Err(EngineError::NotAProject { path, refusal });
        }
        let mut mark = self.store.project_mark(&path)?;
        mark.manual = true;
        mark.ignored = false;
        self.store.set_project_mark(&path, &mark)?;
        Ok(path)
    }

    /// Forgets a hand registration.
    ///
    /// # Errors
    /// The project was not added by hand; the store failed.
    pub fn remove_project(&self, path: &Path) -> Result<(), EngineError> {
        let path = canonical(path);
        let mut mark = self.store.project_mark(&path)?;
        if !mark.manual {
            return Err(EngineError::NotManual { path });
        }
        mark.manual = false;
        self.store.set_project_mark(&path, &mark)?;
        Ok(())
    }

    /// Hides (or shows again) a project for good.
    ///
    /// # Errors
    /// The store failed.
    pub fn ignore_project(&self, path: &Path, ignored: bool) -> Result<(), EngineError> {
        let path = canonical(path);
        let mut mark = self.store.project_mark(&path)?;
        mark.ignored = ignored;
        if ignored {
            mark.manual = false;
        }
        self.store.set_project_mark(&path, &mark)?;
        Ok(())
    }

    /// Writes the hash cache back, flushes and seals the store (called on shutdown).
    ///
    /// # Errors
    /// The flush failed.
    pub fn flush(&self) -> Result<(), EngineError> {
        self.store.save_hashes();
        Ok(self.store.close()?)
    }
}

/// Collections read at most once per request or batch.
#[derive(Debug)]
pub struct Collections {
    home: PathBuf,
    read: BTreeMap<String, Collection>,
}

impl Collections {
    /// An empty cache over the collections of SkillMeat home `home`.
    pub fn new(home: &Path) -> Self {
        Collections {
            home: home.to_path_buf(),
            read: BTreeMap::new(),
        }
    }

    /// Collection `name`, read on first use.
    pub fn get(&mut self, name: &str) -> &Collection {
        self.read.entry(name.to_string()).or_insert_with(|| {
            let mut c = collection::read(&self.home, name);
            if !c.dir.is_dir() {
                let why = format!("collection {name:?} does not exist");
                c.problems = vec![Problem::new(&c.dir, &why)];
                c.unreadable = Some(format!("{}: {why}", c.dir.display()));
            }
            c
        })
    }

    /// Problems of each collection read so far.
    pub fn problems_by_name(&self) -> Vec<(String, Vec<Problem>)> {
        self.read
            .iter()
            .map(|(n, c)| (n.clone(), c.problems.clone()))
            .collect()
    }

    /// Problems met reading the collections used so far.
    pub fn problems(&self) -> Vec<Problem> {
        self.read
            .values()
            .flat_map(|c| c.problems.clone())
            .collect()
    }
}

/// A base candidate when the side still hashes to the record.
fn base(location: Location, path: &Path, side: &Side, content_hash: &str) -> Option<Base> {
    matches!(side, Side::Hash(h) if h == content_hash).then(|| Base {
        location,
        path: path.to_path_buf(),
        content_hash: content_hash.to_string(),
    })
}

fn side_hash(s: Side) -> Option<ContentHash> {
    match s {
        Side::Hash(h) => Some(ContentHash::from(h)),
        _ => None,
    }
}

fn side_error(s: &Side) -> Option<CompactString> {
    match s {
        Side::Unreadable(e) => Some(e.as_str().into()),
        _ => None,
    }
}
