//! The store check of `smctl doctor`: the daemon's report of its store (condition,
//! damaged copies moved aside, damaged blobs, size) or, with no daemon, the store read
//! offline by `skillmeatd run --check-store`.

use serde_json::Value;

use skillmeatd_proto::paths::Paths;
use skillmeatd_proto::pb;

use super::{Check, Level, check, skillmeatd_offline, skipped};

/// Store size above which the journal limits deserve a look.
const STORE_LARGE: u64 = 1 << 30;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// What to do about damaged stores moved aside, if any.
fn moved_stores(moved: &[pb::MovedStore]) -> Option<(String, String)> {
    let last = moved.last()?;
    let mut msg = format!(
        "{} damaged store(s) moved aside; the last, {}: {}; salvaged {}",
        moved.len(),
        last.path,
        last.reason,
        if last.salvaged.is_empty() {
            "nothing yet"
        } else {
            &last.salvaged
        }
    );
    if !last.unsaved.is_empty() {
        msg += &format!(
            "; {} item(s) could not be saved, e.g. {}",
            last.unsaved.len(),
            last.unsaved[0]
        );
    }
    let fix = format!(
        "the daemon repaired the store by itself; read {}/salvage.json for what was lost, then \
         delete the damaged copy (`rm -r {}`)",
        last.path, last.path
    );
    Some((msg, fix))
}

pub(super) fn store(s: &pb::StatusResponse) -> Check {
    if let Some(h) = &s.store {
        match h.condition.as_str() {
            "ok" | "" => {}
            "full" => {
                return check(
                    "store",
                    Level::Fail,
                    format!("{}: {}", h.path, h.detail),
                    "free space on the disk holding the store; the daemon resumes by itself \
                     (drift keeps answering meanwhile)",
                );
            }
            _ => {
                return check(
                    "store",
                    Level::Fail,
                    format!("{} is {}: {}", h.path, h.condition, h.detail),
                    "nothing to do: the daemon moves a damaged store aside and salvages it by \
                     itself; run `smctl doctor` again in a minute",
                );
            }
        }
        if let Some((msg, fix)) = moved_stores(&h.moved) {
            return check("store", Level::Warn, msg, &fix);
        }
        if let Some(first) = h.damaged_blobs.first() {
            return check(
                "store",
                Level::Warn,
                format!(
                    "{} damaged blob(s) in {} (e.g. {first}): the versions that need them are \
                     unavailable; everything else works",
                    h.damaged_blobs.len(),
                    h.path
                ),
                "nothing to repair by hand: when the same content is seen again (in a \
                 collection or project) it replaces the damaged copy",
            );
        }
    }
    let msg = format!(
        "{} on disk in {}; {} files indexed",
        mib(s.store_bytes),
        s.state_dir,
        s.files_indexed
    );
    if s.store_bytes > STORE_LARGE {
        check(
            "store",
            Level::Warn,
            format!("{msg} (large)"),
            "lower journal.max_events or journal.max_age_days in daemon.toml and reload",
        )
    } else {
        check("store", Level::Ok, msg, "")
    }
}

/// The store read by `skillmeatd run --check-store` (no daemon runs), and the damaged
/// copies earlier repairs moved aside.
pub(super) async fn store_offline(paths: &Paths) -> Check {
    let moved = moved_offline(paths);
    let out = match skillmeatd_offline("store", "check", |c| {
        c.arg("--skillmeat-home")
            .arg(&paths.skillmeat_home)
            .arg("--state-dir")
            .arg(&paths.state_dir)
            .args(["run", "--check-store"]);
    })
    .await
    {
        Ok(o) => o,
        Err(c) => return c,
    };
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match out.status.code() {
        Some(0) => match moved_stores(&moved) {
            Some((msg, fix)) => check("store", Level::Warn, format!("{said}; {msg}"), &fix),
            None => check("store", Level::Ok, said, ""),
        },
        Some(3) => skipped("store"),
        _ => check(
            "store",
            Level::Fail,
            format!(
                "damaged: {}",
                if said.is_empty() {
                    String::from_utf8_lossy(&out.stderr).trim().to_string()
                } else {
                    said.lines().collect::<Vec<_>>().join("; ")
                }
            ),
            "start the daemon: it moves the damaged store aside (kept), salvages every \
             readable version, snapshot and project mark into a new one and lists what was lost",
        ),
    }
}

/// Damaged stores moved aside beside the store, read from their salvage reports.
fn moved_offline(paths: &Paths) -> Vec<pb::MovedStore> {
    let Ok(entries) = std::fs::read_dir(&paths.state_dir) else {
        return Vec::new();
    };
    let mut out: Vec<pb::MovedStore> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("store.damaged-")
        })
        .map(|e| {
            let report: Value = std::fs::read(e.path().join("salvage.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
            pb::MovedStore {
                path: e.path().display().to_string(),
                reason: report["reason"].as_str().unwrap_or("damaged").to_string(),
                time_ms: report["time_ms"].as_i64().unwrap_or(0),
                salvaged: report["salvaged"].as_str().unwrap_or_default().to_string(),
                unsaved: report["unsaved"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|u| u.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
