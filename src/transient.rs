//! The transient files SkillMeat and the daemon make beside real ones, in one place: how the
//! daemon names its own, and how the watcher recognises every one of them — exactly, so a
//! user's file that merely looks alike (`notes.txn-1.md`) is still seen.
//!
//! | who | what | name |
//! |---|---|---|
//! | both | the write lock (kept for good) | `.<name>.skillmeat-lock` |
//! | SkillMeat 0.74.0 | backup copy | `.<name>.skillmeat-txn-<8 hex>` |
//! | SkillMeat 0.74.0 | staged file | `.<name>.<random>.txn.tmp` |
//! | SkillMeat 0.74.0 | staged folder | `.<name>.txn-<8 hex>` |
//! | SkillMeat 0.74.0 | folder set aside | `.<name>.skillmeat-swap-aside-<8 hex>` |
//! | daemon ([`crate::writer`]) | staged file or folder | `.<name>.skillmeatd-<8 alphanumerics>.tmp` |
//! | daemon ([`crate::writer`]) | old copy parked until its operation ends | `.<name>.skillmeatd-swap-<8 hex>` |
//! | daemon ([`crate::history`]) | restored copy, export in progress | `.<name>.smd-<step>-<pid>` |
//! | daemon ([`crate::live`]) | sync cookie (seen, not skipped) | `.skillmeatd-cookie-<pid>-<n>` |
//!
//! The writer and history make their names here; [`crate::watcher`] skips what
//! [`is_transient`] recognises, and the writer's start-up sweep removes (or puts back) what
//! [`leftover`] recognises.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Suffix of the lock file beside a destination (SkillMeat's protocol).
pub const LOCK_SUFFIX: &str = ".skillmeat-lock";
/// Marker in the names of the daemon's staging and swap-aside entries.
pub const STAGE_MARKER: &str = ".skillmeatd-";
/// Suffix of the daemon's staged entries.
pub const STAGE_SUFFIX: &str = ".tmp";
/// Random characters in a staged entry's name.
pub const STAGE_RANDOM: usize = 8;
/// Prefix of the cookie files written by sync barriers.
pub const COOKIE_PREFIX: &str = ".skillmeatd-cookie-";

const SWAP: &str = "swap-";
const SIBLING_MARKER: &str = ".smd-";

/// The prefix of staged copies of `name`: `.<name>.skillmeatd-` (then [`STAGE_RANDOM`]
/// alphanumerics and [`STAGE_SUFFIX`]).
pub fn stage_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(STAGE_MARKER);
    prefix
}

/// The name `name` is set aside under while a folder is swapped: `.<name>.skillmeatd-swap-`
/// and `random` in 8 hex digits.
pub fn swap_aside(name: &OsStr, random: u32) -> OsString {
    let mut aside = OsString::from(".");
    aside.push(name);
    aside.push(format!("{STAGE_MARKER}{SWAP}{random:08x}"));
    aside
}

/// The staged name of `name`: `.<name>.skillmeatd-<random>.tmp`, `random` being
/// [`STAGE_RANDOM`] ASCII alphanumerics.
pub fn staged(name: &OsStr, random: &str) -> OsString {
    let mut staged = stage_prefix(name);
    staged.push(random);
    staged.push(STAGE_SUFFIX);
    staged
}

/// One of the daemon's own staging or parking entries, found beside a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// `.<name>.skillmeatd-<random>.tmp`: new content staged for the destination `name`.
    Staged(OsString),
    /// `.<name>.skillmeatd-swap-<hex>`: the old copy of the destination `name`, set aside.
    Parked(OsString),
}

/// Whether the file name `file_name` is exactly one of the daemon's staging or parking
/// names (see the table above), and of which destination. A user's look-alike
/// (`.plan.skillmeatd-1234.tmp`, wrong length) is not.
pub fn leftover(file_name: &OsStr) -> Option<Leftover> {
    let rest = file_name.to_str()?.strip_prefix('.')?;
    let hex = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let alnum = |s: &str| s.len() == STAGE_RANDOM && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let split = |s: &str, marker: &str| -> Option<(String, String)> {
        let i = s.rfind(marker).filter(|&i| i > 0)?;
        Some((s[..i].to_string(), s[i + marker.len()..].to_string()))
    };
    if let Some(body) = rest.strip_suffix(STAGE_SUFFIX)
        && let Some((name, random)) = split(body, STAGE_MARKER)
        && alnum(&random)
    {
        return Some(Leftover::Staged(name.into()));
    }
    let (name, random) = split(rest, &format!("{STAGE_MARKER}{SWAP}"))?;
    hex(&random).then(|| Leftover::Parked(name.into()))
}

/// A temporary sibling of `dest` for `step` (`restore`, `export`) of this process, renamed
/// into place when complete: `.<name>.smd-<step>-<pid>`.
pub fn sibling(dest: &Path, step: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(
        ".{name}{SIBLING_MARKER}{step}-{}",
        std::process::id()
    ))
}

/// The name of this process's sync cookie number `n`: `.skillmeatd-cookie-<pid>-<n>`.
pub fn cookie_name(n: u64) -> String {
    format!("{COOKIE_PREFIX}{}-{n}", std::process::id())
}

/// Whether `path` names a sync cookie (of any daemon: one left by a crashed daemon is
/// still only a cookie, never a change).
pub fn is_cookie(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(COOKIE_PREFIX))
}

/// Whether `path` names one of the transient files in the table above, cookies excepted
/// (the live task needs to see those).
pub fn is_transient(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    // Every transient name is a dot-name with something before its marker.
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let hex = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let alnum = |s: &str| s.len() == STAGE_RANDOM && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.ends_with(LOCK_SUFFIX)
        || ends_with_marked(rest, ".skillmeat-txn-", hex)
        || ends_with_marked(rest, ".txn-", hex)
        || ends_with_marked(rest, ".skillmeat-swap-aside-", hex)
        || rest
            .strip_suffix(".txn.tmp")
            .is_some_and(|s| s.contains('.'))
        || rest
            .strip_suffix(STAGE_SUFFIX)
            .is_some_and(|s| ends_with_marked(s, STAGE_MARKER, alnum))
        || ends_with_marked(rest, &format!("{STAGE_MARKER}{SWAP}"), hex)
        || ends_with_marked(rest, SIBLING_MARKER, |tail| {
            tail.split_once('-').is_some_and(|(step, pid)| {
                !step.is_empty() && step.bytes().all(|b| b.is_ascii_lowercase()) && digits(pid)
            })
        })
}

/// Whether `s` is `<something>` + `marker` + a tail `tail_ok` accepts.
fn ends_with_marked(s: &str, marker: &str, tail_ok: impl Fn(&str) -> bool) -> bool {
    s.rfind(marker)
        .is_some_and(|i| i > 0 && tail_ok(&s[i + marker.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transient_name_is_recognised() {
        for n in [
            ".claude/skills/.review.skillmeat-lock",
            ".claude/..skillmeat-deployed.toml.skillmeat-lock",
            ".claude/commands/.hello.md.skillmeat-txn-1a2b3c4d",
            ".claude/commands/.hello.md.x81k.txn.tmp",
            ".claude/skills/.review.txn-1a2b3c4d",
            ".claude/skills/.review.skillmeat-swap-aside-1a2b3c4d",
            ".claude/commands/.hello.md.skillmeatd-aB3dE6g9.tmp",
            ".claude/skills/.review.skillmeatd-swap-0000beef",
            "out/.backup.tar.zst.smd-export-4242",
            "skills/.review.smd-restore-17",
        ] {
            assert!(is_transient(Path::new(n)), "{n}");
        }
    }

    #[test]
    fn look_alike_user_files_are_not_transient() {
        for n in [
            ".claude/skills/review/SKILL.md",
            ".claude/.skillmeat-deployed.toml",
            ".claude/.skillmeatd-cookie-1-2",
            "notes.txn-1.md",
            ".notes.txn-1.md",
            "draft.txn.tmp",
            "plan.skillmeatd-1234.tmp",
            ".plan.skillmeatd-1234.tmp",
            ".review.skillmeat-txn-draft",
            ".skillmeat-lock-notes.md",
            ".notes.smd-old-copy",
        ] {
            assert!(!is_transient(Path::new(n)), "{n}");
        }
    }

    #[test]
    fn cookies_are_recognised_by_name_and_not_skipped() {
        let c = PathBuf::from("/home/u/.skillmeat").join(cookie_name(7));
        assert!(is_cookie(&c), "{c:?}");
        assert!(!is_transient(&c), "{c:?}");
        assert!(!is_cookie(Path::new("/p/.claude/skills/review/cookie.md")));
    }

    #[test]
    fn leftovers_are_parsed_exactly() {
        let name = OsStr::new("big-skill");
        assert_eq!(
            leftover(&staged(name, "aB3dE6g9")),
            Some(Leftover::Staged("big-skill".into()))
        );
        assert_eq!(
            leftover(&swap_aside(name, 0xbeef)),
            Some(Leftover::Parked("big-skill".into()))
        );
        assert_eq!(
            leftover(OsStr::new(
                "..skillmeat-deployed.toml.skillmeatd-swap-0000beef"
            )),
            Some(Leftover::Parked(".skillmeat-deployed.toml".into()))
        );
        for user in [
            ".plan.skillmeatd-1234.tmp",
            "plan.skillmeatd-aB3dE6g9.tmp",
            ".skillmeatd-aB3dE6g9.tmp",
            ".x.skillmeatd-swap-0000beeg",
            ".x.skillmeatd-swap-0000beef.bak",
            ".x.skillmeatd-aB3dE6g9.tmp.old",
            ".skillmeatd-cookie-1-2",
            ".x.skillmeat-lock",
        ] {
            assert_eq!(leftover(OsStr::new(user)), None, "{user}");
        }
    }

    #[test]
    fn the_daemons_own_names_are_recognised() {
        let name = OsStr::new("review");
        let staged = format!("{}aB3dE6g9{STAGE_SUFFIX}", stage_prefix(name).display());
        assert!(is_transient(Path::new(&staged)), "{staged}");
        let aside = swap_aside(name, 0xdead_beef);
        assert!(is_transient(Path::new(&aside)), "{aside:?}");
        let sib = sibling(Path::new("/p/.claude/skills/review"), "restore");
        assert!(is_transient(&sib), "{sib:?}");
    }
}
