#!/usr/bin/env bash
# Create (once) a Python venv holding the real SkillMeat CLI, pinned to the
# release the Rust daemon is checked against, and print the path of its
# `skillmeat` executable as the last line of stdout. Safe to run from many tests
# at once (see lib.sh: one builder under a lock, published atomically; a broken
# venv is rebuilt).
#   SKILLMEAT_VENV   venv path (default: <repo>/target/skillmeat-venv)
#   SKILLMEAT_PYTHON interpreter used to create it (default: python3)
set -euo pipefail

SKILLMEAT_VERSION=0.74.0
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEAT_VENV:-$REPO_ROOT/target/skillmeat-venv}"
PY="${SKILLMEAT_PYTHON:-python3}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

# `skillmeat --version` prints "skillmeat, version X" (about 2 s, no network). It
# writes $HOME/.skillmeat/config.toml even for --version, so give it a throwaway HOME.
installed_ok() {
    local venv=$1 h v rc=0
    [ -x "$venv/bin/skillmeat" ] || return 1
    h="$(mktemp -d)"
    v="$(HOME="$h" "$venv/bin/skillmeat" --version </dev/null 2>/dev/null)" || rc=$?
    rm -rf "$h"
    [ "$rc" -eq 0 ] || return 1
    case "$v" in *"version $SKILLMEAT_VERSION"*) return 0 ;; *) return 1 ;; esac
}

install_into() {
    pip_venv skillmeat-venv "$PY" "$1" "skillmeat==$SKILLMEAT_VERSION"
}

build_once "$VENV" installed_ok install_into
echo "$VENV/bin/skillmeat"
