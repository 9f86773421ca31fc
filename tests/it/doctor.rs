//! `smctl doctor` with the real binaries: a healthy setup passes, a polled root and an
//! invalid deployment file are flagged with their fixes, a stopped daemon still gets the
//! checks that need no daemon, and the SkillMeat CLI's version is found.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::{Artifact, Env, deploy, make_collection, smctl_bin, write};

fn arts() -> Vec<Artifact> {
    vec![Artifact::skill("review"), Artifact::command("hello")]
}

fn setup(env: &Env) -> PathBuf {
    make_collection(&env.skillmeat_home, "default", &arts());
    let project = env.path("proj");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts());
    project
}

/// `smctl doctor --format json` with `path` as PATH: its exit code and report.
fn doctor(env: &Env, path: &str) -> (i32, Value) {
    let out = env
        .command(&smctl_bin())
        .args(["doctor", "--format", "json"])
        .env("PATH", path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

/// (status, message, fix) of the check called `name`.
fn get<'a>(v: &'a Value, name: &str) -> (&'a str, &'a str, &'a str) {
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v:#}"));
    (
        c["status"].as_str().unwrap(),
        c["message"].as_str().unwrap(),
        c["fix"].as_str().unwrap(),
    )
}

/// A PATH holding nothing, so no `skillmeat` is found.
fn empty_path(env: &Env) -> String {
    let dir = env.path("empty-bin");
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

/// Every check, in report order.
const ALL: [&str; 10] = [
    "daemon",
    "config",
    "perms",
    "inotify",
    "polling",
    "store",
    "journal",
    "files",
    "notifications",
    "skillmeat",
];

#[test]
fn a_healthy_setup_exits_zero() {
    let env = Env::new();
    let project = setup(&env);
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[watch]\nsettle_ms = 10\n",
    );
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    write(&project.join(".claude/commands/hello.md"), "edit\n");
    env.smctl_json(&["drift", "--sync"]);

    let (code, v) = doctor(&env, &empty_path(&env));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["needs_action"], false);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALL);
    for c in v["checks"].as_array().unwrap() {
        let want = if c["name"] == "skillmeat" {
            "skip"
        } else {
            "ok"
        };
        assert_eq!(c["status"], want, "{c:#}");
    }
    let (_, msg, _) = get(&v, "inotify");
    assert!(
        msg.contains("watches in use") && msg.contains("max_user_watches"),
        "{msg}"
    );
    let used: u64 = msg.split_whitespace().next().unwrap().parse().unwrap();
    assert!(used > 0, "the daemon holds inotify watches: {msg}");
    assert!(get(&v, "config").1.ends_with("daemon.toml: ok"));
    let (_, journal, _) = get(&v, "journal");
    assert!(journal.starts_with("events #1.."), "{journal}");
    assert!(get(&v, "store").1.contains("MiB on disk"));
    assert!(get(&v, "skillmeat").1.contains("not on PATH"));

    // The table says the same for people.
    let out = env
        .command(&smctl_bin())
        .args(["doctor", "--format", "table"])
        .env("PATH", empty_path(&env))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok    daemon") && text.contains("Nothing needs attention"),
        "{text}"
    );
}

#[test]
fn a_polled_root_and_an_invalid_file_need_action() {
    let env = Env::new();
    let project = setup(&env);
    deploy(
        &env.skillmeat_home,
        "default",
        &project,
        ".codex",
        &[Artifact::command("hello")],
    );
    write(
        &project.join(".codex/.skillmeat-deployed.toml"),
        "[[deployed]\n",
    );
    let mut cmd = env.command(&crate::common::skillmeatd_bin());
    cmd.env("SKILLMEATD_FAULT_WATCH_LIMIT", "1");
    let _d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);

    let (code, v) = doctor(&env, &empty_path(&env));
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["needs_action"], true);
    let (status, msg, fix) = get(&v, "polling");
    assert_eq!(status, "warn", "{msg}");
    assert!(
        msg.contains("are polled") && msg.contains("watch limit"),
        "{msg}"
    );
    assert!(fix.contains("max_user_watches"), "{fix}");
    let (status, msg, fix) = get(&v, "files");
    assert_eq!(status, "warn", "{msg}");
    assert!(
        msg.contains(".codex/.skillmeat-deployed.toml") && msg.contains("line 1"),
        "{msg}"
    );
    assert!(!fix.is_empty());
    for name in ["daemon", "config", "perms", "store", "journal"] {
        assert_eq!(get(&v, name).0, "ok", "{name}: {v:#}");
    }
}

#[test]
fn no_daemon_exits_three_with_the_local_checks() {
    let env = Env::new();
    write(
        &env.skillmeat_home.join("daemon.toml"),
        "[watch]\nsetle_ms = 5\n",
    );
    let (code, v) = doctor(&env, &empty_path(&env));
    assert_eq!(code, 3, "{v:#}");
    let (status, msg, fix) = get(&v, "daemon");
    assert_eq!(status, "fail");
    assert!(
        msg.contains("not running") && fix.contains("skillmeatd start"),
        "{msg}"
    );
    let (status, msg, fix) = get(&v, "config");
    assert_eq!(status, "fail");
    assert!(
        msg.contains("line 2") && msg.contains("did you mean `settle_ms`?"),
        "{msg}"
    );
    assert!(fix.contains("--check-config"));
    assert_eq!(get(&v, "perms").0, "ok");
    for name in ["inotify", "polling", "journal", "files"] {
        assert_eq!(get(&v, name).0, "skip", "{name}");
    }
    // The store is read offline (`skillmeatd run --check-store`), without a daemon.
    let (status, msg, _) = get(&v, "store");
    assert_eq!(status, "ok", "{msg}");
    assert!(msg.contains("no store yet"), "{msg}");
    assert!(!env.socket.exists(), "doctor must not start the daemon");
}

#[test]
fn loose_permissions_are_flagged() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    std::fs::create_dir_all(&env.state_dir).unwrap();
    std::fs::set_permissions(&env.state_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, v) = doctor(&env, &empty_path(&env));
    assert_eq!(code, 3);
    let (status, msg, fix) = get(&v, "perms");
    assert_eq!(status, "fail");
    assert!(msg.contains("mode 0755, not 0700"), "{msg}");
    assert!(fix.contains("chmod 700"));
}

#[test]
fn the_skillmeat_version_is_found() {
    let out = Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/skillmeat-venv.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tests/support/skillmeat-venv.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bin = PathBuf::from(stdout.lines().last().unwrap());
    let env = Env::new();
    let (_, v) = doctor(&env, &bin.parent().unwrap().display().to_string());
    let (status, msg, _) = get(&v, "skillmeat");
    assert_eq!(status, "ok", "{msg}");
    assert!(msg.contains("SkillMeat 0.74.0"), "{msg}");
    assert!(
        !env.home.join(".skillmeat/config.toml").exists(),
        "skillmeat --version must run with a throwaway HOME"
    );
}
