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
