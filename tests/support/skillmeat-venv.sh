#!/usr/bin/env bash
# Create (once) a Python venv holding the real SkillMeat CLI, pinned to the
# release the Rust daemon is checked against, and print the path of its
# `skillmeat` executable as the last line of stdout.
#   SKILLMEAT_VENV   venv dir (default: <repo>/target/skillmeat-venv)
#   SKILLMEAT_PYTHON interpreter used to create it (default: python3)
set -euo pipefail

SKILLMEAT_VERSION=0.74.0
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEAT_VENV:-$REPO_ROOT/target/skillmeat-venv}"
PY="${SKILLMEAT_PYTHON:-python3}"

# Cheap idempotency check: `skillmeat --version` prints "skillmeat, version X"
# (about 2 s, no network). Re-install if missing, broken or another version.
# It writes $HOME/.skillmeat/config.toml even for --version, so give it a
# throwaway HOME instead of the caller's.
installed_ok() {
    [ -x "$VENV/bin/skillmeat" ] || return 1
    local h v rc=0
    h="$(mktemp -d)"
    v="$(HOME="$h" "$VENV/bin/skillmeat" --version </dev/null 2>/dev/null)" || rc=$?
    rm -rf "$h"
    [ "$rc" -eq 0 ] || return 1
    case "$v" in *"version $SKILLMEAT_VERSION"*) return 0 ;; *) return 1 ;; esac
}

if ! installed_ok; then
    echo "skillmeat-venv: installing skillmeat==$SKILLMEAT_VERSION into $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    # A half-built venv from an interrupted run would confuse pip: start clean,
    # but never delete a non-empty directory that is not a venv.
    if [ -d "$VENV" ] && [ -n "$(ls -A "$VENV")" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
        echo "skillmeat-venv: $VENV exists and is not a venv; refusing to replace it" >&2
        exit 1
    fi
    rm -rf "$VENV"
    # Debian's python3 needs the python3-venv package for ensurepip.
    "$PY" -m venv "$VENV" >&2 || {
        echo "skillmeat-venv: '$PY -m venv' failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
    # No pip self-upgrade or version-check chatter; PyPI only.
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet \
        --no-input "skillmeat==$SKILLMEAT_VERSION" >&2
    installed_ok || { echo "skillmeat-venv: install finished but '$VENV/bin/skillmeat --version' fails" >&2; exit 1; }
fi

echo "$VENV/bin/skillmeat"
