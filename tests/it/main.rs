//! Integration tests: the real `skillmeatd` and `smctl` binaries on a temporary HOME and
//! socket. One test binary, one module per area.

#[path = "../common/mod.rs"]
mod common;

mod bad_inputs;
mod crash;
mod doctor;
mod drift;
mod editors;
mod examples;
mod exit_codes;
mod first_run;
mod fresh;
mod graph;
mod grpc_python;
mod grpcurl;
mod hash_vectors;
mod history;
mod ids;
mod interop;
mod lifecycle;
mod live;
mod memory;
mod notify;
mod operations;
mod packaging;
mod projects;
mod propagate;
mod refusals;
mod reload;
mod service;
mod settle;
mod smctl;
mod soak;
mod status;
mod store;
mod supervision;
mod undo;
mod unreadable;
mod warm_restart;
mod writeback_interop;
