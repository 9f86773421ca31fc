//! What the packages are made of, where it can be checked without building them
//! (`packaging/check.sh` builds, installs and runs the wheel and the Debian package in CI):
//! the daemon's manual page, the wheel's metadata coming from Cargo, and the Homebrew
//! formula, which cannot run here, kept in step with the workspace version and with the
//! launchd agent.

use std::path::Path;

use crate::common::skillmeatd_bin;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text between the first `start` after `after` and the `end` that follows it.
fn between<'a>(text: &'a str, after: &str, start: &str, end: &str) -> &'a str {
    let from = text.find(after).unwrap_or_else(|| panic!("no {after:?}")) + after.len();
    let rest = &text[from..];
    let begin = rest
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} after {after:?}"));
    let rest = &rest[begin + start.len()..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {after:?}"))]
}

#[test]
fn daemon_man_page_is_roff_with_its_commands() {
    let out = std::process::Command::new(skillmeatd_bin())
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(".TH skillmeatd 1"), "{text}");
    // roff escapes every hyphen: `--socket` is `\-\-socket` in the page's source.
    for word in [
        "run",
        "start",
        "stop",
        "hash",
        r"\-\-socket",
        r"skillmeatd run \-\-check\-config",
    ] {
        assert!(text.contains(word), "man page lacks {word}");
    }
}

#[test]
fn wheel_takes_its_name_and_version_from_cargo() {
    let py: toml::Table = read("pyproject.toml").parse().unwrap();
    let project = py["project"].as_table().unwrap();
    assert_eq!(project["name"].as_str(), Some(env!("CARGO_PKG_NAME")));
    // A version written here could drift from the workspace's: maturin reads Cargo's.
    assert!(!project.contains_key("version"), "{project:#?}");
    let dynamic: Vec<&str> = project["dynamic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(dynamic.contains(&"version") && dynamic.contains(&"description"));
    let maturin = py["tool"]["maturin"].as_table().unwrap();
    assert_eq!(maturin["bindings"].as_str(), Some("bin"));
    assert_eq!(
        py["build-system"]["build-backend"].as_str(),
        Some("maturin")
    );
}

#[test]
fn homebrew_formula_builds_the_workspace_version() {
    let formula = read("packaging/homebrew/skillmeatd.rb");
    let url = between(&formula, "class Skillmeatd", "url \"", "\"");
    assert!(
        url.ends_with(&format!("/v{}.tar.gz", env!("CARGO_PKG_VERSION"))),
        "the formula's url {url} is not the tarball of v{}: update url and sha256",
        env!("CARGO_PKG_VERSION")
    );
    let sha = between(&formula, "class Skillmeatd", "sha256 \"", "\"");
    assert!(
        sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "{sha}"
    );
}

#[test]
fn homebrew_service_is_the_launchd_agent() {
    let formula = read("packaging/homebrew/skillmeatd.rb");
    let service = between(&formula, "\n  service do", "\n", "\n  end\n");
    let plist = read("launchd/dev.skillmeat.skillmeatd.plist");
    let args = between(&plist, "<key>ProgramArguments</key>", "<array>", "</array>");
    assert!(args.trim_end().ends_with("<string>run</string>"), "{args}");
    assert!(
        service.contains("run [opt_bin/\"skillmeatd\", \"run\"]"),
        "{service}"
    );
    let keep = between(&plist, "<key>KeepAlive</key>", "<dict>", "</dict>");
    assert!(keep.contains("<key>SuccessfulExit</key>") && keep.contains("<false/>"));
    assert!(
        service.contains("keep_alive successful_exit: false"),
        "{service}"
    );
    let throttle = between(
        &plist,
        "<key>ThrottleInterval</key>",
        "<integer>",
        "</integer>",
    );
    assert!(
        service.contains(&format!("throttle_interval {throttle}\n")),
        "{service}"
    );
    let process = between(&plist, "<key>ProcessType</key>", "<string>", "</string>");
    assert!(
        service.contains(&format!("process_type :{}\n", process.to_lowercase())),
        "{service}"
    );
}
