//! The notification policy: which changes become notifications, and when.
//!
//! [`Policy`] is a plain state machine driven by its caller with the time passed in
//! ([`Now`]), so every rule is tested without a clock or a bus:
//! - a change is worth telling when its kind is on ([`Settings::kinds`]); an artifact
//!   that returns to sync (or whose new drift is switched off) is forgotten at once, so an
//!   edit undone within the window raises nothing;
//! - changes are gathered per project for `coalesce_ms` from the first one, then shown as
//!   one notification; while that notification is open the next batch updates it in
//!   place ([`Notice::replace`]) instead of stacking a new one;
//! - at most `rate_limit` notifications per project per `rate_window_secs`; later changes
//!   wait for the window and are merged, never dropped;
//! - when more than [`MAX_AT_ONCE`] projects are due together (a wake-up, a `git pull`
//!   touching everything) they become one notification;
//! - during quiet hours nothing is shown; the first poll after they end shows one summary;
//! - muted projects (by `daemon.toml` or `smctl notify mute`, with an expiry) are skipped
//!   and their open notification is closed.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::NaiveTime;

use super::settings::{Kind, Settings};
use super::text;
use crate::drift::DriftKind;

/// More projects than this due at one poll are shown as one notification.
pub const MAX_AT_ONCE: usize = 3;

/// The notification key of the quiet-hours summary.
pub const QUIET_KEY: &str = "quiet-hours";
/// The notification key of several projects shown together.
pub const MANY_KEY: &str = "projects";

/// The time, as the policy needs it.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic: windows and rate limits.
    pub mono: Instant,
    /// Milliseconds since the Unix epoch: mute expiry.
    pub wall_ms: i64,
    /// Local time of day: quiet hours.
    pub local: NaiveTime,
}

/// A drift change of one artifact (from a journal event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub project: String,
    pub profile_root: String,
    pub name: String,
    pub artifact_type: String,
    /// None: the deployment went away.
    pub new: Option<DriftKind>,
    /// Why a side is unreadable, for `error`.
    pub message: String,
}

/// How a write-back ended (from the operations log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The project folder, or `collection NAME`.
    pub group: String,
    pub id: u64,
    /// `sync_pull`, `merge`, …
    pub operation: String,
    /// What it wrote, as people read it.
    pub target: String,
    pub error: Option<String>,
    /// Files left with conflict markers.
    pub conflicted: usize,
}

/// What the policy is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Drift(Change),
    /// A SkillMeat file of `project` became invalid.
    InvalidFile {
        project: String,
        message: String,
    },
    Write(WriteOutcome),
}

/// One line of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub artifact_type: String,
    pub profile_root: String,
    pub kind: Kind,
    /// An error message, or the operation for failed writes.
    pub detail: String,
}

/// Something the person can do from a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ShowDiff,
    Pull,
    Push,
    Merge,
    Mute,
}

impl Action {
    /// The action key sent to the notification server.
    pub fn key(self) -> &'static str {
        match self {
            Action::ShowDiff => "diff",
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Merge => "merge",
            Action::Mute => "mute",
        }
    }

    /// The button label.
    pub fn label(self) -> &'static str {
        match self {
            Action::ShowDiff => "Show diff",
            Action::Pull => "Pull",
            Action::Push => "Push",
            Action::Merge => "Merge",
            Action::Mute => "Mute project",
        }
    }

    /// The action with this key.
    pub fn from_key(key: &str) -> Option<Action> {
        [
            Action::ShowDiff,
            Action::Pull,
            Action::Push,
            Action::Merge,
            Action::Mute,
        ]
        .into_iter()
        .find(|a| a.key() == key)
    }
}

/// A notification to show (or to update in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Which notification: a project folder, `collection NAME`, [`QUIET_KEY`] or
    /// [`MANY_KEY`]. One open notification per key.
    pub key: String,
    /// Update the key's open notification instead of showing a new one.
    pub replace: bool,
    pub summary: String,
    pub body: String,
    /// Offered when the server supports actions.
    pub actions: Vec<Action>,
    /// Something needs the person (conflict, missing, error, failed write).
    pub urgent: bool,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Show(Notice),
    /// Close the key's open notification (everything it said is resolved, or muted).
    Close(String),
}

/// One mute: a project or a folder of projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub path: PathBuf,
    /// Milliseconds since the epoch; None = until unmuted.
    pub until_ms: Option<i64>,
    /// Set in `daemon.toml` (cannot be undone with `smctl notify unmute`).
    pub from_config: bool,
}

impl Mute {
    /// Whether it silences `project` at `wall_ms`.
    pub fn covers(&self, project: &str, wall_ms: i64) -> bool {
        Path::new(project).starts_with(&self.path) && self.until_ms.is_none_or(|u| wall_ms < u)
    }
}

#[derive(Debug, Default)]
struct Group {
    /// Changes not shown yet, by artifact key.
    pending: BTreeMap<String, Item>,
    /// When `pending` is shown.
    due: Option<Instant>,
    /// What the open notification says.
    shown: BTreeMap<String, Item>,
    /// A notification of this key is open (may be updated in place).
    open: bool,
    /// The open notification says nothing true any more: close it.
    close: bool,
    /// When the recent notifications were sent (rate limit).
    sent: VecDeque<Instant>,
}

/// The policy's state.
#[derive(Debug)]
pub struct Policy {
    settings: Settings,
    mutes: Vec<Mute>,
    groups: BTreeMap<String, Group>,
    /// Held during quiet hours, by group.
    quiet: BTreeMap<String, BTreeMap<String, Item>>,
    many_open: bool,
}

fn item_key(kind_of_item: &str, root: &str, name: &str) -> String {
    format!("{kind_of_item}\0{root}\0{name}")
}

fn drift_kind(k: DriftKind) -> Kind {
    match k {
        DriftKind::InSync => Kind::InSync,
        DriftKind::Modified => Kind::Modified,
        DriftKind::Outdated => Kind::Outdated,
        DriftKind::Conflict => Kind::Conflict,
        DriftKind::Removed => Kind::Removed,
        DriftKind::Added => Kind::Added,
        DriftKind::Missing => Kind::Missing,
        DriftKind::Error => Kind::Error,
    }
}

impl Policy {
    pub fn new(settings: Settings) -> Policy {
        let mut p = Policy {
            settings: Settings::default(),
            mutes: Vec::new(),
            groups: BTreeMap::new(),
            quiet: BTreeMap::new(),
            many_open: false,
        };
        p.reload(settings);
        p
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// New settings: kinds switched off are forgotten; mutes from the file replaced.
    pub fn reload(&mut self, settings: Settings) {
        let wanted = |i: &Item| settings.wants(i.kind);
        for g in self.groups.values_mut() {
            g.pending.retain(|_, i| wanted(i));
            if g.pending.is_empty() {
                g.due = None;
            }
        }
        for held in self.quiet.values_mut() {
            held.retain(|_, i| wanted(i));
        }
        self.quiet.retain(|_, h| !h.is_empty());
        self.mutes.retain(|m| !m.from_config);
        self.mutes.extend(settings.mute.iter().map(|p| Mute {
            path: p.clone(),
            until_ms: None,
            from_config: true,
        }));
        self.settings = settings;
    }

    /// Replaces the mutes made with `smctl notify mute` (the ones from the file stay).
    pub fn set_mutes(&mut self, user: Vec<Mute>) {
        self.mutes.retain(|m| m.from_config);
        self.mutes.extend(user);
    }

    /// Every mute in force at `wall_ms`.
    pub fn mutes(&self, wall_ms: i64) -> Vec<Mute> {
        self.mutes
            .iter()
            .filter(|m| m.until_ms.is_none_or(|u| wall_ms < u))
            .cloned()
            .collect()
    }

    /// Whether `group` (a project folder) is muted now.
    pub fn muted(&self, group: &str, wall_ms: i64) -> bool {
        self.mutes.iter().any(|m| m.covers(group, wall_ms))
    }

    /// What the open notification of `key` says (for its actions).
    pub fn shown(&self, key: &str) -> Vec<Item> {
        self.groups
            .get(key)
            .map(|g| g.shown.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The server closed `key`'s notification (the person dismissed it, or it expired):
    /// the next batch opens a new one.
    pub fn closed(&mut self, key: &str) {
        if key == MANY_KEY {
            self.many_open = false;
        }
        if let Some(g) = self.groups.get_mut(key) {
            g.open = false;
            g.close = false;
            g.shown.clear();
        }
    }

    /// Takes in one change.
    pub fn input(&mut self, input: Input, now: &Now) {
        let (group, key, item) = match input {
            Input::Drift(c) => {
                let key = item_key(&c.artifact_type, &c.profile_root, &c.name);
                let kind = c.new.map(drift_kind);
                let wanted = kind.filter(|&k| {
                    self.settings.wants(k)
                        && (k == Kind::InSync || c.new.is_some_and(DriftKind::is_drift))
                });
                let Some(kind) = wanted else {
                    self.forget(&c.project, &key);
                    return;
                };
                // A new state of the artifact replaces what was said about it.
                self.forget(&c.project, &key);
                let item = Item {
                    name: c.name,
                    artifact_type: c.artifact_type,
                    profile_root: c.profile_root,
                    kind,
                    detail: c.message,
                };
                (c.project, key, item)
            }
            Input::InvalidFile { project, message } => {
                if !self.settings.wants(Kind::Error) {
                    return;
                }
                let key = item_key("file", "", &message);
                let item = Item {
                    name: String::new(),
                    artifact_type: "file".into(),
                    profile_root: String::new(),
                    kind: Kind::Error,
                    detail: message,
                };
                (project, key, item)
            }
            Input::Write(w) => {
                if (w.error.is_none() && w.conflicted == 0)
                    || !self.settings.wants(Kind::FailedWrite)
                {
                    return;
                }
                // Id 0: refused before the operations log could record it.
                let op = if w.id == 0 {
                    w.operation.clone()
                } else {
                    format!("{} (operation {})", w.operation, w.id)
                };
                let detail = match &w.error {
                    Some(e) => format!("{op} failed: {e}"),
                    None => format!(
                        "{op} left conflict markers in {} file{}",
                        w.conflicted,
                        if w.conflicted == 1 { "" } else { "s" }
                    ),
                };
                let key = item_key("operation", "", &w.id.to_string());
                let item = Item {
                    name: w.target,
                    artifact_type: "operation".into(),
                    profile_root: String::new(),
                    kind: Kind::FailedWrite,
                    detail,
                };
                (w.group, key, item)
            }
        };
        if self.muted(&group, now.wall_ms) {
            return;
        }
        let coalesce = Duration::from_millis(self.settings.coalesce_ms);
        let g = self.groups.entry(group).or_default();
        g.pending.insert(key, item);
        g.due.get_or_insert(now.mono + coalesce);
    }

    /// Drops what was said or about to be said of one artifact.
    fn forget(&mut self, group: &str, key: &str) {
        if let Some(held) = self.quiet.get_mut(group) {
            held.remove(key);
        }
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        g.pending.remove(key);
        if g.pending.is_empty() {
            g.due = None;
        }
        if g.shown.remove(key).is_some() && g.shown.is_empty() && g.open {
            g.close = true;
        }
    }

    fn quiet_now(&self, now: &Now) -> bool {
        self.settings
            .quiet_hours
            .is_some_and(|q| q.contains(now.local))
    }

    /// When [`Policy::poll`] has something to do next (None: only on new input).
    pub fn next_wake(&self, now: &Now) -> Option<Instant> {
        let mut next = self.groups.values().filter_map(|g| g.due).min();
        if self.groups.values().any(|g| g.close) {
            next = Some(now.mono);
        }
        if let Some(q) = self.settings.quiet_hours
            && !self.quiet.is_empty()
        {
            let end = if q.contains(now.local) {
                now.mono + q.remaining(now.local)
            } else {
                now.mono
            };
            next = Some(next.map_or(end, |n| n.min(end)));
        }
        next
    }

    /// What is due at `now`.
    pub fn poll(&mut self, now: &Now) -> Vec<Out> {
        let mut out = Vec::new();
        let quiet = self.quiet_now(now);
        if !quiet && !self.quiet.is_empty() {
            let held = std::mem::take(&mut self.quiet);
            out.push(Out::Show(text::quiet_summary(&held)));
        }
        let window = Duration::from_secs(self.settings.rate_window_secs);
        let limit = self.settings.rate_limit as usize;
        let wall = now.wall_ms;
        let muted: Vec<String> = self
            .groups
            .keys()
            .filter(|k| self.muted(k, wall))
            .cloned()
            .collect();
        let mut shows = Vec::new();
        for (key, g) in &mut self.groups {
            if muted.contains(key) {
                g.pending.clear();
                g.due = None;
                if g.open {
                    g.close = true;
                }
            }
            if std::mem::take(&mut g.close) {
                g.open = false;
                g.shown.clear();
                out.push(Out::Close(key.clone()));
            }
            if g.due.is_none_or(|d| d > now.mono) {
                continue;
            }
            if quiet {
                self.quiet
                    .entry(key.clone())
                    .or_default()
                    .append(&mut g.pending);
                g.due = None;
                continue;
            }
            while g.sent.front().is_some_and(|&t| now.mono >= t + window) {
                g.sent.pop_front();
            }
            if g.sent.len() >= limit {
                g.due = g.sent.front().map(|&t| t + window);
                continue;
            }
            let replace = g.open;
            if !replace {
                g.shown.clear();
            }
            g.shown.append(&mut g.pending);
            g.due = None;
            g.sent.push_back(now.mono);
            g.open = true;
            shows.push(text::project_notice(key, &g.shown, replace));
        }
        if shows.len() > MAX_AT_ONCE {
            // One notification for all of them; each project's next batch opens its own.
            let parts: Vec<(String, Vec<Item>)> = shows
                .iter()
                .map(|n| (n.key.clone(), self.shown(&n.key)))
                .collect();
            for (k, _) in &parts {
                if let Some(g) = self.groups.get_mut(k) {
                    g.open = false;
                }
            }
            out.push(Out::Show(text::many_notice(&parts, self.many_open)));
            self.many_open = true;
        } else {
            out.extend(shows.into_iter().map(Out::Show));
        }
        self.groups.retain(|_, g| {
            while g.sent.front().is_some_and(|&t| now.mono >= t + window) {
                g.sent.pop_front();
            }
            !(g.pending.is_empty() && g.shown.is_empty() && !g.open && g.sent.is_empty())
        });
        out
    }

    /// How many changes wait for quiet hours to end.
    pub fn held(&self) -> usize {
        self.quiet.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
