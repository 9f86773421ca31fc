//! A world for write-back tests: a collection `default` with one skill, `canvas`, deployed
//! into a project `<tmp>/app/.claude`, and helpers to compare what is on disk.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Artifact, Daemon, Env, age, deploy, drift_pairs, make_collection, write};

pub const SKILL_MD: &str = "---\nname: canvas\nversion: 1.0.0\n---\n# Canvas\n\nline one\nline two\nline three\nline four\nline five\n";

pub fn skill() -> Artifact {
    Artifact {
        name: "canvas",
        kind: "skill",
        files: vec![("SKILL.md", SKILL_MD), ("refs/guide.md", "guide\n")],
    }
}

/// A collection `default` with one skill deployed into `<tmp>/app/.claude`, aged.
pub struct World {
    pub env: Env,
    pub coll: PathBuf,
    pub project: PathBuf,
}

impl World {
    pub fn new() -> World {
        World::with(|| vec![skill()])
    }

    /// The same world with the artifacts `artifacts` makes (in the collection and deployed).
    pub fn with(artifacts: impl Fn() -> Vec<Artifact>) -> World {
        let env = Env::new();
        let coll = make_collection(&env.skillmeat_home, "default", &artifacts());
        let project = env.path("app");
        deploy(
            &env.skillmeat_home,
            "default",
            &project,
            ".claude",
            &artifacts(),
        );
        age(&coll);
        age(&project);
        let project = project.canonicalize().unwrap();
        World { env, coll, project }
    }

    /// Starts the daemon and registers the project.
    pub fn start(&self) -> Daemon {
        let d = self.env.daemon();
        self.env.smctl_json(&["project", "add", self.p()]);
        d
    }

    pub fn p(&self) -> &str {
        self.project.to_str().unwrap()
    }

    pub fn project_skill(&self) -> PathBuf {
        self.project.join(".claude/skills/canvas")
    }

    pub fn drift(&self) -> Vec<(String, String)> {
        drift_pairs(&self.env.smctl_json(&["drift", self.p(), "--all", "--sync"]))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        self.env.smctl_json(args)
    }

    /// The deployment record's content_hash.
    pub fn recorded_hash(&self) -> String {
        let text =
            std::fs::read_to_string(self.project.join(".claude/.skillmeat-deployed.toml")).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        doc["deployed"][0]["content_hash"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Every file under `root` (relative path → bytes), SkillMeat's lock files aside (they
/// stay beside what was written, by SkillMeat's rule).
pub fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().ends_with(".skillmeat-lock") {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    write(path, text.replacen(from, to, 1));
}

pub fn pair(kind: &str) -> Vec<(String, String)> {
    vec![("canvas".to_string(), kind.to_string())]
}
