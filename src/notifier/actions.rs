//! What the buttons of a notification do. Each action runs on its own task and ends with
//! an [`Outcome`] for the worker.
//!
//! - "Pull", "Push", "Merge" (a notification about one artifact) run
//!   [`Operations::sync_pull`], [`Operations::sync_push`] and [`Operations::merge`] (with
//!   conflict markers) exactly as the RPCs do: SkillMeat's lock, a safety snapshot, a
//!   record in the operations log (so `smctl audit` lists them and `smctl undo` reverts
//!   them), the drift events attributed to the operation.
//! - "Show diff" writes the unified diff, collection → project, of every drifted artifact
//!   the notification lists to `<state>/notify/<project>-<time>.diff` and opens that file
//!   with `notify.show_diff_with` (`xdg-open` / `open`: the person's viewer for `.diff`
//!   files). The file stays (pruned to the newest [`KEEP_DIFFS`]), so the path in
//!   `smctl notify status` can be opened by hand where no opener works.
//! - "Mute project" mutes the project for `notify.action_mute_secs` (0: until unmuted).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::history::diff::{Operand, Subject};
use crate::history::time;
use crate::live::Live;
use crate::merge::Resolution;
use crate::model::SnapshotTarget;
use crate::notification::{Action, Input, Item, Kind, Mute, WriteOutcome};
use crate::operations::Operations;
use crate::writer::Writer;

/// Diff files kept in `<state>/notify`.
pub const KEEP_DIFFS: usize = 20;

/// How an action ended.
#[derive(Debug)]
pub enum Outcome {
    /// Done; what to say in `smctl notify status`.
    Done(String),
    /// Failed before the operations log could record it: tell the person.
    Failed(String, Input),
    /// The project was muted.
    Muted(String),
}

/// What an action needs.
#[derive(Debug, Clone)]
pub struct Context {
    pub live: Arc<Live>,
    pub mute_for_secs: u64,
    pub opener: Vec<String>,
}

/// Runs `action` on the notification of `key`, which shows `items`.
pub async fn run(ctx: Context, key: String, action: Action, items: Vec<Item>) -> Outcome {
    let what = format!(
        "{} on {}",
        action.label(),
        crate::notification::text::label(&key)
    );
    let result = match action {
        Action::Mute => mute(&ctx, &key).await,
        Action::ShowDiff => show_diff(&ctx, &key, items).await,
        Action::Pull | Action::Push | Action::Merge => operate(&ctx, &key, action, items).await,
    };
    match result {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("notification action {what} failed: {e}");
            let input = Input::Write(WriteOutcome {
                group: key,
                id: 0,
                operation: action.label().to_lowercase(),
                target: action.label().to_string(),
                error: Some(e.clone()),
                conflicted: 0,
            });
            Outcome::Failed(format!("{what} failed: {e}"), input)
        }
    }
}

async fn mute(ctx: &Context, key: &str) -> Result<Outcome, String> {
    if !key.starts_with('/') {
        return Err("only projects can be muted".into());
    }
    let until_ms = (ctx.mute_for_secs > 0)
        .then(|| time::now_ms() + i64::try_from(ctx.mute_for_secs).unwrap_or(i64::MAX / 4) * 1000);
    let store = ctx.live.engine().store().clone();
    let mute = Mute {
        path: PathBuf::from(key),
        until_ms,
        from_config: false,
    };
    tokio::task::spawn_blocking(move || store.put_mute(&mute))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Outcome::Muted(match until_ms {
        Some(u) => format!("muted {key} until {}", time::format(u)),
        None => format!("muted {key}"),
    }))
}

/// The artifact's path in its profile root, from the live state.
fn artifact_path(live: &Live, project: &str, item: &Item) -> Option<String> {
    live.with_state(|s| {
        s.reports_of(Some(Path::new(project)))
            .find(|r| {
                r.name == item.name
                    && r.artifact_type == item.artifact_type
                    && r.profile_root == item.profile_root
            })
            .map(|r| r.artifact_path.display().to_string())
    })
}

async fn operate(
    ctx: &Context,
    key: &str,
    action: Action,
    items: Vec<Item>,
) -> Result<Outcome, String> {
    let [item] = items.as_slice() else {
        return Err("the notification no longer shows a single artifact".into());
    };
    let spec = artifact_path(&ctx.live, key, item)
        .ok_or_else(|| format!("{} is no longer deployed in {key}", item.name))?;
    let live = Arc::clone(&ctx.live);
    let project = PathBuf::from(key);
    let report = tokio::task::spawn_blocking(move || {
        let ops = Operations::new(live.engine(), Writer::new()).with_claims(live.claims());
        match action {
            Action::Pull => ops.sync_pull(&project, &spec, false),
            Action::Push => ops.sync_push(&project, &spec, false),
            _ => ops.merge(&project, &spec, false, Resolution::Markers),
        }
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let id = report.record.as_ref().map_or(0, |r| r.id);
    Ok(Outcome::Done(format!(
        "{} {} in {key}: operation {id}",
        action.key(),
        item.name
    )))
}

async fn show_diff(ctx: &Context, key: &str, items: Vec<Item>) -> Result<Outcome, String> {
    let drifted: Vec<(Item, String)> = items
        .into_iter()
        .filter(|i| matches!(i.kind, Kind::Modified | Kind::Outdated | Kind::Conflict))
        .filter_map(|i| artifact_path(&ctx.live, key, &i).map(|p| (i, p)))
        .collect();
    if drifted.is_empty() {
        return Err("nothing to compare any more".into());
    }
    let live = Arc::clone(&ctx.live);
    let project = PathBuf::from(key);
    let dir = live.engine().paths().state_dir.join("notify");
    let file = tokio::task::spawn_blocking(move || write_diff(&live, &project, &drifted, &dir))
        .await
        .map_err(|e| e.to_string())??;
    let (program, args) = ctx
        .opener
        .split_first()
        .ok_or("no show_diff_with command")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .arg(&file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("wrote {} but cannot run {program}: {e}", file.display()))?;
    // Reap the opener whenever it ends; xdg-open usually returns at once.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(Outcome::Done(format!(
        "diff written to {} and opened with {program}",
        file.display()
    )))
}

/// Writes the diff file and prunes old ones.
fn write_diff(
    live: &Live,
    project: &Path,
    items: &[(Item, String)],
    dir: &Path,
) -> Result<PathBuf, String> {
    let history = live.engine().history();
    let mut text = String::new();
    for (item, path) in items {
        text += &format!(
            "# {} ({} in {}), {}: collection → project\n",
            item.name,
            item.artifact_type,
            item.profile_root,
            item.kind.as_str()
        );
        let loc = history
            .locate(path, Some(project), None)
            .map_err(|e| e.to_string())?;
        let subject = Subject {
            artifact: Some(loc),
            target: Some(SnapshotTarget::Project(project.to_path_buf())),
        };
        let files = history
            .diff(&Operand::Collection, &Operand::Project, subject)
            .map_err(|e| e.to_string())?;
        for f in files {
            if f.binary {
                text += &format!("Binary file {} {}\n", f.path, f.status.as_str());
            } else {
                text += &f.unified;
            }
        }
        text.push('\n');
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = crate::notification::text::label(&project.display().to_string());
    let file = dir.join(format!("{name}-{}.diff", time::now_ms()));
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    prune(dir);
    Ok(file)
}

/// Keeps the newest [`KEEP_DIFFS`] diff files.
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "diff"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    let extra = files.len().saturating_sub(KEEP_DIFFS);
    for (_, p) in files.into_iter().take(extra) {
        let _ = std::fs::remove_file(p);
    }
}
