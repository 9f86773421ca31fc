//! The set of known projects: registered by hand, found in SkillMeat's registry, or found by
//! scanning configured folders — merged, with the user's word winning.
//!
//! A project registered by hand is always listed; `ignore` hides a discovered one for good.
//! A project whose folder is gone stays listed as missing.
//!
//! Called by the engine ([`crate::engine::Engine::known_projects`]) whenever the live task
//! lists the projects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::discovery;
use crate::formats::Problem;
use crate::paths::canonical;
use crate::store::{Store, StoreError};

/// How a project was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Manual,
    Registry,
    Scan,
}

/// One project the daemon knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownProject {
    pub path: PathBuf,
    /// Every way it was found, in [`Source`] order (the first counts).
    pub sources: Vec<Source>,
    pub ignored: bool,
    /// The folder no longer exists.
    pub missing: bool,
}

/// Every known project (ignored ones included, flagged), sorted by path, and the problems
/// met while discovering them.
///
/// # Errors
/// The store could not be read.
pub fn known(
    store: &Store,
    home: &Path,
    config: &Config,
) -> Result<(Vec<KnownProject>, Vec<Problem>), StoreError> {
    let mut found: BTreeMap<PathBuf, Vec<Source>> = BTreeMap::new();
    let mut ignored = Vec::new();
    let mut problems = Vec::new();
    // While the store is repaired or reopened, discovered projects are still served (the
    // marks come back with it; the live task lists the projects again then).
    let marks = match store.project_marks() {
        Ok(m) => m,
        Err(e) if e.is_unavailable() || e.is_full() => {
            problems.push(Problem::new(
                store.dir(),
                format!("projects added or ignored by hand are not known for now: {e}"),
            ));
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    for (path, mark) in marks {
        if mark.manual {
            found.entry(path.clone()).or_default().push(Source::Manual);
        }
        if mark.ignored {
            ignored.push(path);
        }
    }
    if config.discovery.registry {
        match discovery::registry_projects(home) {
            Ok(paths) => {
                for p in paths {
                    found
                        .entry(canonical(&p))
                        .or_default()
                        .push(Source::Registry);
                }
            }
            Err(e) => {
                tracing::warn!("SkillMeat project registry: {e}");
                problems.push(Problem::new(&discovery::registry_path(home), e));
            }
        }
    }
    for root in &config.discovery.scan {
        if !root.is_dir() {
            problems.push(Problem::new(root, "scan folder does not exist"));
            continue;
        }
        for p in discovery::scan(root, config.discovery.max_depth) {
            found.entry(canonical(&p)).or_default().push(Source::Scan);
        }
    }
    Ok((
        found
            .into_iter()
            .map(|(path, mut sources)| {
                sources.sort();
                sources.dedup();
                // A hand registration beats an ignore.
                let ignored = ignored.contains(&path) && sources[0] != Source::Manual;
                KnownProject {
                    missing: !path.is_dir(),
                    path,
                    sources,
                    ignored,
                }
            })
            .collect(),
        problems,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProjectMark;

    #[test]
    fn manual_registry_and_scan_merge() {
        let home = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let store = Store::open(&home.path().join("store")).unwrap();
        let scanned = work.path().join("scanned");
        std::fs::create_dir_all(scanned.join(".claude")).unwrap();
        std::fs::write(
            scanned.join(".claude/.skillmeat-deployed.toml"),
            "deployed = []\n",
        )
        .unwrap();
        let manual = work.path().join("manual");
        store
            .set_project_mark(
                &manual,
                &ProjectMark {
                    manual: true,
                    ignored: false,
                },
            )
            .unwrap();
        store
            .set_project_mark(
                &scanned,
                &ProjectMark {
                    manual: false,
                    ignored: true,
                },
            )
            .unwrap();
        let config = Config {
            discovery: crate::config::Discovery {
                scan: vec![work.path().to_path_buf()],
                ..Default::default()
            },
            ..Default::default()
        };
        let (list, problems) = known(&store, home.path(), &config).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].path, manual);
        assert_eq!(list[0].sources, [Source::Manual]);
        assert!(list[0].missing && !list[0].ignored);
        assert_eq!(list[1].sources, [Source::Scan]);
        assert!(list[1].ignored && !list[1].missing);
    }
}
