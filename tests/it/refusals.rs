//! What the daemon refuses at once rather than obey: a FIFO or a device given as an archive,
//! a step that never returns at shutdown, folders that cannot be meant as projects, and
//! settings outside their range — each with a clear message, on the real binaries.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Artifact, Env, deploy, eventually, make_collection, skillmeatd_bin, write};

const WAIT: Duration = Duration::from_secs(30);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Runs smctl with a bound on its run time: a command that hangs fails the test instead of
/// hanging it.
fn smctl_within(env: &Env, args: &[&str], limit: Duration) -> Output {
    let mut child = env
        .command(&crate::common::smctl_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("smctl {args:?} still runs after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn finding_7_a_fifo_given_to_import_is_refused_at_once() {
    let env = Env::new();
    let mut d = env.daemon();
    let fifo = env.path("backup.tar.zst");
    mkfifo(&fifo);
    for target in [fifo.as_path(), Path::new("/dev/zero")] {
        let started = Instant::now();
        let out = smctl_within(
            &env,
            &["snapshot", "import", target.to_str().unwrap()],
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains(target.to_str().unwrap()) && err.contains("not a regular file"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    }
    assert!(
        text(
            &env.smctl(&["snapshot", "import", fifo.to_str().unwrap()])
                .stderr
        )
        .contains("a FIFO (named pipe)")
    );
    // No thread is left blocked: the daemon still answers, and SIGTERM ends it cleanly.
    env.smctl_json(&["status"]);
    let started = Instant::now();
    let status = d.signal_and_wait(libc::SIGTERM);
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn finding_7_a_fifo_in_a_project_or_a_collection_never_blocks_drift() {
    let env = Env::new();
    let arts = [Artifact::skill("review"), Artifact::command("hello")];
    make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    // The project copy of a command, and a file inside the collection's skill, become FIFOs.
    let copy = project.join(".claude/commands/hello.md");
    std::fs::remove_file(&copy).unwrap();
    mkfifo(&copy);
    mkfifo(
        &env.skillmeat_home
            .join("collections/default/skills/review/notes.md"),
    );
    let out = smctl_within(
        &env,
        &["drift", "--sync", "--all", "--format", "json"],
        WAIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hello = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "hello")
        .unwrap()
        .clone();
    assert_eq!(hello["drift_type"], "error", "{hello:#}");
    assert!(
        hello["error"]
            .as_str()
            .unwrap()
            .contains("a FIFO (named pipe)"),
        "{hello:#}"
    );
}

#[test]
fn finding_7_sigterm_ends_the_daemon_even_when_a_step_never_returns() {
    let env = Env::new();
    let mut cmd = env.command(&skillmeatd_bin());
    cmd.env(skillmeatd::faults::ENV, "history.import=hang");
    let mut d = env.daemon_cmd(cmd, &[], &env.socket, "daemon.log");
    let archive = env.path("any.tar.zst");
    write(&archive, "not even an archive");
    let import = env
        .command(&crate::common::smctl_bin())
        .args(["snapshot", "import", archive.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(WAIT, "the import to hang", || {
        d.log_text().contains("injected fault").then_some(())
    });
    let started = Instant::now();
    d.signal(libc::SIGTERM);
    let grace = skillmeatd::daemon::SHUTDOWN_GRACE;
    let status = d.wait_exit(grace + Duration::from_secs(10));
    assert!(
        started.elapsed() >= grace,
        "the stuck task was given no grace"
    );
    assert_eq!(
        status.code(),
        Some(1),
        "a stop that left work behind is a failure"
    );
    let log = d.log_text();
    assert!(
        log.contains("exiting without them") && log.contains("RPC server"),
        "{log}"
    );
    // The client waiting on the stuck request is told the daemon went away.
    let out = import.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

/// A collection with one skill, deployed into `<tmp>/app/.claude`.
fn deployed_project(env: &Env) -> std::path::PathBuf {
    let arts = [Artifact::skill("review")];
    make_collection(&env.skillmeat_home, "default", &arts);
    let project = env.path("app");
    deploy(&env.skillmeat_home, "default", &project, ".claude", &arts);
    project
}

#[test]
fn finding_8_root_home_system_folders_and_folders_without_deployments_are_refused() {
    let env = Env::new();
    let project = deployed_project(&env);
    let _d = env.daemon();
    let empty = env.path("notes");
    std::fs::create_dir_all(empty.join(".claude")).unwrap();
    let home = env.home.to_str().unwrap().to_string();
    let cases = [
        ("/", "it is the root folder"),
        (home.as_str(), "it is your home folder itself"),
        ("/etc", "it is the system folder /etc"),
        ("/usr/share", "it is the system folder /usr"),
        ("/proc/self", "it is the system folder /proc"),
        (
            empty.to_str().unwrap(),
            "it holds no SkillMeat deployment file",
        ),
    ];
    for (path, why) in cases {
        let out = env.smctl(&["project", "add", path]);
        assert_eq!(out.status.code(), Some(2), "{path}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains("not added as a project") && err.contains(why) && err.contains("--force"),
            "{path}: {err}"
        );
    }
    let listed = |env: &Env| {
        env.smctl_json(&["project", "list"])["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["path"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(listed(&env).is_empty(), "{:?}", listed(&env));
    // A real project is added; --force adds what the user insists on.
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    env.smctl_json(&["project", "add", "--force", empty.to_str().unwrap()]);
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap().display().to_string();
    let mut want = vec![canonical(&project), canonical(&empty)];
    want.sort();
    assert_eq!(listed(&env), want);
}

fn check_config(env: &Env) -> (i32, String) {
    let out = env
        .command(&skillmeatd_bin())
        .args(["run", "--check-config"])
        .output()
        .unwrap();
    (out.status.code().unwrap(), text(&out.stderr))
}

#[test]
fn finding_9_settings_out_of_range_are_refused_by_check_config_start_and_reload() {
    let env = Env::new();
    let file = env.skillmeat_home.join("daemon.toml");
    let expected = "line 3: `watch.poll_interval_ms = 0` is out of range: allowed 100 to 3600000";
    write(&file, "[watch]\nsettle_ms = 20\npoll_interval_ms = 0\n");
    let (code, err) = check_config(&env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(expected), "{err}");
    let out = env.command(&skillmeatd_bin()).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(expected),
        "{}",
        text(&out.stderr)
    );

    // Every other bound is enforced the same way, e.g. the order of the settle windows.
    write(&file, "[watch]\nsettle_ms = 5000\n");
    let (code, err) = check_config(&env);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "line 2: `watch.max_settle_ms = 1000` must be at least `watch.settle_ms` (5000)"
        ),
        "{err}"
    );

    write(&file, "[watch]\npoll_interval_ms = 100\n");
    assert_eq!(check_config(&env).0, 0);
    let d = env.daemon();
    write(&file, "[watch]\nsettle_ms = 20\npoll_interval_ms = 0\n");
    d.signal(libc::SIGHUP);
    let problem = eventually(WAIT, "the refused reload in status", || {
        let s = env.smctl_json(&["status"]);
        s["problems"].as_array().unwrap().iter().find_map(|p| {
            p["message"]
                .as_str()
                .filter(|m| m.contains("poll_interval_ms"))
                .map(str::to_string)
        })
    });
    assert!(
        problem.contains(expected) && problem.contains("keeps its previous configuration"),
        "{problem}"
    );
}
