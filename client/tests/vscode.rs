//! The VS Code extension (client/editors/vscode) builds, passes its own unit tests and
//! packages as a .vsix holding the compiled extension and its runtime dependency. The
//! work is `tests/support/vscode-extension.sh` (npm ci, tsc, node --test, vsce package),
//! done once per source version under target/; VS Code itself cannot run here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_extension_builds_passes_its_tests_and_packages() {
    let out = Command::new("bash")
        .arg(repo().join("tests/support/vscode-extension.sh"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!("skipped: {}", stderr.trim());
        return;
    }
    assert!(
        out.status.success(),
        "the extension build failed:\n{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let vsix = PathBuf::from(stdout.lines().last().unwrap().trim());
    // A .vsix is a zip: list it with Python's zipfile (Python is needed by the suite anyway).
    let list = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(&vsix)
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let names = String::from_utf8(list.stdout).unwrap();
    for want in [
        "extension/package.json",
        "extension/out/src/extension.js",
        "extension/out/src/logic.js",
        "extension/node_modules/vscode-languageclient/package.json",
        "extension/readme.md",
    ] {
        assert!(
            names.lines().any(|l| l == want),
            "{want} is not in {}",
            vsix.display()
        );
    }
    assert!(
        !names
            .lines()
            .any(|l| l.starts_with("extension/out/test/") || l.ends_with(".ts")),
        "tests or sources were packaged:\n{names}"
    );
    let manifest =
        std::fs::read_to_string(repo().join("client/editors/vscode/package.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(
        manifest["contributes"]["configuration"]["properties"]["skillmeat.smctlPath"]["default"],
        "smctl"
    );
}
