//! `smctl log --graph`: the version graph of one artifact drawn like
//! `git log --graph --oneline`, one version a line with its location.
//!
//! The rows come from the daemon children first. Each column holds the version a line is
//! waiting for; a version takes the column that waits for it (or a new one), lines that
//! waited for it too join it (`|/`), and its further parents open new columns (`|\`).

use std::io::{self, Write};

use skillmeatd_proto::pb;

/// Where a version lives, as printed and in JSON: `collection NAME` or `project FOLDER`
/// (with the profile root when it is not `.claude`).
pub fn location(v: &pb::VersionInfo) -> String {
    match v.scope.as_str() {
        "collection" => format!("collection {}", v.owner),
        _ if v.profile_root.is_empty() || v.profile_root == ".claude" => {
            format!("project {}", v.owner)
        }
        _ => format!("project {} ({})", v.owner, v.profile_root),
    }
}

/// Every parent of `v` (older daemons fill `parent` only).
pub fn parents(v: &pb::VersionInfo) -> Vec<String> {
    if v.parents.is_empty() && !v.parent.is_empty() {
        vec![v.parent.clone()]
    } else {
        v.parents.clone()
    }
}

/// A node row: `*` in column `col`, `|` in every other occupied column.
fn row(columns: &[Option<String>], col: usize) -> String {
    let mut s = String::new();
    for (i, c) in columns.iter().enumerate() {
        s.push(match (i == col, c.is_some()) {
            (true, _) => '*',
            (false, true) => '|',
            (false, false) => ' ',
        });
        s.push(' ');
    }
    s.trim_end().to_string()
}

/// A row where the columns in `moving` bend towards (`/`) or away from (`\`) the column
/// on their left: the mark sits in the gap before them, as git draws it.
fn bend(columns: &[Option<String>], moving: &[usize], mark: char) -> String {
    let mut s: Vec<char> = vec![' '; columns.len() * 2];
    for (i, c) in columns.iter().enumerate() {
        if moving.contains(&i) {
            s[2 * i - 1] = mark;
        } else if c.is_some() {
            s[2 * i] = '|';
        }
    }
    s.into_iter().collect::<String>().trim_end().to_string()
}

/// The drawn lines for `versions` (children before parents).
pub fn lines(versions: &[pb::VersionInfo]) -> Vec<String> {
    let known: std::collections::HashSet<&str> = versions.iter().map(|v| v.id.as_str()).collect();
    let mut columns: Vec<Option<String>> = Vec::new();
    let mut out = Vec::new();
    for v in versions {
        let waiting: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i].as_deref() == Some(v.id.as_str()))
            .collect();
        let col = match waiting.first() {
            Some(&c) => c,
            None => match columns.iter().position(Option::is_none) {
                Some(free) => free,
                None => {
                    columns.push(None);
                    columns.len() - 1
                }
            },
        };
        columns[col] = Some(v.id.clone());
        if waiting.len() > 1 {
            out.push(bend(&columns, &waiting[1..], '/'));
            for &i in &waiting[1..] {
                columns[i] = None;
            }
        }
        let hash = &v.content_hash[..v.content_hash.len().min(12)];
        out.push(format!(
            "{}  {} {}  {} {} {}",
            row(&columns, col),
            v.id,
            location(v),
            v.origin,
            hash,
            v.time
        ));
        let ps: Vec<String> = parents(v)
            .into_iter()
            .filter(|p| known.contains(p.as_str()))
            .collect();
        columns[col] = ps.first().cloned();
        let mut opened = Vec::new();
        for p in ps.iter().skip(1) {
            if columns.iter().any(|c| c.as_deref() == Some(p.as_str())) {
                continue;
            }
            let slot = match columns.iter().position(Option::is_none) {
                Some(free) if free > col => free,
                _ => {
                    columns.push(None);
                    columns.len() - 1
                }
            };
            columns[slot] = Some(p.clone());
            opened.push(slot);
        }
        if !opened.is_empty() {
            out.push(bend(&columns, &opened, '\\'));
        }
        while columns.last().is_some_and(Option::is_none) {
            columns.pop();
        }
    }
    out
}

/// Prints the graph.
///
/// # Errors
/// Writing failed.
pub fn print(out: &mut impl Write, versions: &[pb::VersionInfo]) -> io::Result<()> {
    for l in lines(versions) {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, scope: &str, parents: &[&str]) -> pb::VersionInfo {
        pb::VersionInfo {
            id: id.into(),
            scope: scope.into(),
            owner: if scope == "collection" {
                "default".into()
            } else {
                "/p".into()
            },
            profile_root: ".claude".into(),
            content_hash: "abcdef0123456789".into(),
            parent: parents.first().map(|p| p.to_string()).unwrap_or_default(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            origin: "watch".into(),
            time: "t".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_fork_and_a_merge_draw_like_git() {
        // v5 = merge of v4 (project) and v3 (collection); v4 ← v2 (project) ← v1; v3 ← v1.
        let list = [
            v("v5", "project", &["v4", "v3"]),
            v("v4", "project", &["v2"]),
            v("v3", "collection", &["v1"]),
            v("v2", "project", &["v1"]),
            v("v1", "collection", &[]),
        ];
        let tail = "watch abcdef012345 t";
        assert_eq!(
            lines(&list),
            [
                format!("*  v5 project /p  {tail}"),
                "|\\".to_string(),
                format!("* |  v4 project /p  {tail}"),
                format!("| *  v3 collection default  {tail}"),
                format!("* |  v2 project /p  {tail}"),
                "|/".to_string(),
                format!("*  v1 collection default  {tail}"),
            ]
        );
    }

    #[test]
    fn parents_outside_the_list_and_old_daemons_are_handled() {
        let mut old = v("v9", "project", &[]);
        old.parent = "v8".into();
        assert_eq!(parents(&old), ["v8"]);
        // v8 is not listed (pruned): the line ends there.
        assert_eq!(lines(&[old]).len(), 1);
    }
}
