//! SkillMeat's files, read exactly as the formats doc describes them.
//!
//! Plain functions over plain data: each reader takes a path and returns what it could
//! parse plus a [`Problem`] for every file or record it could not use, so one bad record
//! never hides the rest. The engine calls these; nothing here caches or watches.
//!
//! - [`config`]: `~/.skillmeat/config.toml` (the active collection).
//! - [`collection`]: `collections/<name>/collection.toml` and `collection.lock`.
//! - [`deployment`]: `<project>/<root>/.skillmeat-deployed.toml`, one per profile root.
//! - [`frontmatter`]: the `version:` of a Markdown artifact.
//! - [`deployment_write`], [`lock_write`]: edits of one deployment record or one
//!   `collection.lock` entry that keep every other byte, written through [`crate::writer`].
//! - [`rollback_audit`]: appending to `~/.skillmeat/audit/<collection>_rollback_audit.toml`.
//! - [`timestamp`]: SkillMeat's timestamp strings; [`tomli_style`]: values as `tomli_w` writes them.

pub mod collection;
pub mod config;
pub mod deployment;
pub mod deployment_write;
pub mod frontmatter;
pub mod lock_write;
pub mod rollback_audit;
pub mod timestamp;
pub mod tomli_style;

use std::path::{Path, PathBuf};

/// A file or record that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
    /// The project concerned, when there is one.
    pub project: Option<PathBuf>,
}

impl Problem {
    /// A problem with `path`.
    pub fn new(path: &Path, message: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            message: message.into(),
            project: None,
        }
    }
}

/// The SkillMeat name used to match artifacts: one extension among `.md .txt .json .yaml
/// .yml` stripped (`core/collection.py` `_normalize_name`).
pub fn normalize_name(name: &str) -> &str {
    for ext in [".md", ".txt", ".json", ".yaml", ".yml"] {
        if let Some(stem) = name.strip_suffix(ext) {
            return stem;
        }
    }
    name
}

/// Reads a TOML file into a table, describing a failure in one line with its position.
pub(crate) fn read_toml(path: &Path) -> Result<toml::Table, String> {
    let bytes = crate::regular::read(path).map_err(|e| format!("cannot read: {e}"))?;
    parse_toml(&bytes)
}

/// Parses TOML bytes into a table, describing a failure in one line with its position.
pub fn parse_toml(bytes: &[u8]) -> Result<toml::Table, String> {
    let text = toml_text(bytes)?;
    text.parse::<toml::Table>()
        .map_err(|e| describe_toml_error(text, &e))
}

/// Parses TOML bytes into a table that borrows its strings from them (no copy of each
/// string, no second tree built), for the files read on every start; a failure is
/// described as by [`parse_toml`].
pub(crate) fn parse_toml_borrowed(bytes: &[u8]) -> Result<toml::de::DeTable<'_>, String> {
    let text = toml_text(bytes)?;
    let table = toml::de::DeTable::parse(text)
        .map(toml::Spanned::into_inner)
        .map_err(|e| describe_toml_error(text, &e))?;
    check_numbers(text, &table)?;
    Ok(table)
}

/// Refuses a number a [`toml::Table`] cannot hold (an integer beyond `i64`, a float that
/// overflows), as [`parse_toml`] does: a borrowed table keeps numbers as their text.
fn check_numbers(text: &str, table: &toml::de::DeTable<'_>) -> Result<(), String> {
    use toml::de::DeValue;
    let mut pending: Vec<&toml::Spanned<DeValue<'_>>> = table.values().collect();
    while let Some(v) = pending.pop() {
        let problem = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .is_err()
                .then_some("integer number overflowed"),
            DeValue::Float(f) => f
                .as_str()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() || f.as_str().contains("inf"))
                .is_none()
                .then_some("floating-point number overflowed"),
            DeValue::Array(a) => {
                pending.extend(a.iter());
                None
            }
            DeValue::Table(t) => {
                pending.extend(t.values());
                None
            }
            DeValue::String(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => None,
        };
        if let Some(msg) = problem {
            let line = text[..v.span().start.min(text.len())]
                .lines()
                .count()
                .max(1);
            return Err(format!("invalid TOML at line {line}: {msg}"));
        }
    }
    Ok(())
}

fn toml_text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_string())
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].lines().count().max(1);
            format!("invalid TOML at line {line}: {msg}")
        }
        None => format!("invalid TOML: {msg}"),
    }
}

/// A TOML table, parsed owned or borrowed, as the field checks read it.
pub(crate) trait Fields {
    /// The value at `key`: its string, or the name of its type (`integer`, `table`, …).
    fn field(&self, key: &str) -> Option<Result<&str, &'static str>>;
}

impl Fields for toml::Table {
    fn field(&self, key: &str) -> Option<Result<&str, &'static str>> {
        self.get(key).map(|v| v.as_str().ok_or(v.type_str()))
    }
}

impl Fields for toml::de::DeTable<'_> {
    fn field(&self, key: &str) -> Option<Result<&str, &'static str>> {
        self.get(key)
            .map(|v| v.get_ref().as_str().ok_or(v.get_ref().type_str()))
    }
}

/// A string field of a TOML table.
pub(crate) fn str_field<'a>(t: &'a impl Fields, key: &str) -> Option<&'a str> {
    t.field(key).and_then(Result::ok)
}

/// What is wrong with the string fields `keys` of `t`, in one line: each present with
/// another type (``artifact_type: expected a string, found an integer``), then those
/// missing (``missing required key(s): name, path``). `None` when all are strings.
pub(crate) fn string_fields_problem(t: &impl Fields, keys: &[&str]) -> Option<String> {
    let mut parts = Vec::new();
    let mut missing = Vec::new();
    for &k in keys {
        match t.field(k) {
            None => missing.push(k),
            Some(Err(type_name)) => parts.push(format!(
                "{k}: expected a string, found {}",
                with_article(type_name)
            )),
            Some(Ok(_)) => {}
        }
    }
    if !missing.is_empty() {
        parts.push(format!("missing required key(s): {}", missing.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `an integer`, `a string`, …
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// Whether a relative path from a SkillMeat file stays inside its base (no absolute path,
/// no `..`).
pub(crate) fn is_contained(rel: &Path) -> bool {
    rel.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_table_refuses_the_numbers_an_owned_one_does() {
        for text in [
            "x = 999999999999999999999999999\n",
            "[a]\nb = [1, 2, {c = 0x1ffffffffffffffff}]\n",
            "x = 1e999\n",
        ] {
            let owned = parse_toml(text.as_bytes()).unwrap_err();
            let borrowed = parse_toml_borrowed(text.as_bytes()).unwrap_err();
            assert!(owned.starts_with("invalid TOML at line"), "{owned}");
            assert!(borrowed.starts_with("invalid TOML at line"), "{borrowed}");
        }
        let fine = "x = -9223372036854775808\ny = inf\nz = [1.5, {w = 0o777}]\n";
        assert!(parse_toml(fine.as_bytes()).is_ok());
        assert!(parse_toml_borrowed(fine.as_bytes()).is_ok());
    }

    #[test]
    fn normalize_strips_one_known_extension() {
        assert_eq!(normalize_name("review.md"), "review");
        assert_eq!(normalize_name("flow.yaml"), "flow");
        assert_eq!(normalize_name("a.md.md"), "a.md");
        assert_eq!(normalize_name("canvas"), "canvas");
        assert_eq!(normalize_name("x.rs"), "x.rs");
    }

    #[test]
    fn containment() {
        assert!(is_contained(Path::new("skills/x")));
        assert!(!is_contained(Path::new("../x")));
        assert!(!is_contained(Path::new("/etc/passwd")));
        assert!(!is_contained(Path::new("skills/../../x")));
    }

    #[test]
    fn wrong_types_are_told_apart_from_missing_keys() {
        let t: toml::Table = "a = \"x\"\nb = 42\nc = [1]\n".parse().unwrap();
        assert_eq!(string_fields_problem(&t, &["a"]), None);
        assert_eq!(
            string_fields_problem(&t, &["a", "b", "c", "d", "e"]).unwrap(),
            "b: expected a string, found an integer; c: expected a string, found an array; \
             missing required key(s): d, e"
        );
    }

    #[test]
    fn toml_errors_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.toml");
        std::fs::write(&p, "a = 1\nb = = 2\n").unwrap();
        let err = read_toml(&p).unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}
