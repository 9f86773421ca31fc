//! Integration tests: the real `skillmeatd` and `smctl` binaries on a temporary HOME and
//! socket. One test binary, one module per area.

#[path = "../common/mod.rs"]
mod common;

mod bad_inputs;
mod drift;
mod hash_vectors;
mod lifecycle;
mod projects;
mod writeback_interop;
