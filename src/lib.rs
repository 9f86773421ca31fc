//! skillmeatd: always-on drift detection for SkillMeat collections and projects.
//!
//! # Layout
//! - Pure core: [`hash`] (SkillMeat's content hash), [`formats`] (its files), [`drift`]
//!   (classification rules), [`config`] (`daemon.toml`), [`merge`] (three-way merge of
//!   texts and artifact trees).
//! - State: [`store`] (sled; owns every key and encoding), [`index`] (hashes re-read only
//!   when metadata changed), [`projects`] + [`discovery`] (which projects exist).
//! - [`history`]: every version of every artifact, snapshots, retention, diff, archives.
//! - [`engine`]: ties the above into answers (drift, project summaries, totals).
//! - [`writer`]: every write into a collection or project (SkillMeat's flock protocol,
//!   staged atomic swaps, confined to a managed folder).
//! - [`operations`]: sync pull/push, merge, rollback and undo over the writer, each with a
//!   safety snapshot first and a record in the operations log.
//! - Edges: [`rpc`] (the gRPC service), [`daemon`] (lifecycle, socket, start/stop),
//!   [`authority`] (lets clients that send the socket path as `:authority` in),
//!   [`service`] (systemd/launchd integration: readiness, watchdog, socket activation),
//!   [`reload`] (SIGHUP re-reads `daemon.toml`), [`paths`], [`connect`] and [`protocol`]
//!   (shared with `smctl`).
//! - [`suggest`]: "did you mean" for misspelt names.

pub mod authority;
pub mod config;
#[path = "connect.rs"]
pub mod connect;
pub mod daemon;
pub mod discovery;
pub mod drift;
pub mod engine;
pub mod formats;
pub mod hash;
pub mod history;
pub mod index;
pub mod journal;
pub mod live;
pub mod merge;
pub mod operations;
pub mod paths;
pub mod projects;
pub mod protocol;
pub mod reload;
pub mod rpc;
pub mod service;
pub mod store;
pub mod suggest;
pub mod watcher;
pub mod writer;
