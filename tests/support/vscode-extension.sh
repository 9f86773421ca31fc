#!/usr/bin/env bash
# Build (once per source version) the VS Code extension of client/editors/vscode: npm ci,
# tsc, its unit tests (Node's test runner) and `vsce package`; print the path of the
# .vsix as the last line of stdout. The build runs in a copy under target/, so the source
# tree gets no node_modules; the sources' hash names the build, so a changed source is
# rebuilt and an unchanged one is not. Safe to run from many tests at once (see lib.sh).
#   SKILLMEATD_VSCODE_BUILD   build folder (default: <repo>/target/vscode-extension)
# Exits 3, saying why, when node or npm is missing (the tests that need it skip).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$REPO_ROOT/client/editors/vscode"
TARGET="${SKILLMEATD_VSCODE_BUILD:-$REPO_ROOT/target/vscode-extension}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

for tool in node npm; do
    command -v "$tool" >/dev/null || {
        echo "vscode-extension: '$tool' is not installed (Node.js 20 or later is needed to build the extension)" >&2
        exit 3
    }
done

# Everything that goes into the build, minus what a build leaves behind.
SOURCES_KEY="$(cd "$SRC" && find . -path ./node_modules -prune -o -path ./out -prune -o -name '*.vsix' -prune -o -type f -print \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"

built_ok() {
    [ -f "$1/.sources-$SOURCES_KEY" ] && [ -s "$1/skillmeat.vsix" ]
}

build_into() {
    local dir=$1
    echo "vscode-extension: building the extension in $dir" >&2
    (cd "$SRC" && tar --exclude=./node_modules --exclude=./out --exclude='./*.vsix' -cf - .) | (cd "$dir" && tar -xf -)
    (
        cd "$dir"
        npm ci --no-audit --no-fund >&2
        npm run build >&2
        npm test >&2
        npm run package >&2
    )
    touch "$dir/.sources-$SOURCES_KEY"
}

build_once "$TARGET" built_ok build_into
echo "$TARGET/skillmeat.vsix"
