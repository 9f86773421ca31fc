//! Integration tests: the real `skillmeatd` and `smctl` binaries on a temporary HOME and
//! socket. One test binary, one module per area.

#[path = "../common/mod.rs"]
mod common;

mod bad_inputs;
mod doctor;
mod drift;
mod first_run;
mod grpc_python;
mod hash_vectors;
mod history;
mod interop;
mod lifecycle;
mod live;
mod notify;
mod operations;
mod packaging;
mod projects;
mod reload;
mod service;
mod smctl;
mod soak;
mod supervision;
mod writeback_interop;
