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

. "$REPO_ROOT/tests/support/lib.sh"
apt_provide watchman "$LOCK" works watchman \
    "install watchman yourself or set SKILLMEATD_WATCHMAN" \
    || exit $?
echo "$BIN"
