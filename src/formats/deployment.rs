//! `<project>/<root>/.skillmeat-deployed.toml`: one deployment file per profile root
//! (`.claude`, `.codex`, `.gemini`, `.cursor`, or any other hidden folder), each an array
//! `deployed` of records (formats doc §2.3).
//!
//! SkillMeat aborts on the first bad record; we keep every good one and report each bad
//! one with its index and reason, and with what could be read of it ([`BadRecord`]), so
//! the engine can report that deployment as unreadable instead of forgetting it. A file
//! that cannot be read at all says why ([`DeploymentFile::unreadable`]).

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::{Problem, is_contained, parse_toml_borrowed, str_field, string_fields_problem};

/// The deployment file's name inside a profile root.
pub const FILE_NAME: &str = ".skillmeat-deployed.toml";

/// Platforms SkillMeat's `Platform` enum accepts.
pub const PLATFORMS: [&str; 6] = [
    "claude_code",
    "codex",
    "gemini",
    "cursor",
    "remote_git",
    "other",
];

/// One deployment record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub artifact_name: String,
    pub artifact_type: String,
    pub from_collection: String,
    pub deployed_at: String,
    /// Path of the deployed copy relative to the profile root (or, for old records whose
    /// copy lies outside it, relative to the project).
    pub artifact_path: PathBuf,
    /// D: `content_hash`, else the deprecated `collection_sha`.
    pub content_hash: String,
    pub profile_id: Option<String>,
}

/// A record that is there but cannot be used, and what could be read of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadRecord {
    /// Its index in `deployed`.
    pub index: usize,
    /// Why it cannot be used, e.g. `artifact_type: expected a string, found an integer`.
    pub reason: String,
    pub artifact_name: Option<String>,
    pub artifact_type: Option<String>,
    pub from_collection: Option<String>,
    pub artifact_path: Option<PathBuf>,
}

/// One profile root's deployment file, as far as it could be read.
#[derive(Debug, Clone, Default)]
pub struct DeploymentFile {
    /// The profile root folder name, e.g. `.claude`.
    pub root: String,
    pub path: PathBuf,
    pub records: Vec<Deployment>,
    /// Records that cannot be used (each also in `problems`).
    pub bad_records: Vec<BadRecord>,
    /// Why no record at all could be read (unreadable file, invalid TOML, `deployed` not
    /// an array); also in `problems`.
    pub unreadable: Option<String>,
    pub problems: Vec<Problem>,
}

/// Profile roots of `project` that hold a deployment file: `.claude` first, then every
/// other hidden folder in name order, as SkillMeat's `read_deployments` does.
pub fn profile_roots(project: &Path) -> Vec<String> {
    let mut roots = Vec::new();
    if project.join(".claude").join(FILE_NAME).is_file() {
        roots.push(".claude".to_string());
    }
    let Ok(rd) = std::fs::read_dir(project) else {
        return roots;
    };
    let mut others: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with('.') && n != ".claude" && n != "." && n != "..")
        .filter(|n| project.join(n).join(FILE_NAME).is_file())
        .collect();
    others.sort();
    roots.extend(others);
    roots
}

/// Reads every deployment file of `project`.
pub fn read_project(project: &Path) -> Vec<DeploymentFile> {
    profile_roots(project)
        .into_iter()
        .map(|root| read_file(project, &root))
        .collect()
}

/// Reads the deployment file of one profile root.
pub fn read_file(project: &Path, root: &str) -> DeploymentFile {
    let path = project.join(root).join(FILE_NAME);
    match crate::regular::read(&path) {
        Ok(bytes) => parse(&path, root, &bytes),
        Err(e) => DeploymentFile {
            root: root.to_string(),
            problems: vec![Problem::new(&path, format!("cannot read: {e}"))],
            unreadable: Some(format!("cannot read: {e}")),
            path,
            ..Default::default()
        },
    }
}

/// Parses the bytes of the deployment file `path` of profile root `root`.
pub fn parse(path: &Path, root: &str, bytes: &[u8]) -> DeploymentFile {
    let path = path.to_path_buf();
    let mut file = DeploymentFile {
        root: root.to_string(),
        path: path.clone(),
        ..Default::default()
    };
    let table = match parse_toml_borrowed(bytes) {
        Ok(t) => t,
        Err(e) => {
            file.problems.push(Problem::new(&path, &e));
            file.unreadable = Some(e);
            return file;
        }
    };
    let records = match table.get("deployed").map(toml::Spanned::get_ref) {
        None => return file,
        Some(DeValue::Array(a)) => a,
        Some(_) => {
            let e = "`deployed` is not an array of tables";
            file.problems.push(Problem::new(&path, e));
            file.unreadable = Some(e.to_string());
            return file;
        }
    };
    for (i, r) in records.iter().enumerate() {
        let r = r.get_ref();
        match r
            .as_table()
            .ok_or_else(|| "not a table".to_string())
            .and_then(parse_record)
        {
            Ok((record, warning)) => {
                if let Some(w) = warning {
                    file.problems.push(Problem::new(
                        &path,
                        format!("deployed[{i}] ({}): {w}", record.artifact_name),
                    ));
                }
                file.records.push(record);
            }
            Err(e) => {
                file.problems
                    .push(Problem::new(&path, format!("deployed[{i}]: {e}")));
                let t = r.as_table();
                let field = |k| t.and_then(|t| str_field(t, k)).map(str::to_string);
                file.bad_records.push(BadRecord {
                    index: i,
                    reason: e,
                    artifact_name: field("artifact_name"),
                    artifact_type: field("artifact_type"),
                    from_collection: field("from_collection"),
                    artifact_path: field("artifact_path")
                        .map(|p| PathBuf::from(p.replace('\\', "/")))
                        .filter(|p| is_contained(p)),
                });
            }
        }
    }
    file
}

/// Parses one record; a usable record may still carry a warning (unknown platform).
fn parse_record(r: &DeTable<'_>) -> Result<(Deployment, Option<String>), String> {
    const REQUIRED: [&str; 5] = [
        "artifact_name",
        "artifact_type",
        "from_collection",
        "deployed_at",
        "artifact_path",
    ];
    // D is `content_hash`, else the deprecated `collection_sha`.
    let hash_key = if r.contains_key("content_hash") || !r.contains_key("collection_sha") {
        "content_hash"
    } else {
        "collection_sha"
    };
    let mut keys = REQUIRED.to_vec();
    keys.push(hash_key);
    if let Some(problem) = string_fields_problem(r, &keys) {
        return Err(problem);
    }
    let hash = str_field(r, hash_key);
    let field = |k| str_field(r, k).unwrap_or_default().to_string();
    let artifact_path = PathBuf::from(field("artifact_path").replace('\\', "/"));
    if !is_contained(&artifact_path) {
        return Err(format!(
            "artifact_path {} leaves the project",
            artifact_path.display()
        ));
    }
    let hash = hash.unwrap_or_default().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("content_hash {hash:?} is not a SHA-256 hex digest"));
    }
    let warning = str_field(r, "platform")
        .filter(|p| !PLATFORMS.contains(p))
        .map(|p| format!("unknown platform {p:?}"));
    Ok((
        Deployment {
            artifact_name: field("artifact_name"),
            artifact_type: field("artifact_type"),
            from_collection: field("from_collection"),
            deployed_at: field("deployed_at"),
            artifact_path,
            content_hash: hash,
            profile_id: str_field(r, "deployment_profile_id").map(str::to_string),
        },
        warning,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "2e7442e246b43330c40e3a09313bc002a3c08b28261f35ac64d1f6a4201944a5";

    fn write(project: &Path, root: &str, body: &str) {
        std::fs::create_dir_all(project.join(root)).unwrap();
        std::fs::write(project.join(root).join(FILE_NAME), body).unwrap();
    }

    #[test]
    fn reads_every_root_claude_first() {
        let d = tempfile::tempdir().unwrap();
        let rec = format!(
            "[[deployed]]\nartifact_name = \"a\"\nartifact_type = \"skill\"\nfrom_collection = \"default\"\ndeployed_at = \"2026-01-05T15:07:49\"\nartifact_path = \"skills/a\"\ncollection_sha = \"{H}\"\nunknown_key = true\n"
        );
        write(d.path(), ".codex", &rec);
        write(d.path(), ".claude", &rec);
        write(d.path(), ".gemini", "deployed = []\n");
        assert_eq!(profile_roots(d.path()), [".claude", ".codex", ".gemini"]);
        let files = read_project(d.path());
        assert_eq!(files[0].records[0].content_hash, H);
        assert_eq!(files[1].records.len(), 1);
        assert!(files[2].records.is_empty() && files[2].problems.is_empty());
    }

    #[test]
    fn bad_records_are_reported_and_good_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let body = format!(
            "[[deployed]]\nartifact_name = \"ok\"\nartifact_type = \"command\"\nfrom_collection = \"default\"\ndeployed_at = \"t\"\nartifact_path = \"commands/ok.md\"\ncontent_hash = \"{H}\"\nplatform = \"vim\"\n\n[[deployed]]\nartifact_name = \"no-hash\"\n\n[[deployed]]\nartifact_name = \"escape\"\nartifact_type = \"skill\"\nfrom_collection = \"default\"\ndeployed_at = \"t\"\nartifact_path = \"../../x\"\ncontent_hash = \"{H}\"\n"
        );
        write(d.path(), ".claude", &body);
        let f = read_file(d.path(), ".claude");
        assert_eq!(f.records.len(), 1);
        let msgs: Vec<&str> = f.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("unknown platform \"vim\""));
        assert!(msgs[1].contains("deployed[1]: missing required key(s): artifact_type"));
        assert!(msgs[2].contains("leaves the project"));
        assert_eq!(f.bad_records.len(), 2);
        assert_eq!(f.bad_records[0].artifact_name.as_deref(), Some("no-hash"));
        assert_eq!(f.bad_records[1].artifact_name.as_deref(), Some("escape"));
        assert_eq!(
            f.bad_records[1].artifact_path, None,
            "a path leaving is not kept"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_as_such() {
        let d = tempfile::tempdir().unwrap();
        let body = format!(
            "[[deployed]]\nartifact_name = \"canvas\"\nartifact_type = 42\nfrom_collection = \"default\"\ndeployed_at = \"t\"\nartifact_path = \"skills/canvas\"\ncontent_hash = \"{H}\"\n"
        );
        write(d.path(), ".claude", &body);
        let f = read_file(d.path(), ".claude");
        assert!(f.records.is_empty());
        assert_eq!(
            f.bad_records,
            [BadRecord {
                index: 0,
                reason: "artifact_type: expected a string, found an integer".into(),
                artifact_name: Some("canvas".into()),
                artifact_type: None,
                from_collection: Some("default".into()),
                artifact_path: Some("skills/canvas".into()),
            }]
        );
        assert_eq!(
            f.problems[0].message,
            "deployed[0]: artifact_type: expected a string, found an integer"
        );
    }

    #[test]
    fn truncated_file_is_one_problem() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), ".claude", "[[deployed]]\nartifact_name = \"a");
        let f = read_file(d.path(), ".claude");
        assert!(f.records.is_empty());
        assert!(
            f.problems[0].message.starts_with("invalid TOML"),
            "{:?}",
            f.problems
        );
        assert!(f.unreadable.unwrap().starts_with("invalid TOML"));
    }
}
