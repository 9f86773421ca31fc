#!/usr/bin/env bash
# Make sure Debian's `watchman` package (4.9 on Debian 12) is installed, and print the
# path of its `watchman` as the last line of stdout: the reference the live benchmark
# (benches/live.rs) measures skillmeatd's cold start and memory against.
#
# Installing a Debian package needs root: as root it runs `apt-get install watchman`
# once, under a lock, however many runs ask; as another user with the package missing it
# exits 3 and says which package to install, so the benchmark can leave the figure out.
#   SKILLMEATD_WATCHMAN   the binary to use instead (default: /usr/bin/watchman)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${SKILLMEATD_WATCHMAN:-/usr/bin/watchman}"
LOCK="$REPO_ROOT/target/watchman.lock"

works() {
    [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1
}

if works; then
    echo "$BIN"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "watchman: Debian's 'watchman' package is not installed and installing it needs root (run: sudo apt-get install watchman)" >&2
    exit 3
fi
if ! command -v apt-get >/dev/null; then
    echo "watchman: no apt-get on this machine: install watchman yourself or set SKILLMEATD_WATCHMAN" >&2
    exit 3
fi
mkdir -p "$(dirname "$LOCK")"
exec {fd}>"$LOCK"
flock "$fd"
if ! works; then
    echo "watchman: installing Debian's watchman package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends watchman >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends watchman >&2; }
fi
works || { echo "watchman: $BIN does not run after installing watchman" >&2; exit 1; }
echo "$BIN"
