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
//! - Edges: [`rpc`] (the gRPC service: RPC methods, conversions, the Watch stream, error
//!   codes), [`daemon`] (lifecycle, socket, start/stop),
//!   [`service`] (systemd/launchd integration: readiness, watchdog, socket activation),
//!   [`reload`] (SIGHUP re-reads `daemon.toml`), [`paths`] (the daemon's files; the
//!   defaults come from the wire crate).
//! - The wire crate `skillmeatd_proto` (in `proto/`, shared with `smctl`): the generated
//!   code (re-exported as [`rpc::pb`]), [`connect`], default paths, the protocol version
//!   and the drift kinds ([`drift::DriftKind`]).
//! - [`suggest`]: "did you mean" for misspelt names.

pub mod config;
pub use skillmeatd_proto::connect;
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
pub mod reload;
pub mod rpc;
pub mod service;
pub mod store;
pub mod suggest;
pub mod watcher;
pub mod writer;
