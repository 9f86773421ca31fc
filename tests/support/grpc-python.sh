#!/usr/bin/env bash
# Create (once) a Python venv holding Google's gRPC client (grpcio, its health and
# reflection clients from PyPI), generate Python stubs from proto/ with
# grpc_tools.protoc, and print the venv's python as the last line of stdout. Used by
# tests/it/grpc_python.rs to check that a third-party gRPC stack can use the daemon over
# its Unix socket. Safe to run from many tests at once (see lib.sh).
#   SKILLMEATD_GRPC_VENV   venv path (default: <repo>/target/grpc-venv)
#   SKILLMEAT_PYTHON       interpreter used to create it (default: python3)
# The stubs are in <venv>/stubs, regenerated when the proto changes.
set -euo pipefail

GRPC_VERSION=1.85.1
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEATD_GRPC_VENV:-$REPO_ROOT/target/grpc-venv}"
PY="${SKILLMEAT_PYTHON:-python3}"
PROTO="$REPO_ROOT/proto/skillmeat/daemon/v1/daemon.proto"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

installed_ok() {
    [ -f "$1/.installed-$GRPC_VERSION" ] \
        && "$1/bin/python" -c 'import grpc, grpc_health.v1, grpc_reflection.v1alpha, grpc_tools' 2>/dev/null
}

install_into() {
    pip_venv grpc-venv "$PY" "$1" "grpcio==$GRPC_VERSION" "grpcio-tools==$GRPC_VERSION" \
        "grpcio-health-checking==$GRPC_VERSION" "grpcio-reflection==$GRPC_VERSION"
    touch "$1/.installed-$GRPC_VERSION"
}

build_once "$VENV" installed_ok install_into

# Stubs for this exact proto: generated once per proto content, published by renaming a
# symbolic link, so a test importing the previous stubs is never disturbed.
STUB_KEY="$(sha256sum "$PROTO" | cut -c1-16)"
stubs_ok() { [ -f "$1/skillmeat/daemon/v1/daemon_pb2.py" ]; }
make_stubs() {
    "$VENV/bin/python" -m grpc_tools.protoc -I "$REPO_ROOT/proto" \
        --python_out="$1" --grpc_python_out="$1" "$PROTO" >&2
}
if [ "$(readlink "$VENV/stubs" 2>/dev/null || true)" != "stubs-$STUB_KEY" ] || ! stubs_ok "$VENV/stubs"; then
    build_once "$VENV/stubs-$STUB_KEY" stubs_ok make_stubs
    ln -sfn "stubs-$STUB_KEY" "$VENV/stubs.link-$$"
    mv -T "$VENV/stubs.link-$$" "$VENV/stubs"
fi

echo "$VENV/bin/python"
