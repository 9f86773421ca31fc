//! `smctl`, the command-line client: all of it is the `smctl` library (`client/`). It is
//! built here, beside `skillmeatd`, so that every install of this package carries both.

fn main() -> std::process::ExitCode {
    smctl::main()
}
