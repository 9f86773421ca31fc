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

if is_debian_nvim; then
    echo "$NVIM"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "neovim-debian: Debian's 'neovim' package is not installed and installing it needs root (run: sudo apt-get install neovim)" >&2
    exit 3
fi
if ! command -v apt-get >/dev/null; then
    echo "neovim-debian: no apt-get on this machine: install the 'neovim' package (0.7 or later) yourself or set SKILLMEATD_DEBIAN_NVIM" >&2
    exit 3
fi
mkdir -p "$(dirname "$LOCK")"
exec {fd}>"$LOCK"
flock "$fd"
if ! is_debian_nvim; then
    echo "neovim-debian: installing Debian's neovim package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends neovim >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends neovim >&2; }
fi
is_debian_nvim || { echo "neovim-debian: $NVIM does not run after installing neovim" >&2; exit 1; }
echo "$NVIM"
