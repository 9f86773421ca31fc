#!/usr/bin/env bash
# Create (once) a Python venv holding Google's gRPC client (grpcio, its health and reflection clients from PyPI), generate
# Python stubs from proto/ with grpc_tools.protoc, and print the venv's python as the
# last line of stdout. Used by tests/it/grpc_python.rs to check that a third-party gRPC
# stack can use the daemon over its Unix socket.
#   SKILLMEATD_GRPC_VENV   venv dir (default: <repo>/target/grpc-venv)
#   SKILLMEAT_PYTHON       interpreter used to create it (default: python3)
set -euo pipefail

GRPC_VERSION=1.76.0
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEATD_GRPC_VENV:-$REPO_ROOT/target/grpc-venv}"
PY="${SKILLMEAT_PYTHON:-python3}"
STUBS="$VENV/stubs"
MARK="$VENV/.installed-$GRPC_VERSION"

if [ ! -f "$MARK" ] || ! "$VENV/bin/python" -c 'import grpc, grpc_health.v1, grpc_reflection.v1alpha, grpc_tools' 2>/dev/null; then
    echo "grpc-venv: installing grpcio==$GRPC_VERSION into $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    # A half-built venv from an interrupted run would confuse pip: start clean.
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet --no-input \
        "grpcio==$GRPC_VERSION" "grpcio-tools==$GRPC_VERSION" \
        "grpcio-health-checking==$GRPC_VERSION" "grpcio-reflection==$GRPC_VERSION" >&2
    touch "$MARK"
fi

# Stubs are regenerated every time: cheap, and they always match the current proto.
rm -rf "$STUBS.tmp"
mkdir -p "$STUBS.tmp"
"$VENV/bin/python" -m grpc_tools.protoc -I "$REPO_ROOT/proto" \
    --python_out="$STUBS.tmp" --grpc_python_out="$STUBS.tmp" \
    "$REPO_ROOT/proto/skillmeat/daemon/v1/daemon.proto" >&2
rm -rf "$STUBS"
mv "$STUBS.tmp" "$STUBS"

echo "$VENV/bin/python"
