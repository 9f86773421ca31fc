//! smctl on its own: help with examples, and a clear one-line error with exit code 3 when
//! no daemon answers. (The tests that drive a daemon live in the root package's `tests/`.)

use std::process::Command;

fn smctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smctl"));
    for k in ["XDG_RUNTIME_DIR", "SKILLMEAT_HOME", "SKILLMEATD_STATE_DIR"] {
        c.env_remove(k);
    }
    c
}

#[test]
fn help_shows_examples() {
    let out = smctl().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("smctl drift"),
        "{text}"
    );
    let out = smctl().args(["drift", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--exit-code"));
}

#[test]
fn no_daemon_is_one_line_and_exit_3() {
    let dir = std::env::temp_dir().join(format!("smctl-cli-{}", std::process::id()));
    let sock = dir.join("none.sock");
    let out = smctl()
        .env("SKILLMEATD_SOCKET", &sock)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&sock.display().to_string()) && err.contains("skillmeatd start"));
}

#[test]
fn usage_errors_exit_2() {
    let out = smctl()
        .args(["drift", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
