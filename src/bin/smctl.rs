//! `smctl`, the command-line client: all of it is the `smctl` library (`client/`). It is
//! built here, beside `skillmeatd`, so that every install of this package carries both.

fn main() -> std::process::ExitCode {
    // The revision is this package's: its build script sets it (see build.rs).
    smctl::main(option_env!("SKILLMEATD_REVISION"))
}
