//! Frontmatter-aware merge of Markdown files (SKILL.md, commands, agents): the YAML front
//! matter is merged key by key, the body line by line.
//!
//! A line merge of front matter conflicts whenever both sides change neighbouring lines
//! (`description:` on one side, `version:` just below on the other), although YAML keys
//! are independent. Here the front matter is cut into blocks — a top-level `key:` line and
//! the indented, list or comment lines under it — and each key is decided on its own: taken
//! from the side that changed it, or line-merged when both did. Nothing is parsed into
//! values and written back: every byte of the result is a byte of one of the inputs (or a
//! conflict marker), so quoting, comments, spacing and key order the user chose stay as
//! they were. Keys keep the local order; a key only the remote added goes after the key it
//! follows there.
//!
//! Applies when the file ends in `.md` and the local and remote sides (and the base, unless
//! it is empty) open with a `---` line closed by another, with no key twice; otherwise
//! [`merge`] answers `None` and the caller merges lines.

use std::path::Path;

use super::Resolution;
use super::text::{ConflictHunk, TextMerge, merge_text, split_lines};

/// One block of front matter: a top-level key (None for lines before the first key) and
/// its bytes, starting at line `line` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block<'a> {
    key: Option<&'a [u8]>,
    bytes: &'a [u8],
    line: usize,
}

/// A file cut into opening line, front matter blocks, closing line and body.
#[derive(Debug, Default)]
struct Parsed<'a> {
    open: &'a [u8],
    blocks: Vec<Block<'a>>,
    close: &'a [u8],
    body: &'a [u8],
    body_line: usize,
}

impl<'a> Parsed<'a> {
    fn block(&self, key: Option<&[u8]>) -> Option<&Block<'a>> {
        self.blocks.iter().find(|b| b.key == key)
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The key a top-level `key: value` line names.
fn key_of(line: &[u8]) -> Option<&[u8]> {
    let first = *line.first()?;
    if matches!(first, b' ' | b'\t' | b'#' | b'-' | b'\r' | b'\n') {
        return None;
    }
    let colon = line.iter().position(|&c| c == b':')?;
    let key = line[..colon].trim_ascii();
    (!key.is_empty()).then_some(key)
}

fn parse(text: &[u8]) -> Option<Parsed<'_>> {
    let lines = split_lines(text);
    if trim_eol(lines.first()?) != b"---" {
        return None;
    }
    let close = 1 + lines[1..].iter().position(|l| trim_eol(l) == b"---")?;
    let mut offset = lines[0].len();
    let mut blocks: Vec<Block> = Vec::new();
    for (i, line) in lines.iter().enumerate().take(close).skip(1) {
        let start = offset;
        offset += line.len();
        match (key_of(line), blocks.last_mut()) {
            (None, Some(last)) => last.bytes = &text[start - last.bytes.len()..offset],
            (key, _) => {
                if key.is_some() && blocks.iter().any(|b| b.key == key) {
                    return None;
                }
                blocks.push(Block {
                    key,
                    bytes: &text[start..offset],
                    line: i,
                });
            }
        }
    }
    let close_line = lines[close];
    Some(Parsed {
        open: lines[0],
        blocks,
        close: close_line,
        body: &text[offset + close_line.len()..],
        body_line: close + 1,
    })
}

/// The order of the merged keys: local's, with keys only remote has placed after the key
/// they follow in remote (or first).
fn key_order<'a>(
    local: &Parsed<'a>,
    remote: &Parsed<'a>,
    base: &Parsed<'a>,
) -> Vec<Option<&'a [u8]>> {
    let mut order: Vec<Option<&[u8]>> = local.blocks.iter().map(|b| b.key).collect();
    let mut after: Option<Option<&[u8]>> = None;
    for b in &remote.blocks {
        if !order.contains(&b.key) {
            let at = after
                .and_then(|k| order.iter().position(|o| *o == k))
                .map_or(0, |p| p + 1);
            order.insert(at, b.key);
        }
        after = Some(b.key);
    }
    for b in &base.blocks {
        if !order.contains(&b.key) {
            order.push(b.key);
        }
    }
    order
}

/// Merged text being built, with its conflicts placed in file coordinates.
struct Out {
    bytes: Vec<u8>,
    conflicts: Vec<ConflictHunk>,
}

impl Out {
    fn lines(&self) -> usize {
        self.bytes.iter().filter(|&&b| b == b'\n').count()
    }

    /// Appends the merge of one part, whose lines start at `at` = (base, local, remote).
    fn part(&mut self, m: TextMerge, at: (usize, usize, usize)) {
        let before = self.lines();
        for c in m.conflicts {
            self.conflicts.push(ConflictHunk {
                base: c.base.start + at.0..c.base.end + at.0,
                local: c.local.start + at.1..c.local.end + at.1,
                remote: c.remote.start + at.2..c.remote.end + at.2,
                merged_line: c.merged_line + before,
            });
        }
        self.bytes.extend_from_slice(&m.merged);
    }
}

/// Merges a Markdown file with front matter (see the module doc); `None` when it does not
/// apply and the caller should merge lines.
pub fn merge(
    path: &Path,
    base: &[u8],
    local: &[u8],
    remote: &[u8],
    resolution: Resolution,
) -> Option<TextMerge> {
    let md = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md"));
    if !md {
        return None;
    }
    let (l, r) = (parse(local)?, parse(remote)?);
    let b = if base.is_empty() {
        Parsed::default()
    } else {
        parse(base)?
    };
    let mut out = Out {
        bytes: l.open.to_vec(),
        conflicts: Vec::new(),
    };
    for key in key_order(&l, &r, &b) {
        let (bb, lb, rb) = (b.block(key), l.block(key), r.block(key));
        let line = |x: Option<&Block>| x.map_or(0, |x| x.line);
        let (bv, lv, rv) = (
            bb.map(|x| x.bytes),
            lb.map(|x| x.bytes),
            rb.map(|x| x.bytes),
        );
        let chosen = if lv == rv || bv == rv {
            Some(lv)
        } else if bv == lv {
            Some(rv)
        } else {
            None
        };
        match chosen {
            Some(v) => out.bytes.extend_from_slice(v.unwrap_or_default()),
            None => {
                let m = merge_text(
                    bv.unwrap_or_default(),
                    lv.unwrap_or_default(),
                    rv.unwrap_or_default(),
                    resolution,
                );
                out.part(m, (line(bb), line(lb), line(rb)));
            }
        }
    }
    out.bytes.extend_from_slice(l.close);
    let body = merge_text(b.body, l.body, r.body, resolution);
    out.part(body, (b.body_line, l.body_line, r.body_line));
    Some(TextMerge {
        merged: out.bytes,
        conflicts: out.conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::text::MARKER_LOCAL;

    const BASE: &str = "---\nname: review\ndescription: Reviews code\nversion: 1.0.0\ntools:\n  - Read\n  - Grep\n---\n# Review\n\nStep one.\nStep two.\n";

    fn fm(base: &str, local: &str, remote: &str) -> TextMerge {
        merge(
            Path::new("skills/review/SKILL.md"),
            base.as_bytes(),
            local.as_bytes(),
            remote.as_bytes(),
            Resolution::Markers,
        )
        .expect("front matter on every side")
    }

    #[test]
    fn neighbouring_keys_changed_on_each_side_merge_cleanly() {
        let local = BASE.replace("Reviews code", "Reviews code carefully");
        let remote = BASE.replace("1.0.0", "1.1.0");
        // A line merge calls this a conflict: the two lines touch.
        assert!(
            !merge_text(
                BASE.as_bytes(),
                local.as_bytes(),
                remote.as_bytes(),
                Resolution::Markers
            )
            .is_clean()
        );
        let m = fm(BASE, &local, &remote);
        assert!(m.is_clean(), "{}", String::from_utf8_lossy(&m.merged));
        assert_eq!(
            String::from_utf8(m.merged).unwrap(),
            BASE.replace("Reviews code", "Reviews code carefully")
                .replace("1.0.0", "1.1.0")
        );
    }

    #[test]
    fn keys_and_body_merge_independently_and_formatting_is_kept_byte_for_byte() {
        // Odd but valid YAML a serializer would rewrite: quotes, comments, spacing, CRLF.
        let base = "---\r\n# owner: team\r\nname:   'review'\r\ntools: [Read,  Grep]\r\n---\r\nBody one.\r\nBody two.\r\n";
        let local = base.replace("Body two.", "Body two, edited.");
        let remote = base.replace(
            "tools: [Read,  Grep]",
            "tools: [Read,  Grep, Bash]\r\nmodel:  \"opus\"  # pinned",
        );
        let m = fm(base, &local, &remote);
        assert!(m.is_clean());
        assert_eq!(
            String::from_utf8(m.merged).unwrap(),
            "---\r\n# owner: team\r\nname:   'review'\r\ntools: [Read,  Grep, Bash]\r\nmodel:  \"opus\"  # pinned\r\n---\r\nBody one.\r\nBody two, edited.\r\n"
        );
    }

    #[test]
    fn a_key_added_by_remote_goes_after_the_key_it_follows_and_deletions_are_kept() {
        let local = BASE.replace("version: 1.0.0\n", "");
        let remote = BASE.replace("name: review\n", "name: review\nlicense: MIT\n");
        let m = fm(BASE, &local, &remote);
        assert!(m.is_clean());
        let text = String::from_utf8(m.merged).unwrap();
        assert!(
            text.starts_with("---\nname: review\nlicense: MIT\ndescription:"),
            "{text}"
        );
        assert!(!text.contains("version:"), "{text}");
    }

    #[test]
    fn the_same_key_changed_differently_conflicts_on_that_key_only() {
        let local = BASE
            .replace("1.0.0", "2.0.0")
            .replace("Step one.", "Step one, local.");
        let remote = BASE
            .replace("1.0.0", "1.5.0")
            .replace("Reviews code", "Checks code");
        let m = fm(BASE, &local, &remote);
        assert_eq!(m.conflicts.len(), 1);
        let text = String::from_utf8(m.merged.clone()).unwrap();
        assert!(text.contains("description: Checks code\n"), "{text}");
        assert!(text.contains("Step one, local."), "{text}");
        let marker_line = text.lines().position(|l| l == MARKER_LOCAL).unwrap() + 1;
        assert_eq!(m.conflicts[0].merged_line, marker_line);
        assert_eq!(m.conflicts[0].base, 3..4, "the version line of the base");

        let ours = merge(
            Path::new("a.md"),
            BASE.as_bytes(),
            local.as_bytes(),
            remote.as_bytes(),
            Resolution::Prefer(crate::merge::Side::Local),
        )
        .unwrap();
        assert!(
            String::from_utf8(ours.merged)
                .unwrap()
                .contains("version: 2.0.0\n")
        );
    }

    #[test]
    fn files_without_front_matter_or_not_markdown_are_left_to_the_line_merge() {
        let plain = "# Title\nText\n";
        assert!(
            merge(
                Path::new("a.md"),
                plain.as_bytes(),
                plain.as_bytes(),
                plain.as_bytes(),
                Resolution::Markers
            )
            .is_none()
        );
        assert!(
            merge(
                Path::new("a.txt"),
                BASE.as_bytes(),
                BASE.as_bytes(),
                BASE.as_bytes(),
                Resolution::Markers
            )
            .is_none()
        );
        let twice = "---\nname: a\nname: b\n---\n";
        assert!(
            merge(
                Path::new("a.md"),
                BASE.as_bytes(),
                twice.as_bytes(),
                BASE.as_bytes(),
                Resolution::Markers
            )
            .is_none()
        );
        let unclosed = "---\nname: a\n";
        assert!(
            merge(
                Path::new("a.md"),
                BASE.as_bytes(),
                unclosed.as_bytes(),
                BASE.as_bytes(),
                Resolution::Markers
            )
            .is_none()
        );
    }
}
