//! Properties every merge must have, whatever the bytes: checked by the fuzz targets
//! (`fuzz/`) and by the corpus of hand-made bad inputs in the test suite, so both hold the
//! merge to the same rules.

use super::text::{MARKER_LOCAL, merge_text, split_lines};
use super::tree::{Tree, merge_trees};
use super::{Resolution, Side};

/// Checks the text merge of `base`, `local`, `remote` under every resolution.
///
/// # Errors
/// A description of the first property that does not hold.
pub fn check_text(base: &[u8], local: &[u8], remote: &[u8]) -> Result<(), String> {
    let markers = merge_text(base, local, remote, Resolution::Markers);
    let keep_local = merge_text(base, local, remote, Resolution::Prefer(Side::Local));
    let keep_remote = merge_text(base, local, remote, Resolution::Prefer(Side::Remote));
    let expect = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };

    if local == base {
        expect(
            markers.merged == remote && markers.is_clean(),
            "unchanged local must give remote",
        )?;
    }
    if remote == base || local == remote {
        expect(
            markers.merged == local && markers.is_clean(),
            "unchanged remote must give local",
        )?;
    }
    expect(
        markers.conflicts.len() == keep_local.conflicts.len()
            && markers.conflicts.len() == keep_remote.conflicts.len(),
        "the resolution changed which hunks conflict",
    )?;
    if markers.is_clean() {
        expect(
            markers.merged == keep_local.merged && markers.merged == keep_remote.merged,
            "a clean merge must not depend on the resolution",
        )?;
    }
    // The merge is symmetric: swapping sides and preference gives the same bytes.
    let swapped = merge_text(base, remote, local, Resolution::Prefer(Side::Remote));
    expect(
        swapped.merged == keep_local.merged,
        "merge is not symmetric",
    )?;

    let lines = split_lines(&markers.merged);
    for c in &markers.conflicts {
        let at = lines.get(c.merged_line.wrapping_sub(1));
        expect(
            at.is_some_and(|l| l.starts_with(MARKER_LOCAL.as_bytes())),
            "a conflict's merged_line is not its <<<<<<< line",
        )?;
        expect(
            c.base.end <= split_lines(base).len()
                && c.local.end <= split_lines(local).len()
                && c.remote.end <= split_lines(remote).len(),
            "a conflict range is out of bounds",
        )?;
    }
    Ok(())
}

/// Checks the tree merge of three trees under every resolution.
///
/// # Errors
/// A description of the first property that does not hold.
pub fn check_tree(base: &Tree, local: &Tree, remote: &Tree) -> Result<(), String> {
    for resolution in [
        Resolution::Markers,
        Resolution::Prefer(Side::Local),
        Resolution::Prefer(Side::Remote),
        Resolution::Union,
    ] {
        let m = merge_trees(base, local, remote, resolution);
        if local == base && m.files != *remote {
            return Err("unchanged local tree must give the remote tree".into());
        }
        if (remote == base || local == remote) && m.files != *local {
            return Err("unchanged remote tree must give the local tree".into());
        }
        if matches!(resolution, Resolution::Prefer(_)) && m.has_unresolved() {
            return Err("a preference left a conflict unresolved".into());
        }
        for path in m.files.keys() {
            if !(base.contains_key(path) || local.contains_key(path) || remote.contains_key(path)) {
                return Err(format!("{} appeared from nowhere", path.display()));
            }
        }
    }
    Ok(())
}
