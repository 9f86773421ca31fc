# Shared by the support scripts that install test tools (venvs, npm packages, binaries).
# Source it; it defines `build_once`.
#
# build_once TARGET CHECK BUILD
#   Makes TARGET a working install exactly once, however many tests ask at the same time:
#   - an exclusive lock (flock on TARGET.lock) serialises the callers; the others wait and
#     then find the finished install;
#   - `CHECK DIR` (a shell function) says whether DIR is a good install; a broken or
#     half-made one is rebuilt, never refused;
#   - `BUILD DIR` (a shell function) installs into a fresh folder beside TARGET
#     (TARGET.build-XXXXXX), which never moves afterwards (venvs and npm bins record their
#     absolute path), and TARGET becomes a symbolic link to it through one atomic rename,
#     so nobody ever sees a half-built TARGET;
#   - older builds are removed once the new one is in place.
#   A TARGET that is a real folder (an older layout) is replaced only when it is a venv, a
#   folder these scripts made, empty, or inside $BUILD_ONCE_OWNED (the repository's target/); anything else is refused with the reason, so a
#   variable pointing at someone's own folder never deletes it.

build_once() {
    local target=$1 check=$2 build=$3 lock real old
    mkdir -p "$(dirname "$target")"
    lock="$target.lock"
    exec {BUILD_ONCE_FD}>"$lock"
    flock "$BUILD_ONCE_FD"
    if [ -e "$target" ] && "$check" "$target"; then
        exec {BUILD_ONCE_FD}>&-
        return 0
    fi
    if [ -d "$target" ] && [ ! -L "$target" ]; then
        if [ -f "$target/pyvenv.cfg" ] || [ -f "$target/.built-by-skillmeatd-tests" ] \
            || [ -z "$(ls -A "$target")" ] || [[ -n "${BUILD_ONCE_OWNED:-}" && "$target" == "$BUILD_ONCE_OWNED"/* ]]; then
            rm -rf "$target"
        else
            echo "$(basename "$0"): $target exists, is not a working install and was not made by these scripts; remove it or point the variable elsewhere" >&2
            exec {BUILD_ONCE_FD}>&-
            return 1
        fi
    fi
    real="$(mktemp -d "$target.build-XXXXXX")"
    chmod 755 "$real"
    touch "$real/.built-by-skillmeatd-tests"
    if ! "$build" "$real" || ! "$check" "$real"; then
        echo "$(basename "$0"): installing into $real failed" >&2
        rm -rf "$real"
        exec {BUILD_ONCE_FD}>&-
        return 1
    fi
    ln -sfn "$(basename "$real")" "$target.link-$$"
    mv -T "$target.link-$$" "$target"
    for old in "$target".build-*; do
        [ "$old" = "$real" ] || rm -rf "$old"
    done
    exec {BUILD_ONCE_FD}>&-
}

# pip_venv TAG PY VENV SPEC...
#   A BUILD step for build_once: a fresh venv made by interpreter PY at VENV, with the pip
#   requirement SPECs installed from PyPI (no pip self-check); messages start with TAG.
pip_venv() {
    local tag=$1 py=$2 venv=$3
    shift 3
    echo "$tag: installing $* into $venv" >&2
    # Debian's python3 needs the python3-venv package for ensurepip.
    "$py" -m venv "$venv" >&2 || {
        echo "$tag: '$py -m venv' failed (on Debian: apt-get install python3-venv)" >&2
        return 1
    }
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet --no-input "$@" >&2
}

# apt_install PACKAGE...
#   Installs Debian packages (as root), refreshing the package lists only when the first
#   try fails.
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
        || { apt-get update -q >&2 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; }
}

# apt_provide TAG LOCK CHECK PACKAGE HINT
#   Makes sure `CHECK` (a shell function) passes, installing Debian's PACKAGE once under
#   flock LOCK when it does not. Returns 3 with a message when that needs root and this is
#   not root, or when there is no apt-get (HINT says what to do instead); 1 when the
#   package was installed and CHECK still fails.
apt_provide() {
    local tag=$1 lock=$2 check=$3 package=$4 hint=$5 fd
    "$check" && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$tag: Debian's '$package' package is not installed and installing it needs root (run: sudo apt-get install $package)" >&2
        return 3
    fi
    if ! command -v apt-get >/dev/null; then
        echo "$tag: no apt-get on this machine: $hint" >&2
        return 3
    fi
    mkdir -p "$(dirname "$lock")"
    exec {fd}>"$lock"
    flock "$fd"
    if ! "$check"; then
        echo "$tag: installing Debian's $package package" >&2
        apt_install "$package"
    fi
    exec {fd}>&-
    "$check" || { echo "$tag: the $package package is installed but does not run" >&2; return 1; }
}
