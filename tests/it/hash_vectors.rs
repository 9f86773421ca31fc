//! `skillmeatd hash` against every vector made by SkillMeat's own hash functions
//! (`tests/data/hash-vectors`, a copy of shared/vectors/hash): every `legacy` value, and
//! every `legacy_deployed_copy` (what `skillmeat deploy` records) with `--deployed-copy`.

use std::path::{Path, PathBuf};

use crate::common::{Env, skillmeatd_bin, write};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hash-vectors")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    if !from.exists() {
        return;
    }
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Materialises one case in `dir` following expected.toml's recipe.
fn materialise(name: &str, case: &toml::Table, dir: &Path) {
    let tree = dir.join("tree");
    copy_tree(&vectors_dir().join(name).join("tree"), &tree);
    if let Some(files) = case.get("files").and_then(|f| f.as_table()) {
        for (rel, sha) in files {
            let got =
                skillmeatd::hash::content_hash(&tree.join(rel), skillmeatd::hash::Variant::Legacy)
                    .unwrap();
            assert_eq!(
                &got,
                sha.as_str().unwrap(),
                "{name}/{rel}: stored file altered (EOL conversion?)"
            );
        }
    }
    for d in case
        .get("recipe_dirs")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(tree.join(d.as_str().unwrap())).unwrap();
    }
    if let Some(files) = case.get("recipe_files").and_then(|f| f.as_table()) {
        for (rel, content) in files {
            write(&tree.join(rel), content.as_str().unwrap());
        }
    }
    if let Some(links) = case.get("recipe_symlinks").and_then(|f| f.as_table()) {
        for (rel, target) in links {
            std::os::unix::fs::symlink(target.as_str().unwrap(), tree.join(rel)).unwrap();
        }
    }
}

fn hash_cli(env: &Env, path: &Path, deployed_copy: bool) -> Result<String, String> {
    let mut c = env.command(&skillmeatd_bin());
    c.arg("hash");
    if deployed_copy {
        c.arg("--deployed-copy");
    }
    let out = c.arg(path).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let line = String::from_utf8(out.stdout).unwrap();
    let (hash, printed) = line.trim_end().split_once("  ").unwrap();
    assert_eq!(printed, path.display().to_string());
    Ok(hash.to_string())
}

#[test]
fn every_vector_matches_skillmeat() {
    let expected: toml::Table = std::fs::read_to_string(vectors_dir().join("expected.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let cases = expected["cases"].as_table().unwrap();
    assert!(
        cases.len() >= 16,
        "expected.toml lists {} cases",
        cases.len()
    );
    let env = Env::new();
    for (name, case) in cases {
        let case = case.as_table().unwrap();
        let dir = env.path(&format!("vectors/{name}"));
        materialise(name, case, &dir);
        let artifact = dir.join(case["artifact"].as_str().unwrap());
        let legacy = hash_cli(&env, &artifact, false).unwrap();
        assert_eq!(legacy, case["legacy"].as_str().unwrap(), "{name}: legacy");
        let deployed = case["legacy_deployed_copy"].as_str().unwrap();
        match hash_cli(&env, &artifact, true) {
            Ok(h) => assert_eq!(h, deployed, "{name}: deployed copy"),
            Err(e) => assert_eq!(deployed, "ERROR", "{name}: unexpected error {e}"),
        }
    }
}

#[test]
fn missing_path_is_an_error_and_others_still_print() {
    let env = Env::new();
    let f = env.path("a.md");
    write(&f, "hello\n");
    let out = env
        .command(&skillmeatd_bin())
        .args(["hash"])
        .arg(env.path("nope"))
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  ")
    );
}
