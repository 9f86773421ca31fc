//! What the write-back modules write, handed to the released SkillMeat CLI (0.74.0, the
//! venv of `tests/support/skillmeat-venv.sh`): a skill folder replaced and its deployment
//! record rewritten by the daemon's writer must leave a project SkillMeat still deploys to
//! and undeploys from, and both tools must take the very same lock.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use skillmeatd::formats::{deployment, deployment_write, timestamp};
use skillmeatd::hash::{Variant, content_hash};
use skillmeatd::writer::{DirFiles, Lock, Writer};

use crate::common::Env;

fn support(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script)
}

/// A SkillMeat home and project made by the real CLI, and the CLI itself.
struct World {
    env: Env,
    project: PathBuf,
    skillmeat: PathBuf,
}

impl World {
    fn new() -> World {
        let env = Env::new();
        let (p1, p2) = (env.path("p1"), env.path("p2"));
        crate::common::skillmeat::make_home(&env, &p1, &p2);
        let venv = Command::new("bash")
            .arg(support("skillmeat-venv.sh"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let skillmeat = String::from_utf8(venv.stdout).unwrap();
        let skillmeat = PathBuf::from(skillmeat.lines().last().unwrap().trim());
        World {
            project: p1.canonicalize().unwrap(),
            env,
            skillmeat,
        }
    }

    fn skillmeat(&self, args: &[&str]) -> Output {
        Command::new(&self.skillmeat)
            .args(args)
            .env("HOME", &self.env.home)
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .env("SKILLMEAT_API_URL", "http://127.0.0.1:9")
            .current_dir(self.env.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn claude(&self) -> PathBuf {
        self.project.join(".claude")
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn skillmeat_keeps_working_after_our_writes_and_shares_our_lock() {
    let w = World::new();
    let claude = w.claude();
    let record_file = claude.join(deployment::FILE_NAME);
    // A key from some future SkillMeat, on the last record.
    let mut body = std::fs::read_to_string(&record_file).unwrap();
    body.push_str("x_future_key = \"kept\"\n");
    std::fs::write(&record_file, &body).unwrap();

    // Replace the deployed skill as a sync pull would, then record it.
    let writer = Writer::new();
    let skill = claude.join("skills/review-skill");
    let mut files = DirFiles::new();
    files.insert(
        "SKILL.md".into(),
        (
            b"---\nname: review-skill\n---\n# Review skill, pulled\n".to_vec(),
            0o644,
        ),
    );
    files.insert("checklist.txt".into(), (b"- tests\n".to_vec(), 0o644));
    writer
        .replace_dir(&claude, Path::new("skills/review-skill"), &files)
        .unwrap();
    let hash = content_hash(&skill, Variant::Legacy).unwrap();
    let key = deployment_write::RecordKey {
        name: "review-skill",
        artifact_type: "skill",
        profile_id: Some("claude_code"),
    };
    let update = deployment_write::RecordUpdate {
        content_hash: hash.clone(),
        deployed_at: timestamp::isoformat(timestamp::now_local()),
    };
    deployment_write::update_record(&writer, &w.project, ".claude", key, &update).unwrap();
    let ours = std::fs::read_to_string(&record_file).unwrap();
    assert!(ours.contains("x_future_key = \"kept\""), "{ours}");
    assert_eq!(
        ours.matches(&hash).count(),
        4,
        "content_hash, lineage, base, collection_sha:\n{ours}"
    );

    // SkillMeat reads that file: it lists, redeploys another artifact and undeploys ours.
    let list = w.skillmeat(&["list"]);
    assert!(list.status.success(), "{}", text(&list));
    let deploy = w.skillmeat(&[
        "deploy",
        "hello",
        "--project",
        w.project.to_str().unwrap(),
        "--overwrite",
        "--format",
        "json",
    ]);
    assert!(deploy.status.success(), "{}", text(&deploy));
    let after = deployment::read_file(&w.project, ".claude");
    assert!(after.problems.is_empty(), "{:?}", after.problems);
    let ours = after
        .records
        .iter()
        .find(|r| r.artifact_name == "review-skill")
        .unwrap();
    assert_eq!(ours.content_hash, hash, "SkillMeat kept our record");
    let undeploy = w.skillmeat(&[
        "undeploy",
        "review-skill",
        "--project",
        w.project.to_str().unwrap(),
        "--force",
    ]);
    assert!(undeploy.status.success(), "{}", text(&undeploy));
    let after = deployment::read_file(&w.project, ".claude");
    assert!(
        after
            .records
            .iter()
            .all(|r| r.artifact_name != "review-skill")
    );
    assert!(!skill.exists(), "SkillMeat removed the folder we wrote");

    // While we hold the deployment file's lock, SkillMeat cannot write it.
    let before = std::fs::read(&record_file).unwrap();
    let held = Lock::acquire(&record_file, Duration::ZERO, Duration::ZERO).unwrap();
    let blocked = w.skillmeat(&[
        "deploy",
        "helper",
        "--project",
        w.project.to_str().unwrap(),
        "--overwrite",
    ]);
    drop(held);
    assert!(
        !blocked.status.success(),
        "SkillMeat wrote through our lock:\n{}",
        text(&blocked)
    );
    // SkillMeat 0.74.0: "… is locked by another skillmeat process (timed out …)".
    let said = text(&blocked)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(said.contains("locked by another"), "{said}");
    assert_eq!(std::fs::read(&record_file).unwrap(), before);
}
