//! Code actions and `workspace/executeCommand`: pull, push, merge, show diff, undo the last
//! operation, snapshot now — each one RPC to the daemon, which takes SkillMeat's lock, a
//! safety snapshot and records the operation (`smctl audit`).
//!
//! Every command takes one JSON object argument: `{"uri": …}` (the file's artifact; the
//! one drifted deployment when a collection file has several) or `{"project": …,
//! "artifactPath": …, "profileRoot": …}` (what code actions send). A command that would
//! overwrite a file open with unsaved changes is refused: save or revert it first. Outcomes
//! and failures are shown with `window/showMessage`; the result is the operation's id
//! (`{"operation": N}`) or, for the diff, the diff document's URI.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::Client as Editor;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, Command, Diagnostic, MessageType,
    ShowDocumentParams, Uri,
};

use skillmeatd_proto::{DriftKind, pb};

use super::model::{self, Hit, Side, drifted, kind};
use super::state::{Shared, doc_paths, selector};
use crate::output::drift_name;

pub const PULL: &str = "skillmeat.pull";
pub const PUSH: &str = "skillmeat.push";
pub const MERGE: &str = "skillmeat.merge";
pub const SHOW_DIFF: &str = "skillmeat.showDiff";
pub const UNDO: &str = "skillmeat.undo";
pub const SNAPSHOT: &str = "skillmeat.snapshot";

/// Every command the server executes.
pub const ALL: [&str; 6] = [PULL, PUSH, MERGE, SHOW_DIFF, UNDO, SNAPSHOT];

/// A command's argument.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Args {
    pub uri: Option<String>,
    pub project: Option<String>,
    pub profile_root: Option<String>,
    pub artifact_path: Option<String>,
    /// For `snapshot`: a collection instead of a project.
    pub collection: Option<String>,
}

fn args_of(a: &pb::ArtifactDrift) -> Value {
    json!({
        "project": a.project,
        "profileRoot": a.profile_root,
        "artifactPath": a.artifact_path,
    })
}

fn command(title: String, name: &str, args: Value) -> Command {
    Command {
        title,
        command: name.to_string(),
        arguments: Some(vec![args]),
    }
}

fn action(
    title: String,
    kind: CodeActionKind,
    name: &str,
    args: Value,
    diagnostics: &[Diagnostic],
    preferred: bool,
) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title: title.clone(),
        kind: Some(kind),
        diagnostics: (!diagnostics.is_empty()).then(|| diagnostics.to_vec()),
        is_preferred: preferred.then_some(true),
        command: Some(command(title, name, args)),
        ..Default::default()
    })
}

/// The code actions for deployments `targets` of a file: the fixes its drift allows
/// (the recommended one preferred), then undo and snapshot. `snapshot` is the project or
/// collection a snapshot would cover. Nothing for a file outside artifacts.
pub fn actions(
    targets: &[pb::ArtifactDrift],
    diagnostics: &[Diagnostic],
    snapshot: Option<Value>,
) -> Vec<CodeActionOrCommand> {
    use DriftKind as D;
    let mut out = Vec::new();
    let several = targets.len() > 1;
    for a in targets.iter().filter(|a| drifted(a)) {
        let Some(k) = kind(a) else { continue };
        let mine: Vec<Diagnostic> = diagnostics
            .iter()
            .filter(|d| d.message.starts_with(&a.name))
            .cloned()
            .collect();
        let at = if several {
            format!(" ({}/{})", a.project, a.profile_root)
        } else {
            String::new()
        };
        let fix = CodeActionKind::QUICKFIX;
        if matches!(k, D::Outdated | D::Modified | D::Conflict | D::Missing) {
            out.push(action(
                format!("Pull {} from collection {}{at}", a.name, a.collection),
                fix.clone(),
                PULL,
                args_of(a),
                &mine,
                matches!(k, D::Outdated | D::Missing),
            ));
        }
        if matches!(k, D::Modified | D::Conflict) {
            out.push(action(
                format!("Push {} to collection {}{at}", a.name, a.collection),
                fix.clone(),
                PUSH,
                args_of(a),
                &mine,
                k == D::Modified,
            ));
        }
        if k == D::Conflict {
            out.push(action(
                format!("Merge {} with collection {}{at}", a.name, a.collection),
                fix.clone(),
                MERGE,
                args_of(a),
                &mine,
                true,
            ));
        }
        if matches!(k, D::Outdated | D::Modified | D::Conflict) {
            out.push(action(
                format!(
                    "Show the diff of {} against collection {}{at}",
                    a.name, a.collection
                ),
                CodeActionKind::EMPTY,
                SHOW_DIFF,
                args_of(a),
                &[],
                false,
            ));
        }
    }
    if !targets.is_empty() {
        out.push(action(
            "Undo the last skillmeat operation".into(),
            CodeActionKind::SOURCE,
            UNDO,
            json!({}),
            &[],
            false,
        ));
        if let Some(s) = snapshot {
            out.push(action(
                "Take a skillmeat snapshot now".into(),
                CodeActionKind::SOURCE,
                SNAPSHOT,
                s,
                &[],
                false,
            ));
        }
    }
    out
}

/// What a snapshot of a file's artifact covers: its project, or its collection.
pub fn snapshot_target(hits: &[Hit], records: Option<&[pb::ArtifactDrift]>) -> Option<Value> {
    if let Some(h) = hits.first() {
        return Some(match h.side {
            Side::Project => json!({"project": h.artifact.project}),
            Side::Collection => json!({"collection": h.artifact.collection}),
        });
    }
    records
        .and_then(|r| r.first())
        .map(|a| json!({"project": a.project}))
}

/// A failure shown to the user.
type Failed = String;

/// Runs command `name`; failures are shown to the user and returned as `None`.
pub async fn execute(
    shared: &Shared,
    editor: &Editor,
    name: &str,
    args: Vec<Value>,
) -> Option<Value> {
    let args: Args = match args.into_iter().next() {
        Some(v) => match serde_json::from_value(v) {
            Ok(a) => a,
            Err(e) => return fail(editor, format!("{name}: bad argument: {e}")).await,
        },
        None => Args::default(),
    };
    match run(shared, editor, name, &args).await {
        Ok((message, value)) => {
            editor
                .show_message(MessageType::INFO, format!("skillmeat: {message}"))
                .await;
            Some(value)
        }
        Err(e) => fail(editor, format!("{name}: {e}")).await,
    }
}

async fn fail(editor: &Editor, message: String) -> Option<Value> {
    editor
        .show_message(MessageType::ERROR, format!("skillmeat: {message}"))
        .await;
    None
}

async fn run(
    shared: &Shared,
    editor: &Editor,
    name: &str,
    args: &Args,
) -> Result<(String, Value), Failed> {
    let mut daemon = shared
        .daemon()
        .ok_or_else(|| "skillmeatd is not answering; nothing was done".to_string())?;
    let status = |s: tonic::Status| s.message().to_string();
    match name {
        UNDO => {
            let r = daemon
                .undo(pb::UndoRequest {
                    operation: 0,
                    dry_run: false,
                })
                .await
                .map_err(status)?
                .into_inner();
            Ok(outcome("undid the last operation", &r))
        }
        SNAPSHOT => {
            let target = snapshot_of(shared, args)?;
            let r = daemon
                .create_snapshot(pb::CreateSnapshotRequest {
                    target: Some(target),
                    message: "from the editor".into(),
                })
                .await
                .map_err(status)?
                .into_inner();
            let id = r.snapshot.map(|s| s.id).unwrap_or_default();
            Ok((format!("snapshot {id} taken"), json!({"snapshot": id})))
        }
        PULL | PUSH | MERGE | SHOW_DIFF => {
            let a = target(shared, args)?;
            if name == SHOW_DIFF {
                return show_diff(shared, &mut daemon, editor, &a).await;
            }
            // What the command overwrites must not hold unsaved edits.
            let written = if name == PUSH {
                model::collection_copy(&a)
            } else {
                model::project_copy(&a)
            };
            if let Some(w) = written {
                refuse_unsaved(shared, &w)?;
            }
            let req = pb::SyncRequest {
                project: a.project.clone(),
                artifact: a.artifact_path.clone(),
                dry_run: false,
            };
            let (verb, r) = match name {
                PULL => ("pulled", daemon.sync_pull(req).await),
                PUSH => ("pushed", daemon.sync_push(req).await),
                _ => (
                    "merged",
                    daemon
                        .merge(pb::MergeRequest {
                            project: req.project,
                            artifact: req.artifact,
                            dry_run: false,
                            prefer: pb::MergePreference::Markers as i32,
                            continue_merge: false,
                        })
                        .await,
                ),
            };
            let r = r.map_err(status)?.into_inner();
            let mut what = format!("{verb} {} ({}/{})", a.name, a.project, a.profile_root);
            if !r.conflicts.is_empty() {
                what += &format!(
                    "; {} conflict(s) left with markers: {}",
                    r.conflicts.len(),
                    r.conflicts
                        .iter()
                        .map(|c| c.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(outcome(&what, &r))
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

fn outcome(what: &str, r: &pb::OperationResponse) -> (String, Value) {
    let id = r.operation.as_ref().map_or(0, |o| o.id);
    (
        format!("{what} (operation {id}; `smctl undo {id}` reverts it)"),
        json!({"operation": id, "changed": r.changed}),
    )
}

/// The deployment a command is about.
fn target(shared: &Shared, args: &Args) -> Result<pb::ArtifactDrift, Failed> {
    if let (Some(project), Some(path)) = (&args.project, &args.artifact_path) {
        let mut found = shared.deployments(project, args.profile_root.as_deref(), path);
        return match found.len() {
            0 => Err(format!("no deployment of {path} in {project} is known")),
            1 => Ok(found.remove(0)),
            _ => Err(format!(
                "{path} is deployed in several profile roots of {project}; say which (profileRoot)"
            )),
        };
    }
    let uri = args
        .uri
        .as_deref()
        .ok_or("give the file (uri) or the deployment (project, artifactPath)")?;
    let hits = hits_of_uri(shared, uri)?;
    let mut deployments: Vec<pb::ArtifactDrift> = hits
        .into_iter()
        .map(|h| h.artifact)
        .filter(|a| !a.profile_root.is_empty())
        .collect();
    if deployments.len() > 1 {
        deployments.retain(drifted);
    }
    match deployments.len() {
        0 => Err(format!("{uri} is not part of a deployed artifact")),
        1 => Ok(deployments.remove(0)),
        n => Err(format!(
            "{uri} belongs to {n} drifted deployments ({}); use a code action to pick one",
            deployments
                .iter()
                .map(|a| format!("{}/{}", a.project, a.profile_root))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn hits_of_uri(shared: &Shared, uri: &str) -> Result<Vec<Hit>, Failed> {
    let parsed: Uri = uri.parse().map_err(|e| format!("bad uri {uri:?}: {e}"))?;
    let paths = doc_paths(&parsed).ok_or_else(|| format!("{uri} is not a file"))?;
    let doc = super::state::Doc {
        paths,
        text: String::new(),
        version: 0,
    };
    Ok(shared.hits(&doc).0)
}

fn snapshot_of(shared: &Shared, args: &Args) -> Result<pb::SnapshotTarget, Failed> {
    let (collection, project) = match (&args.collection, &args.project, &args.uri) {
        (Some(c), _, _) => (c.clone(), String::new()),
        (None, Some(p), _) => (String::new(), p.clone()),
        (None, None, Some(uri)) => {
            let hits = hits_of_uri(shared, uri)?;
            let h = hits
                .first()
                .ok_or_else(|| format!("{uri} is not part of an artifact"))?;
            match h.side {
                Side::Project => (String::new(), h.artifact.project.clone()),
                Side::Collection => (h.artifact.collection.clone(), String::new()),
            }
        }
        (None, None, None) => return Err("give a uri, a project or a collection".into()),
    };
    Ok(pb::SnapshotTarget {
        collection,
        project,
    })
}

/// Refuses when an open document inside `copy` has unsaved changes.
fn refuse_unsaved(shared: &Shared, copy: &Path) -> Result<(), Failed> {
    for (_, doc) in shared.docs() {
        let Some(path) = doc.paths.iter().find(|p| p.starts_with(copy)) else {
            continue;
        };
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        if on_disk != doc.text {
            return Err(format!(
                "{} has unsaved changes: save or revert it first (nothing was done)",
                path.display()
            ));
        }
    }
    Ok(())
}

async fn show_diff(
    shared: &Shared,
    daemon: &mut crate::session::Client,
    editor: &Editor,
    a: &pb::ArtifactDrift,
) -> Result<(String, Value), Failed> {
    let files = daemon
        .diff(pb::DiffRequest {
            a: "collection".into(),
            b: "project".into(),
            subject: Some(selector(a)),
            stale_ok: false,
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .files;
    let mut text = format!(
        "# {} ({}): collection {} -> project {}/{} ({})\n",
        a.name,
        a.artifact_type,
        a.collection,
        a.project,
        a.profile_root,
        drift_name(a.drift_type)
    );
    if files.is_empty() {
        text += "# no differences\n";
    }
    for f in &files {
        if f.binary {
            text += &format!("Binary file {} differs ({})\n", f.path, f.status);
        } else {
            text += &f.unified;
        }
    }
    let safe: String = a
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = shared.diff_dir()?.join(format!("{safe}.diff"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let uri = Uri::from_file_path(&path).ok_or("cannot name the diff file")?;
    let shown = editor
        .show_document(ShowDocumentParams {
            uri: uri.clone(),
            external: Some(false),
            take_focus: Some(true),
            selection: None,
        })
        .await;
    if !matches!(shown, Ok(true)) {
        return Err(format!(
            "the editor did not open the diff; it is in {}",
            path.display()
        ));
    }
    Ok((
        format!("diff of {} opened", a.name),
        json!({"uri": uri.as_str()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(kind: pb::DriftType) -> pb::ArtifactDrift {
        pb::ArtifactDrift {
            project: "/p".into(),
            profile_root: ".claude".into(),
            name: "review".into(),
            drift_type: kind as i32,
            collection: "default".into(),
            artifact_path: "skills/review".into(),
            ..Default::default()
        }
    }

    fn titles(v: &[CodeActionOrCommand]) -> Vec<(String, bool)> {
        v.iter()
            .map(|a| match a {
                CodeActionOrCommand::CodeAction(a) => {
                    (a.title.clone(), a.is_preferred == Some(true))
                }
                CodeActionOrCommand::Command(c) => (c.title.clone(), false),
            })
            .collect()
    }

    #[test]
    fn outdated_prefers_pull() {
        let t = titles(&actions(
            &[deployment(pb::DriftType::Outdated)],
            &[],
            Some(json!({"project": "/p"})),
        ));
        assert_eq!(t[0], ("Pull review from collection default".into(), true));
        assert!(t.iter().all(|(x, _)| !x.starts_with("Push")));
        assert!(t.iter().any(|(x, _)| x.starts_with("Show the diff")));
        assert!(t.iter().any(|(x, _)| x.starts_with("Undo")));
        assert!(
            t.iter()
                .any(|(x, _)| x.starts_with("Take a skillmeat snapshot"))
        );
    }

    #[test]
    fn conflict_prefers_merge_and_modified_prefers_push() {
        let c = titles(&actions(&[deployment(pb::DriftType::Conflict)], &[], None));
        assert!(c.contains(&("Merge review with collection default".into(), true)));
        let m = titles(&actions(&[deployment(pb::DriftType::Modified)], &[], None));
        assert!(m.contains(&("Push review to collection default".into(), true)));
        assert!(m.contains(&("Pull review from collection default".into(), false)));
    }

    #[test]
    fn in_sync_gets_only_undo_and_nothing_gets_nothing() {
        let t = titles(&actions(&[deployment(pb::DriftType::InSync)], &[], None));
        assert_eq!(t, vec![("Undo the last skillmeat operation".into(), false)]);
        assert!(actions(&[], &[], None).is_empty());
    }

    #[test]
    fn args_name_the_deployment() {
        let a: Args =
            serde_json::from_value(args_of(&deployment(pb::DriftType::Modified))).unwrap();
        assert_eq!(a.project.as_deref(), Some("/p"));
        assert_eq!(a.profile_root.as_deref(), Some(".claude"));
        assert_eq!(a.artifact_path.as_deref(), Some("skills/review"));
    }
}
