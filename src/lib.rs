//! skillmeatd: always-on drift detection for SkillMeat collections and projects.
//!
//! # Layout
//! Layers point one way: each module imports only from layers below it (no import cycles;
//! `ARCHITECTURE.md` walks through the two main paths).
//!
//! 1. Foundations, plain functions over plain data: [`hash`] (SkillMeat's content hash),
//!    [`drift`] (classification rules), [`merge`] (three-way merge of texts and trees),
//!    [`formats`] (SkillMeat's files, read and edited), [`writer`] (every write into a
//!    collection or project: SkillMeat's lock, staged atomic swaps, confinement, write
//!    intents that let a crash be settled, the leftover sweep),
//!    [`transient`] (the names of transient files, made and recognised in one place),
//!    [`watcher`] (kernel events and polling turned into change hints), [`paths`],
//!    [`suggest`], [`faults`] (test-only fault points), [`regular`] (user files opened
//!    without ever blocking: regular files only), [`heap`] (glibc's arenas kept few, freed
//!    memory handed back).
//! 2. Domain: [`model`] (locations, versions, snapshots, drift reports, events, operation
//!    records), [`notification`] (what is worth a desktop notification and when: settings,
//!    the pure policy, the words) and [`config`] (`daemon.toml`, and the one channel the
//!    configuration in force is published on).
//! 3. State: [`store`] (sled; owns every key and encoding, persists model types only),
//!    [`index`] (hashes re-read only when metadata changed), [`projects`] + [`discovery`]
//!    (which projects exist).
//! 4. Engines: [`history`] (versions and their graph across locations, snapshots,
//!    retention, diff, archives), [`engine`]
//!    (drift of a project, project registration, totals), [`journal`] (events between two
//!    drift states).
//! 5. Live state and writes: [`live`] (the always-current drift, kept by one worker task;
//!    sync barriers), [`operations`] (sync, merge, propagate, rollback, undo over the writer, each with a
//!    reserved id, a safety snapshot, an operations-log record and claimed events; start-up
//!    recovery of interrupted ones).
//! 6. Edges: [`rpc`] (the gRPC service), [`reload`] (SIGHUP), [`socket`] (binding or socket
//!    activation), [`authority`] (lets in clients that send the socket path as
//!    `:authority`), [`service`] (readiness, watchdog), [`notifier`] (desktop notifications:
//!    the policy over the live events, the session bus or Notification Center, actions
//!    through [`operations`]), [`supervisor`] (every background task in one `JoinSet`) and
//!    [`daemon`] (lifecycle, `start`/`stop`/`status`).
//!
//! The wire crate `skillmeatd_proto` (in `proto/`, shared with `smctl`) sits below all of
//! them: the generated code (re-exported as [`rpc::pb`]), [`connect`], default paths, the
//! protocol version and the drift kinds ([`drift::DriftKind`]).

pub mod authority;
pub mod config;
pub use skillmeatd_proto::connect;
pub mod daemon;
pub mod discovery;
pub mod drift;
pub mod engine;
pub mod faults;
pub mod formats;
pub mod hash;
pub mod heap;
pub mod history;
pub mod index;
pub mod journal;
pub mod live;
pub mod merge;
pub mod model;
pub mod notification;
pub mod notifier;
pub mod operations;
pub mod paths;
pub mod projects;
pub mod regular;
pub mod reload;
pub mod rpc;
pub mod service;
pub mod socket;
pub mod store;
pub mod suggest;
pub mod supervisor;
pub mod transient;
pub mod watcher;
pub mod writer;
