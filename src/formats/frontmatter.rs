//! The `version:` field of a Markdown artifact's YAML front matter, which SkillMeat reports
//! as `collection_version` (`"unknown"` when absent).

use std::io::{BufRead, BufReader};
use std::path::Path;

/// How far into a file the front matter may reach before we give up looking.
const MAX_LINES: usize = 200;

/// The front-matter `version` of a skill folder (its `SKILL.md`) or a Markdown file.
pub fn version_of(artifact: &Path) -> Option<String> {
    let file = if artifact.is_dir() {
        artifact.join("SKILL.md")
    } else {
        artifact.to_path_buf()
    };
    let reader = BufReader::new(crate::regular::open(&file).ok()?);
    let mut lines = reader.lines().map_while(Result::ok).take(MAX_LINES);
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    for line in lines {
        if line.trim_end() == "---" {
            break;
        }
        if let Some(v) = line.strip_prefix("version:") {
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            return (!v.is_empty()).then(|| v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_version_in_front_matter_only() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.md");
        std::fs::write(&f, "---\nname: a\nversion: \"1.2.0\"\n---\nversion: 9\n").unwrap();
        assert_eq!(version_of(&f).as_deref(), Some("1.2.0"));
        std::fs::write(&f, "no front matter\nversion: 9\n").unwrap();
        assert_eq!(version_of(&f), None);
        std::fs::create_dir(d.path().join("s")).unwrap();
        std::fs::write(d.path().join("s/SKILL.md"), "---\nversion: 2\n---\n").unwrap();
        assert_eq!(version_of(&d.path().join("s")).as_deref(), Some("2"));
    }
}
