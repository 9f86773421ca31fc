#!/usr/bin/env bash
# Make sure Debian's `neovim` package (0.7.2 on Debian 12: the oldest Neovim the editor
# plugin supports, with `vim.lsp.start_client` and no `vim.lsp.start`) is installed, and
# print the path of its `nvim` as the last line of stdout.
#
# Installing a Debian package needs root: as root (CI) it runs `apt-get install neovim`
# once, under a lock, however many tests ask; as another user with the package missing it
# exits 3 and says which package to install, so the tests that need it can skip.
#   SKILLMEATD_DEBIAN_NVIM   the binary to use instead (default: /usr/bin/nvim)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NVIM="${SKILLMEATD_DEBIAN_NVIM:-/usr/bin/nvim}"
LOCK="$REPO_ROOT/target/neovim-debian.lock"

is_debian_nvim() {
    # Debian's package installs the real binary under /usr/bin (via alternatives).
    [ -x "$NVIM" ] && "$NVIM" --version 2>/dev/null | head -1 | grep -q '^NVIM v'
}

. "$REPO_ROOT/tests/support/lib.sh"
apt_provide neovim-debian "$LOCK" is_debian_nvim neovim \
    "install the 'neovim' package (0.7 or later) yourself or set SKILLMEATD_DEBIAN_NVIM" \
    || exit $?
echo "$NVIM"
