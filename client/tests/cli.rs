//! smctl on its own: help with examples, and a clear one-line error with exit code 3 when
//! no daemon answers. (The tests that drive a daemon live in the root package's `tests/`.)

use std::process::Command;

fn smctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smctl"));
    for k in ["XDG_RUNTIME_DIR", "SKILLMEAT_HOME", "SKILLMEATD_STATE_DIR"] {
        c.env_remove(k);
    }
    // Never start a daemon on the real home from a test.
    c.env("SKILLMEATD_NO_AUTOSTART", "1");
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

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef smctl"),
        ("fish", "complete -c smctl"),
        ("elvish", "smctl"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = smctl().args(["completions", shell]).output().unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        // Subcommands and their flags come from the CLI definition.
        assert!(
            text.contains("drift") && text.contains("service"),
            "{shell}"
        );
    }
    let out = smctl().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bash_completion_script_is_valid_bash() {
    let out = smctl().args(["completions", "bash"]).output().unwrap();
    let dir = std::env::temp_dir().join(format!("smctl-compl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("smctl.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn man_page_is_roff_with_the_commands() {
    let out = smctl().arg("man").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(".ie") || text.contains(".TH smctl"),
        "{text}"
    );
    assert!(text.contains(".TH smctl 1"), "{text}");
    for word in [
        "drift",
        "project",
        "service",
        "completions",
        "SKILLMEATD_NO_AUTOSTART",
    ] {
        assert!(text.contains(word), "man page lacks {word}");
    }
}

/// The commit the checkout is at, as the build script names it; `None` without git.
fn git_revision() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !rev.is_empty()).then_some(rev)
}

#[test]
fn version_names_the_revision() {
    let out = smctl().arg("--version").output().unwrap();
    assert!(out.status.success());
    let want = match git_revision() {
        Some(rev) => format!("smctl {} (rev {rev})\n", env!("CARGO_PKG_VERSION")),
        None => format!("smctl {}\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
