//! Three-way merge: what the daemon writes when both sides of a deployment changed.
//!
//! Pure functions over bytes held in memory, so the inputs can come from the version
//! store, from disk or from a test alike; nothing here touches the filesystem. Called by
//! [`crate::operations`] (`merge` and `rollback --mode preserve`).
//!
//! - [`text`]: a line-based diff3 of one file (`base`, `local`, `remote` → merged bytes and
//!   the conflicting hunks), built on `similar`.
//! - [`tree`]: the same over whole artifacts (maps of relative path → bytes), following
//!   SkillMeat's per-file table (formats doc §6.2) but merging both-modified text files
//!   line by line instead of calling them conflicts.
//! - [`frontmatter`]: the merge of Markdown files with YAML front matter (SKILL.md,
//!   commands, agents): the front matter key by key, the body line by line.
//! - [`selfcheck`]: the properties every merge must have, shared by the fuzz targets and
//!   the bad-input corpus.
//!
//! # Sides
//! `Local` is the side being written to (the "current" content) and `Remote` the incoming
//! one, as in SkillMeat's markers `<<<<<<< LOCAL (current)` / `>>>>>>> REMOTE (incoming)`.
//! The operation decides which copy is which: SkillMeat's sync merge writes into the
//! collection with LOCAL = collection and REMOTE = project; a merge into a project swaps
//! them. An unresolved binary conflict keeps the `Local` bytes.
//!
//! # Where this differs from SkillMeat (§6.3), on purpose
//! - SkillMeat compares whole files and wraps a conflicting file in one marker block; we
//!   merge line by line and put markers around each conflicting hunk only, so edits on
//!   different lines of one file merge cleanly.
//! - SkillMeat reads text in universal-newline mode, so every file it merges comes out with
//!   LF endings, and invalid UTF-8 becomes U+FFFD. We compare and emit raw bytes: line
//!   endings of the inputs are kept exactly (a CRLF file stays CRLF, and a line whose only
//!   change is its ending counts as changed), nothing is re-encoded, and the marker lines
//!   use the ending of the local text (CRLF if its first line ends in CRLF, else LF).
//! - A file is binary (never line-merged, never given markers) if *any* present side has a
//!   NUL byte in its first 8192 bytes; SkillMeat looks at the base only when it exists.

pub mod frontmatter;
pub mod selfcheck;
pub mod text;
pub mod tree;

pub use text::{ConflictHunk, TextMerge, merge_text};
pub use tree::{ConflictKind, FileConflict, FileOutcome, Taken, Tree, TreeMerge, merge_trees};

/// How many leading bytes SkillMeat inspects for a NUL byte (`diff_engine.py`).
pub const BINARY_SNIFF_LEN: usize = 8192;

/// One side of a three-way merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The content being written to ("current").
    Local,
    /// The incoming content.
    Remote,
}

/// What to do with a conflicting hunk or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// Leave SkillMeat's conflict markers in text; keep the local bytes of binary files.
    #[default]
    Markers,
    /// Take this side's version of every conflicting hunk or file.
    Prefer(Side),
    /// Keep both sides' lines of every conflicting text hunk (local first); binary files
    /// and delete/modify conflicts stay conflicts.
    Union,
}

/// Whether SkillMeat would treat `bytes` as binary: a NUL byte among the first 8192.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_SNIFF_LEN)].contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_means_nul_in_the_first_8192_bytes() {
        assert!(!is_binary(b""));
        assert!(!is_binary("caf\u{e9}\r\n".as_bytes()));
        assert!(is_binary(b"PK\x03\x04\0\0"));
        let mut late = vec![b'a'; BINARY_SNIFF_LEN];
        late.push(0);
        assert!(!is_binary(&late), "a NUL after byte 8192 is not looked at");
        late[BINARY_SNIFF_LEN - 1] = 0;
        assert!(is_binary(&late));
    }
}
