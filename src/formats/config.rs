//! `~/.skillmeat/config.toml`: the only fact the daemon needs is the active collection
//! (`settings.default-collection`, default `"default"`).

use std::path::Path;

use super::{Problem, read_toml};

/// The collection SkillMeat treats as active when none is named.
pub fn default_collection(home: &Path) -> (String, Option<Problem>) {
    let path = home.join("config.toml");
    if !path.exists() {
        return ("default".into(), None);
    }
    match read_toml(&path) {
        Ok(t) => (active_collection(&t), None),
        Err(e) => ("default".into(), Some(Problem::new(&path, e))),
    }
}

/// The active collection named by a parsed `config.toml`.
pub fn active_collection(t: &toml::Table) -> String {
    t.get("settings")
        .and_then(|s| s.get("default-collection"))
        .and_then(toml::Value::as_str)
        .unwrap_or("default")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_active_collection_and_defaults() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(default_collection(d.path()).0, "default");
        std::fs::write(
            d.path().join("config.toml"),
            "[settings]\ndefault-collection = \"work\"\n",
        )
        .unwrap();
        assert_eq!(default_collection(d.path()).0, "work");
        std::fs::write(d.path().join("config.toml"), "[settings\n").unwrap();
        let (name, problem) = default_collection(d.path());
        assert_eq!(name, "default");
        assert!(problem.is_some());
    }
}
