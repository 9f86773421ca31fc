#!/usr/bin/env bash
# Install (once) the Node example client's dependencies — @grpc/grpc-js and
# @grpc/proto-loader, exactly as client/examples/node/package-lock.json pins them — with
# `npm ci`, and print their node_modules folder as the last line of stdout (for NODE_PATH).
# Used by tests/it/examples.rs to run client/examples/node against the daemon. Safe to run
# from many tests at once (see lib.sh); a changed lockfile gets a fresh install.
#   SKILLMEATD_GRPC_NODE   install folder (default: <repo>/target/grpc-node)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXAMPLE="$REPO_ROOT/client/examples/node"
TARGET="${SKILLMEATD_GRPC_NODE:-$REPO_ROOT/target/grpc-node}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

command -v npm >/dev/null || { echo "grpc-node.sh: npm is not installed (Node.js 18 or later with npm is needed)" >&2; exit 1; }
LOCK_KEY="$(cat "$EXAMPLE/package.json" "$EXAMPLE/package-lock.json" | sha256sum | cut -c1-16)"

installed_ok() {
    [ -f "$1/.installed-$LOCK_KEY" ] \
        && (cd "$1" && node -e "require('@grpc/grpc-js'); require('@grpc/proto-loader')") 2>/dev/null
}

install_into() {
    local dir=$1
    echo "grpc-node: npm ci (client/examples/node/package-lock.json) into $dir" >&2
    cp "$EXAMPLE/package.json" "$EXAMPLE/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
    touch "$dir/.installed-$LOCK_KEY"
}

build_once "$TARGET" installed_ok install_into
echo "$TARGET/node_modules"
