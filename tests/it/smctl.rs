//! smctl on its own: help with examples, its version, and a clear one-line error with exit
//! code 3 when no daemon answers.

use std::process::Command;

use crate::common::{smctl_bin, version_line};

fn smctl() -> Command {
    let mut c = Command::new(smctl_bin());
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

#[test]
fn version_names_the_protocol_and_the_revision() {
    let out = smctl().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), version_line("smctl"));
}
