//! diff3 of one text: `base`, `local` and `remote` bytes → merged bytes plus the hunks
//! that both sides changed differently.
//!
//! The classic algorithm: diff base→local and base→remote (Myers, from `similar`), walk
//! the base looking for lines both diffs kept ("sync points"), and decide each stretch in
//! between on its own: changed on one side only → that side; changed identically → once;
//! changed differently → a conflict, written as SkillMeat's markers around that stretch
//! only (or the preferred side). Lines are compared as raw bytes including their ending,
//! so CRLF text round-trips untouched (see the parent module for why).

use std::ops::Range;

use similar::{Algorithm, DiffOp, capture_diff_slices};

use super::{Resolution, Side};

/// First line of a conflict block (SkillMeat `merge_engine.py`).
pub const MARKER_LOCAL: &str = "<<<<<<< LOCAL (current)";
/// Separator between the local and the remote lines of a conflict block.
pub const MARKER_SEPARATOR: &str = "=======";
/// Last line of a conflict block.
pub const MARKER_REMOTE: &str = ">>>>>>> REMOTE (incoming)";

/// A stretch of lines both sides changed differently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConflictHunk {
    /// Lines of the base (0-based, end exclusive).
    pub base: Range<usize>,
    /// Lines of the local text.
    pub local: Range<usize>,
    /// Lines of the remote text.
    pub remote: Range<usize>,
    /// 1-based line of the merged text where the hunk starts: its `<<<<<<<` line, or the
    /// first line taken from the preferred side.
    pub merged_line: usize,
}

/// The result of merging one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMerge {
    /// The merged bytes: markers around each conflict, or the preferred side's lines.
    pub merged: Vec<u8>,
    /// Every hunk both sides changed differently, in order, whether or not a preference
    /// resolved it.
    pub conflicts: Vec<ConflictHunk>,
}

impl TextMerge {
    /// Whether both sides' changes merged without overlapping.
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty()
    }
}

/// Splits `text` into lines, each keeping its `\n` (and so its `\r\n`); a last line
/// without one is kept as is.
pub fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

/// Merges `local` and `remote`, two descendants of `base`, line by line.
///
/// Never fails: any bytes are accepted (callers keep binary files away, see
/// [`super::is_binary`]).
pub fn merge_text(base: &[u8], local: &[u8], remote: &[u8], resolution: Resolution) -> TextMerge {
    let clean = |bytes: &[u8]| TextMerge {
        merged: bytes.to_vec(),
        conflicts: Vec::new(),
    };
    if local == remote || base == remote {
        return clean(local);
    }
    if base == local {
        return clean(remote);
    }
    let (b, l, r) = (split_lines(base), split_lines(local), split_lines(remote));
    let eol: &[u8] = [&l, &r, &b]
        .into_iter()
        .find_map(|lines| lines.first().filter(|x| x.ends_with(b"\n")))
        .map_or(b"\n", |first| {
            if first.ends_with(b"\r\n") {
                b"\r\n"
            } else {
                b"\n"
            }
        });
    let to_local = matches(&b, &l);
    let to_remote = matches(&b, &r);

    let mut out = Output {
        bytes: Vec::with_capacity(local.len().max(remote.len())),
        lines: 0,
        eol,
        resolution,
        conflicts: Vec::new(),
    };
    let (mut i, mut j, mut k) = (0, 0, 0);
    loop {
        let sync = (i..b.len()).find_map(|m| Some((m, to_local[m]?, to_remote[m]?)));
        let (bm, lm, rm) = sync.unwrap_or((b.len(), l.len(), r.len()));
        out.chunk((&b[i..bm], i..bm), (&l[j..lm], j..lm), (&r[k..rm], k..rm));
        if sync.is_none() {
            break;
        }
        let mut n = 0;
        while bm + n < b.len()
            && to_local[bm + n] == Some(lm + n)
            && to_remote[bm + n] == Some(rm + n)
        {
            out.line(b[bm + n]);
            n += 1;
        }
        (i, j, k) = (bm + n, lm + n, rm + n);
    }
    TextMerge {
        merged: out.bytes,
        conflicts: out.conflicts,
    }
}

/// For each line of `base`, the line of `other` a diff keeps it as, if any.
fn matches(base: &[&[u8]], other: &[&[u8]]) -> Vec<Option<usize>> {
    let mut map = vec![None; base.len()];
    for op in capture_diff_slices(Algorithm::Myers, base, other) {
        if let DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = op
        {
            for n in 0..len {
                map[old_index + n] = Some(new_index + n);
            }
        }
    }
    map
}

/// The merged text being built.
struct Output<'a> {
    bytes: Vec<u8>,
    lines: usize,
    eol: &'a [u8],
    resolution: Resolution,
    conflicts: Vec<ConflictHunk>,
}

type Stretch<'s, 'a> = (&'s [&'a [u8]], Range<usize>);

impl Output<'_> {
    fn line(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.lines += 1;
    }

    fn lines(&mut self, lines: &[&[u8]]) {
        for l in lines {
            self.line(l);
        }
    }

    /// Lines inside a marker block: the last one gets an ending if it had none, so the
    /// next marker starts its own line.
    fn block_lines(&mut self, lines: &[&[u8]]) {
        self.lines(lines);
        if lines.last().is_some_and(|l| !l.ends_with(b"\n")) {
            self.bytes.extend_from_slice(self.eol);
        }
    }

    fn marker(&mut self, marker: &str) {
        self.bytes.extend_from_slice(marker.as_bytes());
        self.bytes.extend_from_slice(self.eol);
        self.lines += 1;
    }

    /// Decides one stretch between sync points.
    fn chunk(&mut self, (b, br): Stretch, (l, lr): Stretch, (r, rr): Stretch) {
        if l == b || l == r {
            return self.lines(r);
        }
        if r == b {
            return self.lines(l);
        }
        self.conflicts.push(ConflictHunk {
            base: br,
            local: lr,
            remote: rr,
            merged_line: self.lines + 1,
        });
        match self.resolution {
            Resolution::Prefer(Side::Local) => self.lines(l),
            Resolution::Prefer(Side::Remote) => self.lines(r),
            Resolution::Union => {
                self.block_lines(l);
                self.lines(r);
            }
            Resolution::Markers => {
                self.marker(MARKER_LOCAL);
                self.block_lines(l);
                self.marker(MARKER_SEPARATOR);
                self.block_lines(r);
                self.marker(MARKER_REMOTE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(base: &str, local: &str, remote: &str) -> (String, Vec<ConflictHunk>) {
        let m = merge_text(
            base.as_bytes(),
            local.as_bytes(),
            remote.as_bytes(),
            Resolution::Markers,
        );
        (String::from_utf8(m.merged).unwrap(), m.conflicts)
    }

    const BASE: &str = "title\n\none\ntwo\nthree\nfour\nfive\n";

    #[test]
    fn edits_on_different_lines_merge_cleanly() {
        let local = "title\n\nONE\ntwo\nthree\nfour\nfive\n";
        let remote = "title\n\none\ntwo\nthree\nfour\nFIVE\nsix\n";
        let (text, conflicts) = merge(BASE, local, remote);
        assert_eq!(text, "title\n\nONE\ntwo\nthree\nfour\nFIVE\nsix\n");
        assert!(conflicts.is_empty());
    }

    #[test]
    fn overlapping_edits_get_skillmeat_markers_around_the_hunk_only() {
        let local = "title\n\none\nTWO local\nthree\nfour\nfive\n";
        let remote = "title\n\none\nTWO remote\nthree\nfour\nFIVE\n";
        let (text, conflicts) = merge(BASE, local, remote);
        assert_eq!(
            text,
            "title\n\none\n<<<<<<< LOCAL (current)\nTWO local\n=======\nTWO remote\n>>>>>>> REMOTE (incoming)\nthree\nfour\nFIVE\n"
        );
        assert_eq!(
            conflicts,
            vec![ConflictHunk {
                base: 3..4,
                local: 3..4,
                remote: 3..4,
                merged_line: 4
            }]
        );
    }

    #[test]
    fn identical_changes_on_both_sides_are_taken_once() {
        let both = "title\n\none\nchanged\nthree\nfour\nfive\n";
        let (text, conflicts) = merge(BASE, both, both);
        assert_eq!(text, both);
        assert!(conflicts.is_empty());
        let local = "title\n\none\nchanged\nthree\nfour\nfive\nlocal tail\n";
        let (text, conflicts) = merge(BASE, local, both);
        assert_eq!(text, local);
        assert!(conflicts.is_empty());
    }

    #[test]
    fn deletion_against_an_edit_elsewhere_merges() {
        let local = "title\n\none\nthree\nfour\nfive\n";
        let remote = "title\n\none\ntwo\nthree\nfour\nfive!\n";
        let (text, conflicts) = merge(BASE, local, remote);
        assert_eq!(text, "title\n\none\nthree\nfour\nfive!\n");
        assert!(conflicts.is_empty());
    }

    #[test]
    fn deletion_against_an_edit_of_the_same_line_conflicts() {
        let local = "title\n\none\nthree\nfour\nfive\n";
        let remote = "title\n\none\nTWO\nthree\nfour\nfive\n";
        let (text, conflicts) = merge(BASE, local, remote);
        assert_eq!(
            text,
            "title\n\none\n<<<<<<< LOCAL (current)\n=======\nTWO\n>>>>>>> REMOTE (incoming)\nthree\nfour\nfive\n"
        );
        assert_eq!(conflicts[0].local, 3..3);
    }

    #[test]
    fn crlf_text_keeps_its_line_endings_and_markers_follow_them() {
        let crlf = |s: &str| s.replace('\n', "\r\n");
        let (text, conflicts) = merge(
            &crlf(BASE),
            &crlf("title\n\nONE\ntwo\nthree\nfour\nfive\n"),
            &crlf("title\n\none\ntwo\nthree\nfour\nFIVE\n"),
        );
        assert_eq!(text, crlf("title\n\nONE\ntwo\nthree\nfour\nFIVE\n"));
        assert!(conflicts.is_empty());

        let (text, _) = merge(&crlf("a\nb\n"), &crlf("a\nL\n"), &crlf("a\nR\n"));
        assert_eq!(
            text,
            crlf("a\n<<<<<<< LOCAL (current)\nL\n=======\nR\n>>>>>>> REMOTE (incoming)\n")
        );
    }

    #[test]
    fn a_line_ending_change_is_a_change() {
        // Remote converted one line to CRLF; local left it alone: remote's bytes win.
        let (text, conflicts) = merge("a\nb\nc\n", "a\nb\nc\n", "a\nb\r\nc\n");
        assert_eq!(text, "a\nb\r\nc\n");
        assert!(conflicts.is_empty());
        // Both touched the same line, one only its ending: a conflict, not a silent pick.
        let (_, conflicts) = merge("a\nb\nc\n", "a\nB\nc\n", "a\nb\r\nc\n");
        assert_eq!(conflicts.len(), 1);
    }

    #[test]
    fn missing_final_newline_inside_a_conflict_does_not_swallow_the_marker() {
        let (text, conflicts) = merge("a\nb\n", "a\nlocal", "a\nremote");
        assert_eq!(
            text,
            "a\n<<<<<<< LOCAL (current)\nlocal\n=======\nremote\n>>>>>>> REMOTE (incoming)\n"
        );
        assert_eq!(conflicts.len(), 1);
        // Outside conflicts a missing final newline is kept as it is.
        let (text, _) = merge("a\nb\nc", "A\nb\nc", "a\nb\nC");
        assert_eq!(text, "A\nb\nC");
    }

    #[test]
    fn additions_at_the_same_place_conflict_and_prefer_picks_a_side() {
        let base = "a\nz\n";
        let local = "a\nfrom local\nz\n";
        let remote = "a\nfrom remote\nz\n";
        let (_, conflicts) = merge(base, local, remote);
        assert_eq!(conflicts.len(), 1);
        for (side, want) in [(Side::Local, local), (Side::Remote, remote)] {
            let m = merge_text(
                base.as_bytes(),
                local.as_bytes(),
                remote.as_bytes(),
                Resolution::Prefer(side),
            );
            assert_eq!(m.merged, want.as_bytes());
            assert_eq!(m.conflicts.len(), 1, "a preference still reports the hunk");
            assert!(!m.is_clean());
        }
    }

    #[test]
    fn prefer_only_affects_conflicting_hunks() {
        let base = "1\n2\n3\n4\n5\n";
        let local = "1L\n2\n3L\n4\n5\n";
        let remote = "1\n2\n3R\n4\n5R\n";
        let m = merge_text(
            base.as_bytes(),
            local.as_bytes(),
            remote.as_bytes(),
            Resolution::Prefer(Side::Remote),
        );
        assert_eq!(String::from_utf8(m.merged).unwrap(), "1L\n2\n3R\n4\n5R\n");
        assert_eq!(m.conflicts.len(), 1);
    }

    #[test]
    fn empty_base_means_add_add() {
        let (text, conflicts) = merge("", "x\n", "y\n");
        assert_eq!(
            text,
            "<<<<<<< LOCAL (current)\nx\n=======\ny\n>>>>>>> REMOTE (incoming)\n"
        );
        assert_eq!(conflicts[0].merged_line, 1);
        let (text, conflicts) = merge("", "same\n", "same\n");
        assert_eq!((text.as_str(), conflicts.len()), ("same\n", 0));
    }

    #[test]
    fn invalid_utf8_passes_through_untouched() {
        let base = b"a\n\xff\xfe\nz\n";
        let local = b"A\n\xff\xfe\nz\n";
        let remote = b"a\n\xff\xfe\nZ\xc3\n";
        let m = merge_text(base, local, remote, Resolution::Markers);
        assert_eq!(m.merged, b"A\n\xff\xfe\nZ\xc3\n");
    }

    #[test]
    fn several_conflicts_report_their_merged_lines() {
        let base = "a\nb\nc\nd\ne\n";
        let local = "a\nB1\nc\nD1\ne\n";
        let remote = "a\nB2\nc\nD2\ne\n";
        let (text, conflicts) = merge(base, local, remote);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(conflicts.len(), 2);
        for c in &conflicts {
            assert_eq!(lines[c.merged_line - 1], MARKER_LOCAL);
        }
        assert_eq!(conflicts[1].merged_line, 8);
    }
}
