#!/usr/bin/env bash
# Create (once) a Python venv holding maturin (from PyPI), the build backend of the wheel
# (pyproject.toml), and print the path of its `maturin` executable as the last line of
# stdout. Used by packaging/check.sh. Safe to run from many callers at once (see lib.sh:
# one builder under a lock, published atomically; a broken venv is rebuilt).
#   SKILLMEATD_MATURIN_VENV  venv path (default: <repo>/target/maturin-venv)
#   SKILLMEAT_PYTHON         interpreter used to create it (default: python3)
set -euo pipefail

MATURIN_VERSION=1.16.0
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEATD_MATURIN_VENV:-$REPO_ROOT/target/maturin-venv}"
PY="${SKILLMEAT_PYTHON:-python3}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

installed_ok() {
    case "$("$1/bin/maturin" --version 2>/dev/null)" in
        "maturin $MATURIN_VERSION") return 0 ;;
        *) return 1 ;;
    esac
}

install_into() {
    pip_venv maturin-venv "$PY" "$1" "maturin==$MATURIN_VERSION"
}

build_once "$VENV" installed_ok install_into
echo "$VENV/bin/maturin"
