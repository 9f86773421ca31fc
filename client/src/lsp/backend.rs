//! The `LanguageServer` implementation: document lifecycle, hover, code actions and
//! commands, each a thin handler over [`Shared`] and the daemon.
//!
//! The daemon link ([`super::link`]) starts once the client says `initialized` and stops
//! at `shutdown` (or when the server is dropped).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use skillmeatd_proto::pb;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CodeActionKind, CodeActionOptions, CodeActionParams, CodeActionProviderCapability,
    CodeActionResponse, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, ExecuteCommandOptions, ExecuteCommandParams, Hover, HoverContents,
    HoverParams, HoverProviderCapability, InitializeParams, InitializeResult, InitializedParams,
    LSPAny, MarkupContent, MarkupKind, ServerCapabilities, ServerInfo, TextDocumentSyncCapability,
    TextDocumentSyncKind,
};
use tower_lsp_server::{Client as Editor, LanguageServer};

use super::commands;
use super::link::{self, Update};
use super::model::{Side, drifted};
use super::report::{self, Versions};
use super::state::{Doc, Shared, base_version, doc_paths, selector};
use crate::session::Client;

/// Updates buffered between the daemon link and the backend.
const UPDATES: usize = 64;

/// The language server.
#[derive(Debug)]
pub struct Backend {
    editor: Editor,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Backend {
    pub fn new(editor: Editor, options: link::Options) -> Backend {
        Backend {
            editor,
            shared: Arc::new(Shared::new(options)),
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Workspace folders of the client, as paths.
fn roots(params: &InitializeParams) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = params
        .workspace_folders
        .iter()
        .flatten()
        .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
        .collect();
    #[allow(deprecated)]
    if out.is_empty()
        && let Some(p) = params.root_uri.as_ref().and_then(|u| u.to_file_path())
    {
        out.push(p.into_owned());
    }
    out.into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect()
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        self.shared.set_roots(roots(&params));
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::FULL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![
                            CodeActionKind::QUICKFIX,
                            CodeActionKind::SOURCE,
                        ]),
                        ..Default::default()
                    },
                )),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: commands::ALL.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "smctl lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let (tx, mut rx) = mpsc::channel::<Update>(UPDATES);
        let link = tokio::spawn(link::run(self.shared.options.clone(), tx));
        let (shared, editor) = (Arc::clone(&self.shared), self.editor.clone());
        let apply = tokio::spawn(async move {
            while let Some(update) = rx.recv().await {
                shared.apply(&editor, update).await;
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([link, apply]);
    }

    async fn shutdown(&self) -> Result<()> {
        self.stop();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        // Only files can belong to an artifact; other schemes get nothing.
        let Some(paths) = doc_paths(&d.uri) else {
            return;
        };
        let doc = Doc {
            paths,
            text: d.text,
            version: d.version,
        };
        self.shared.open(d.uri.clone(), doc);
        self.shared.refresh(&self.editor, Some(&d.uri)).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        // Full sync: the last change holds the whole text.
        let Some(change) = params.content_changes.into_iter().last() else {
            return;
        };
        if self
            .shared
            .change(&uri, change.text, params.text_document.version)
        {
            self.shared.refresh(&self.editor, Some(&uri)).await;
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        if self.shared.doc(&uri).is_some() {
            self.shared.close(&uri);
            self.editor.publish_diagnostics(uri, Vec::new(), None).await;
        }
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let pos = params.text_document_position_params;
        let Some(doc) = self.shared.doc(&pos.text_document.uri) else {
            return Ok(None);
        };
        let (hits, records) = self.shared.hits(&doc);
        let (artifact, side) =
            if let Some(h) = hits.iter().find(|h| h.drifted()).or_else(|| hits.first()) {
                (h.artifact.clone(), h.side)
            } else if let Some(records) = records {
                // The record under the cursor: the last one starting at or above its line.
                let lines = report::record_lines(&doc.text);
                let Some(rec) = lines.iter().rev().find(|r| r.line <= pos.position.line) else {
                    return Ok(None);
                };
                let Some(a) = records
                    .into_iter()
                    .find(|a| a.artifact_path == rec.artifact_path)
                else {
                    return Ok(None);
                };
                (a, Side::Project)
            } else {
                return Ok(None);
            };
        let versions = match self.shared.daemon() {
            Some(mut d) => versions(&mut d, &artifact).await,
            None => Versions::default(),
        };
        Ok(Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: report::hover(&artifact, side, &versions),
            }),
            range: None,
        }))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let Some(doc) = self.shared.doc(&params.text_document.uri) else {
            return Ok(None);
        };
        let (hits, records) = self.shared.hits(&doc);
        let snapshot = commands::snapshot_target(&hits, records.as_deref());
        let targets: Vec<pb::ArtifactDrift> = if hits.is_empty() {
            // On a deployment file: the records on the requested lines.
            let lines = report::record_lines(&doc.text);
            let (from, to) = (params.range.start.line, params.range.end.line);
            records
                .unwrap_or_default()
                .into_iter()
                .filter(|a| {
                    report::line_of_record(&lines, a).is_some_and(|l| {
                        let end = lines
                            .iter()
                            .map(|r| r.line)
                            .filter(|&n| n > l)
                            .min()
                            .unwrap_or(u32::MAX);
                        l <= to && from < end
                    })
                })
                .collect()
        } else {
            hits.into_iter()
                .map(|h| h.artifact)
                .filter(|a| !a.profile_root.is_empty())
                .collect()
        };
        let actions = commands::actions(&targets, &params.context.diagnostics, snapshot);
        Ok((!actions.is_empty()).then_some(actions))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        Ok(commands::execute(
            &self.shared,
            &self.editor,
            &params.command,
            params.arguments,
        )
        .await)
    }
}

/// The newest versions of a deployment's two copies, and its deployed version.
async fn versions(daemon: &mut Client, a: &pb::ArtifactDrift) -> Versions {
    let newest =
        |r: std::result::Result<tonic::Response<pb::ArtifactLogResponse>, tonic::Status>| {
            r.ok()
                .and_then(|r| r.into_inner().versions.into_iter().next())
        };
    let project = if a.profile_root.is_empty() {
        None
    } else {
        newest(
            daemon
                .artifact_log(pb::ArtifactLogRequest {
                    artifact: Some(selector(a)),
                    graph: false,
                    stale_ok: false,
                })
                .await,
        )
    };
    let collection = newest(
        daemon
            .artifact_log(pb::ArtifactLogRequest {
                artifact: Some(pb::ArtifactSelector {
                    artifact: a.name.clone(),
                    project: String::new(),
                    collection: a.collection.clone(),
                }),
                graph: false,
                stale_ok: false,
            })
            .await,
    );
    let deployed = if drifted(a) || a.deployed_sha.is_some() {
        base_version(daemon, a).await
    } else {
        None
    };
    Versions {
        project,
        collection,
        deployed,
    }
}
