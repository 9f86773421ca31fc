#!/usr/bin/env bash
# Install (once) cargo-deb from crates.io, which builds the Debian package
# (packaging/deb.sh), and print the path of its executable as the last line of stdout.
# It is compiled from source with `cargo install --locked` into its own root, so nothing
# in ~/.cargo changes. Safe to run from many callers at once (see lib.sh).
#   SKILLMEATD_CARGO_DEB_ROOT  install root (default: <repo>/target/cargo-deb)
set -euo pipefail

CARGO_DEB_VERSION=3.8.0
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROOT="${SKILLMEATD_CARGO_DEB_ROOT:-$REPO_ROOT/target/cargo-deb}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

# `cargo-deb --version` prints "cargo-deb 3.8.0" (or with a suffix); anything else is stale.
installed_ok() {
    case "$("$1/bin/cargo-deb" --version 2>/dev/null)" in
        *" $CARGO_DEB_VERSION"*) return 0 ;;
        *) return 1 ;;
    esac
}

install_into() {
    local root=$1 build
    echo "cargo-deb: installing cargo-deb $CARGO_DEB_VERSION into $root" >&2
    # A private target dir, removed afterwards: its build products are not kept.
    build="$(mktemp -d)"
    local rc=0
    CARGO_TARGET_DIR="$build" cargo install --quiet --locked --root "$root" \
        "cargo-deb@$CARGO_DEB_VERSION" >&2 || rc=$?
    rm -rf "$build"
    return "$rc"
}

build_once "$ROOT" installed_ok install_into
echo "$ROOT/bin/cargo-deb"
