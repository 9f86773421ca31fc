//! Finding projects nobody registered by hand.
//!
//! Two sources, both read-only:
//! - SkillMeat's own project registry, table `projects` of `~/.skillmeat/cache/cache.db`
//!   (formats doc §10.1): only the `id`, `path` and `deleted_at` columns are read; the
//!   sentinel row and removed projects are skipped. The schema belongs to SkillMeat, so a
//!   missing file, a missing table, a changed schema or a locked database is a warning,
//!   never a crash.
//! - Folders named in `daemon.toml` (`[discovery] scan`), walked to a bounded depth, skipping
//!   `.git`, `node_modules` and build folders: a folder with a deployment file in any hidden
//!   child is a project.
//!
//! Called by [`crate::projects::known`] each time the live task lists the projects.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::formats::deployment;

/// The id of the registry row that stands for the collections themselves, not a project.
const SENTINEL_ID: &str = "collection_artifacts_global";

/// How long to wait for SkillMeat to release a write lock on its database.
const BUSY_TIMEOUT: Duration = Duration::from_millis(500);

/// SkillMeat's registry database inside its home.
pub fn registry_path(home: &Path) -> PathBuf {
    home.join("cache").join("cache.db")
}

/// Project folders in SkillMeat's registry. `Ok(vec![])` when SkillMeat has no database yet.
///
/// # Errors
/// A one-line reason when the database exists but cannot be read as expected.
pub fn registry_projects(home: &Path) -> Result<Vec<PathBuf>, String> {
    let path = registry_path(home);
    if !path.exists() {
        return Ok(Vec::new());
    }
    // SQLite would block opening a FIFO: only a regular file is handed to it.
    crate::regular::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut stmt = conn
        .prepare("SELECT id, path, deleted_at FROM projects")
        .map_err(|e| format!("{}: cannot read table `projects`: {e}", path.display()))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<rusqlite::types::Value>>(2)?,
            ))
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut projects = Vec::new();
    for row in rows {
        let (id, p, deleted) = row.map_err(|e| format!("{}: {e}", path.display()))?;
        let deleted = !matches!(deleted, None | Some(rusqlite::types::Value::Null));
        if deleted || id.as_deref() == Some(SENTINEL_ID) {
            continue;
        }
        match p.map(PathBuf::from) {
            Some(p) if p.is_absolute() => projects.push(p),
            _ => {}
        }
    }
    projects.sort();
    projects.dedup();
    Ok(projects)
}

/// Folder names never descended into while scanning.
fn skip_while_scanning(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "node_modules" | "target" | "build" | "dist" | "venv" | "__pycache__" | "vendor"
        )
}

/// Whether `dir` holds a SkillMeat deployment file in any profile root.
pub fn is_project(dir: &Path) -> bool {
    !deployment::profile_roots(dir).is_empty()
}

/// Project folders below `root`, at most `max_depth` levels down (`root` itself is depth 0).
pub fn scan(root: &Path, max_depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .max_depth(max_depth)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || (e.file_type().is_dir()
                    && !skip_while_scanning(&e.file_name().to_string_lossy()))
        });
    for entry in walker.filter_map(Result::ok) {
        if entry.file_type().is_dir() && is_project(entry.path()) {
            found.push(entry.path().to_path_buf());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_skips_sentinel_and_deleted_rows() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("cache")).unwrap();
        let conn = rusqlite::Connection::open(registry_path(home.path())).unwrap();
        conn.execute_batch(
            "CREATE TABLE projects (id TEXT, name TEXT, path TEXT, deleted_at DATETIME, extra TEXT);
             INSERT INTO projects VALUES ('collection_artifacts_global', 'g', '~/.skillmeat/collections', NULL, '');
             INSERT INTO projects VALUES ('a1', 'one', '/work/one', NULL, '');
             INSERT INTO projects VALUES ('a2', 'two', '/work/two', '2026-01-01 00:00:00', '');",
        )
        .unwrap();
        drop(conn);
        assert_eq!(
            registry_projects(home.path()).unwrap(),
            [PathBuf::from("/work/one")]
        );
    }

    #[test]
    fn registry_problems_are_errors_not_panics() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(
            registry_projects(home.path()).unwrap(),
            Vec::<PathBuf>::new()
        );
        std::fs::create_dir_all(home.path().join("cache")).unwrap();
        let conn = rusqlite::Connection::open(registry_path(home.path())).unwrap();
        conn.execute_batch("CREATE TABLE other (x TEXT);").unwrap();
        drop(conn);
        let e = registry_projects(home.path()).unwrap_err();
        assert!(e.contains("projects"), "{e}");
        std::fs::write(registry_path(home.path()), b"not a database at all, really").unwrap();
        assert!(registry_projects(home.path()).is_err());
    }

    #[test]
    fn scan_finds_projects_and_skips_junk() {
        let d = tempfile::tempdir().unwrap();
        let mk = |rel: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join(deployment::FILE_NAME), "deployed = []\n").unwrap();
        };
        mk("a/.claude");
        mk("b/c/.codex");
        mk("node_modules/x/.claude");
        mk("deep/1/2/3/4/5/.claude");
        assert_eq!(
            scan(d.path(), 3),
            [d.path().join("a"), d.path().join("b/c")]
        );
    }
}
