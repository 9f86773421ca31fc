//! The set of known projects: registered by hand, found in SkillMeat's registry, or found by
//! scanning configured folders — merged, with the user's word winning.
//!
//! A project registered by hand is always listed; `ignore` hides a discovered one for good.
//! A project whose folder is gone stays listed as missing. What cannot be meant as a
//! project — `/`, the home folder itself, system folders, a folder with no SkillMeat
//! deployment file — is refused by hand unless forced ([`refusal`]).
//!
//! Called by the engine ([`crate::engine::Engine::known_projects`]) whenever the live task
//! lists the projects, and when a project is added by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::discovery;
use crate::formats::Problem;
use crate::formats::deployment;
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

/// System folders that hold no project anywhere below them (Linux and macOS), as
/// canonical paths: `/bin` and `/lib` are often links into `/usr`.
const SYSTEM_TREES: [&str; 18] = [
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
    "/Applications",
    "/Library",
    "/System",
    "/private/etc",
    "/cores",
    "/snap",
];

/// Below these, projects are ordinary (`/usr/local/src/app`).
const USER_TREES: [&str; 1] = ["/usr/local"];

/// Folders that may hold projects but are none themselves.
const CONTAINERS: [&str; 16] = [
    "/home",
    "/media",
    "/mnt",
    "/nix",
    "/opt",
    "/private",
    "/private/tmp",
    "/private/var",
    "/root",
    "/run",
    "/srv",
    "/tmp",
    "/Users",
    "/usr/local",
    "/var",
    "/Volumes",
];

/// Why a folder cannot be meant as a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `/`.
    Root,
    /// The user's home folder itself.
    Home,
    /// A system folder, or a folder inside one (the system folder named).
    System(PathBuf),
    /// No profile root holds a SkillMeat deployment file.
    NoDeployment,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Root => write!(f, "it is the root folder"),
            Refusal::Home => write!(
                f,
                "it is your home folder itself; add the project folder inside it"
            ),
            Refusal::System(s) => {
                write!(f, "it is the system folder {} or lies in it", s.display())
            }
            Refusal::NoDeployment => write!(
                f,
                "it holds no SkillMeat deployment file (`{}` in `.claude` or another profile \
                 root); deploy to it with `skillmeat deploy` first",
                deployment::FILE_NAME
            ),
        }
    }
}

/// Why `path` (canonical) cannot be meant as a project added by hand, if it cannot: it is
/// `/`, `home` itself, a system folder (or inside one), or it holds no deployment file in
/// any profile root.
pub fn refusal(path: &Path, home: Option<&Path>) -> Option<Refusal> {
    if path.parent().is_none() {
        return Some(Refusal::Root);
    }
    if home.is_some_and(|h| h == path) {
        return Some(Refusal::Home);
    }
    let user = USER_TREES.iter().any(|t| path.starts_with(t));
    if let Some(tree) = SYSTEM_TREES.iter().find(|t| path.starts_with(t))
        && !user
    {
        return Some(Refusal::System(PathBuf::from(tree)));
    }
    if let Some(c) = CONTAINERS.iter().find(|c| path == Path::new(c)) {
        return Some(Refusal::System(PathBuf::from(c)));
    }
    if deployment::profile_roots(path).is_empty() {
        return Some(Refusal::NoDeployment);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProjectMark;

    #[test]
    fn what_cannot_be_meant_is_refused() {
        let home = Path::new("/home/ann");
        let r = |p: &str| refusal(Path::new(p), Some(home));
        assert_eq!(r("/"), Some(Refusal::Root));
        assert_eq!(r("/home/ann"), Some(Refusal::Home));
        assert_eq!(r("/etc"), Some(Refusal::System("/etc".into())));
        assert_eq!(r("/etc/nginx"), Some(Refusal::System("/etc".into())));
        assert_eq!(r("/usr/lib/x"), Some(Refusal::System("/usr".into())));
        assert_eq!(r("/var"), Some(Refusal::System("/var".into())));
        assert_eq!(r("/usr/local"), Some(Refusal::System("/usr/local".into())));
        assert_eq!(
            r("/System/Library"),
            Some(Refusal::System("/System".into()))
        );
        // Ordinary folders pass this far and are refused only for lack of a deployment.
        for p in [
            "/home/ann/code/app",
            "/usr/local/src/app",
            "/var/www/app",
            "/tmp/x",
        ] {
            assert_eq!(r(p), Some(Refusal::NoDeployment), "{p}");
        }
        let d = tempfile::tempdir().unwrap();
        let project = crate::paths::canonical(d.path());
        assert_eq!(refusal(&project, Some(home)), Some(Refusal::NoDeployment));
        std::fs::create_dir_all(project.join(".codex")).unwrap();
        std::fs::write(project.join(".codex").join(deployment::FILE_NAME), "").unwrap();
        assert_eq!(refusal(&project, Some(home)), None);
    }

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
