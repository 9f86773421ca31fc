//! The language server's state and the diagnostics it publishes.
//!
//! [`Shared`] holds the open documents, the [`Model`] of every artifact's drift and the
//! daemon client, behind a short-lived `std` mutex (never held across an `.await`).
//! [`Shared::refresh`] recomputes the diagnostics of open documents and publishes those
//! that changed; one refresh runs at a time, so a document's diagnostics never go back to
//! an older answer. Ranges come from the daemon's `Diff` (the first changed hunk of this
//! file against the other side) and are cached by the artifact's hashes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;
use tower_lsp_server::Client as Editor;
use tower_lsp_server::ls_types::{Diagnostic, MessageType, Uri, notification::Notification};

use skillmeatd_proto::{DriftKind, pb};

use super::link::{self, Update};
use super::model::{Hit, Model, Side, drifted, kind};
use super::report;
use crate::session::Client;

/// An open document.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The path as the editor named it, then its canonical form when that differs.
    pub paths: Vec<PathBuf>,
    pub text: String,
    pub version: i32,
}

impl Doc {
    pub fn path_refs(&self) -> Vec<&Path> {
        self.paths.iter().map(PathBuf::as_path).collect()
    }
}

/// The `file:` path of `uri`, with its canonical form; `None` for other schemes.
pub fn doc_paths(uri: &Uri) -> Option<Vec<PathBuf>> {
    if uri.scheme().as_str() != "file" {
        return None;
    }
    let path = uri.to_file_path()?.into_owned();
    if !path.is_absolute() {
        return None;
    }
    // A file not written yet has no canonical form; its folder may.
    let canonical = std::fs::canonicalize(&path).ok().or_else(|| {
        let parent = std::fs::canonicalize(path.parent()?).ok()?;
        Some(parent.join(path.file_name()?))
    });
    let mut paths = vec![path];
    if let Some(c) = canonical.filter(|c| c != &paths[0]) {
        paths.push(c);
    }
    Some(paths)
}

/// The custom notification carrying drift counts for status bars.
#[derive(Debug)]
pub enum StatusNotification {}

impl Notification for StatusNotification {
    type Params = serde_json::Value;
    const METHOD: &'static str = "skillmeat/status";
}

/// Everything behind the lock.
#[derive(Debug, Default)]
struct State {
    model: Model,
    docs: HashMap<Uri, Doc>,
    daemon: Option<Client>,
    /// Workspace folders, for the status count.
    roots: Vec<PathBuf>,
}

/// Which answer a cached range belongs to.
type RangeKey = (Uri, String, String, String, String);

/// State shared by the request handlers and the daemon link.
#[derive(Debug)]
pub struct Shared {
    pub options: link::Options,
    state: Mutex<State>,
    /// Held for a whole refresh; maps each document to what was last published for it.
    published: tokio::sync::Mutex<HashMap<Uri, Vec<Diagnostic>>>,
    ranges: Mutex<HashMap<RangeKey, Option<(u32, u32)>>>,
    /// A private folder for diff documents, removed with the server.
    diffs: std::sync::OnceLock<tempfile::TempDir>,
}

/// One document's inputs for a refresh.
struct Pending {
    uri: Uri,
    doc: Doc,
    hits: Vec<Hit>,
    records: Option<Vec<pb::ArtifactDrift>>,
}

impl Shared {
    pub fn new(options: link::Options) -> Shared {
        Shared {
            options,
            state: Mutex::new(State::default()),
            published: tokio::sync::Mutex::new(HashMap::new()),
            ranges: Mutex::new(HashMap::new()),
            diffs: std::sync::OnceLock::new(),
        }
    }

    /// The folder diff documents are written to (created, mode 0700, on first use).
    ///
    /// # Errors
    /// The temporary folder cannot be created.
    pub fn diff_dir(&self) -> Result<&Path, String> {
        if self.diffs.get().is_none() {
            let dir = tempfile::Builder::new()
                .prefix("smctl-lsp-diff")
                .tempdir()
                .map_err(|e| format!("cannot create a folder for the diff: {e}"))?;
            let _ = self.diffs.set(dir);
        }
        Ok(self.diffs.get().expect("set above").path())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_roots(&self, roots: Vec<PathBuf>) {
        self.lock().roots = roots;
    }

    pub fn open(&self, uri: Uri, doc: Doc) {
        self.lock().docs.insert(uri, doc);
    }

    /// Replaces an open document's text; `false` when it is not open.
    pub fn change(&self, uri: &Uri, text: String, version: i32) -> bool {
        match self.lock().docs.get_mut(uri) {
            Some(d) => {
                d.text = text;
                d.version = version;
                true
            }
            None => false,
        }
    }

    pub fn close(&self, uri: &Uri) {
        self.lock().docs.remove(uri);
    }

    pub fn doc(&self, uri: &Uri) -> Option<Doc> {
        self.lock().docs.get(uri).cloned()
    }

    /// Every open document.
    pub fn docs(&self) -> Vec<(Uri, Doc)> {
        self.lock()
            .docs
            .iter()
            .map(|(u, d)| (u.clone(), d.clone()))
            .collect()
    }

    /// The daemon client, when connected.
    pub fn daemon(&self) -> Option<Client> {
        self.lock().daemon.clone()
    }

    /// The artifacts a document belongs to, and its deployment records when it is a
    /// deployment file.
    pub fn hits(&self, doc: &Doc) -> (Vec<Hit>, Option<Vec<pb::ArtifactDrift>>) {
        let s = self.lock();
        let paths = doc.path_refs();
        (s.model.hits(&paths), s.model.records(&paths))
    }

    /// The deployments of `artifact_path` in `project` (in `root`, or in any profile root).
    pub fn deployments(
        &self,
        project: &str,
        root: Option<&str>,
        artifact_path: &str,
    ) -> Vec<pb::ArtifactDrift> {
        self.lock().model.deployments(project, root, artifact_path)
    }

    /// Applies an update from the daemon link, tells the user about an outage (once),
    /// and refreshes every open document.
    pub async fn apply(&self, editor: &Editor, update: Update) {
        let mut announce = None;
        {
            let mut s = self.lock();
            match update {
                Update::Connected { client, artifacts } => {
                    s.daemon = Some(client);
                    s.model.replace_all(artifacts);
                }
                Update::Project { project, artifacts } => {
                    s.model.replace_project(&project, artifacts);
                }
                Update::All(artifacts) => s.model.replace_all(artifacts),
                Update::Gone { reason, first } => {
                    s.daemon = None;
                    s.model.clear();
                    if first {
                        announce = Some(reason);
                    }
                }
            }
        }
        if let Some(reason) = announce {
            self.ranges
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            let msg = format!(
                "skillmeat: {reason}. Drift diagnostics are off until skillmeatd answers on {} \
                 again (start it with `skillmeatd start`); retrying.",
                self.options.paths.socket.display()
            );
            editor.show_message(MessageType::WARNING, msg).await;
        }
        self.refresh(editor, None).await;
    }

    /// Sends the status counts, then recomputes and publishes the diagnostics of every
    /// open document (or of `only`).
    pub async fn refresh(&self, editor: &Editor, only: Option<&Uri>) {
        let mut published = self.published.lock().await;
        // Counts first: a status bar is current by the time the diagnostics arrive.
        self.send_status(editor).await;
        let (pending, daemon) = {
            let s = self.lock();
            let pending: Vec<Pending> = s
                .docs
                .iter()
                .filter(|(u, _)| only.is_none_or(|o| o == *u))
                .map(|(uri, doc)| {
                    let paths = doc.path_refs();
                    Pending {
                        uri: uri.clone(),
                        doc: doc.clone(),
                        hits: s.model.hits(&paths),
                        records: s.model.records(&paths),
                    }
                })
                .collect();
            (pending, s.daemon.clone())
        };
        for p in pending {
            let diags = self.diagnostics(daemon.clone(), &p).await;
            // A file that never had a diagnostic gets nothing, not an empty list.
            let unchanged = published
                .get(&p.uri)
                .map_or(diags.is_empty(), |last| last == &diags);
            if !unchanged {
                editor
                    .publish_diagnostics(p.uri.clone(), diags.clone(), Some(p.doc.version))
                    .await;
                published.insert(p.uri, diags);
            }
        }
        // Closed documents are forgotten (their diagnostics were cleared on close).
        let open: Vec<Uri> = self.lock().docs.keys().cloned().collect();
        published.retain(|u, _| open.contains(u));
    }

    /// Tells the editor the drift counts (for a status bar).
    pub async fn send_status(&self, editor: &Editor) {
        let (connected, (all, local)) = {
            let s = self.lock();
            (s.daemon.is_some(), s.model.drift_counts(&s.roots))
        };
        editor
            .send_notification::<StatusNotification>(json!({
                "connected": connected,
                "drifted": all,
                "workspaceDrifted": local,
            }))
            .await;
    }

    async fn diagnostics(&self, daemon: Option<Client>, p: &Pending) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for hit in p.hits.iter().filter(|h| h.drifted()) {
            let lines = match &daemon {
                Some(d) => self.change_lines(d.clone(), &p.uri, hit).await,
                None => None,
            };
            let (first, last) = lines.unwrap_or((0, 0));
            let range = report::lines_range(&p.doc.text, first, last);
            out.extend(report::diagnostic(&hit.artifact, hit.side, range));
        }
        if let Some(records) = &p.records {
            let lines = report::record_lines(&p.doc.text);
            for a in records.iter().filter(|a| drifted(a)) {
                let line = report::line_of_record(&lines, a).unwrap_or(0);
                let range = report::lines_range(&p.doc.text, line, line);
                out.extend(report::diagnostic(a, Side::Project, range));
            }
        }
        out
    }

    /// The first changed lines of the hit's file, cached by the artifact's hashes.
    async fn change_lines(&self, daemon: Client, uri: &Uri, hit: &Hit) -> Option<(u32, u32)> {
        let a = &hit.artifact;
        let key: RangeKey = (
            uri.clone(),
            format!("{}\0{}\0{}", a.project, a.profile_root, a.artifact_path),
            a.deployed_sha.clone().unwrap_or_default(),
            a.collection_sha.clone().unwrap_or_default(),
            a.project_sha.clone().unwrap_or_default(),
        );
        if let Some(r) = self
            .ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return *r;
        }
        let lines = first_change(daemon, hit).await;
        self.ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, lines);
        lines
    }
}

/// The selector of a deployment, as the history and write-back RPCs take it.
pub fn selector(a: &pb::ArtifactDrift) -> pb::ArtifactSelector {
    pb::ArtifactSelector {
        artifact: a.artifact_path.clone(),
        project: a.project.clone(),
        collection: String::new(),
    }
}

/// The history version whose content is the deployed one (the merge base), if recorded.
pub async fn base_version(daemon: &mut Client, a: &pb::ArtifactDrift) -> Option<pb::VersionInfo> {
    let deployed = a.deployed_sha.as_ref()?;
    let logs = [
        selector(a),
        pb::ArtifactSelector {
            artifact: a.name.clone(),
            project: String::new(),
            collection: a.collection.clone(),
        },
    ];
    for sel in logs {
        let req = pb::ArtifactLogRequest {
            artifact: Some(sel),
            graph: false,
            stale_ok: false,
        };
        if let Ok(r) = daemon.artifact_log(req).await
            && let Some(v) = r
                .into_inner()
                .versions
                .into_iter()
                .find(|v| &v.content_hash == deployed)
        {
            return Some(v);
        }
    }
    None
}

/// Where the hit's file first differs from the other side: for `modified` and `outdated`
/// the other copy (the collection's for a project file, the project's for a collection
/// file), for `conflict` the deployed version from history (none recorded: no range).
async fn first_change(mut daemon: Client, hit: &Hit) -> Option<(u32, u32)> {
    let a = &hit.artifact;
    let mine = match hit.side {
        Side::Project => "project",
        Side::Collection => "collection",
    };
    let other = match kind(a) {
        Some(DriftKind::Modified | DriftKind::Outdated) => match hit.side {
            Side::Project => "collection".to_string(),
            Side::Collection => "project".to_string(),
        },
        Some(DriftKind::Conflict) => base_version(&mut daemon, a).await?.id,
        _ => return None,
    };
    let req = pb::DiffRequest {
        a: other,
        b: mine.to_string(),
        subject: Some(selector(a)),
        stale_ok: false,
    };
    let files = daemon.diff(req).await.ok()?.into_inner().files;
    let file = report::file_for(&files, &hit.inner)?;
    if file.binary {
        return None;
    }
    report::first_change(&file.hunks)
}
