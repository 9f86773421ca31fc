#!/usr/bin/env bash
# Create (once) a Python venv holding python-dbusmock (PyPI), whose `notification_daemon`
# template is the stand-in org.freedesktop.Notifications server of the desktop
# notification tests, and print the venv's python as the last line of stdout. Safe to run
# from many tests at once (see lib.sh).
#
# dbusmock runs on dbus-python and PyGObject, which build from source against C libraries;
# the venv takes them from a system Python that has them (Debian's python3-dbus and
# python3-gi, installed here with apt-get when missing and allowed), with
# --system-site-packages, and installs only dbusmock itself.
#   SKILLMEATD_DBUSMOCK_VENV  venv path (default: <repo>/target/dbusmock-venv)
#   SKILLMEATD_DBUS_PYTHON    interpreter with dbus and gi (default: /usr/bin/python3)
set -euo pipefail

DBUSMOCK_VERSION=0.38.1
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SKILLMEATD_DBUSMOCK_VENV:-$REPO_ROOT/target/dbusmock-venv}"
PY="${SKILLMEATD_DBUS_PYTHON:-/usr/bin/python3}"
BUILD_ONCE_OWNED="$REPO_ROOT/target"
. "$REPO_ROOT/tests/support/lib.sh"

has_bindings() { "$1" -c 'import dbus, dbus.mainloop.glib; from gi.repository import GLib' 2>/dev/null; }

installed_ok() {
    [ -f "$1/.installed-$DBUSMOCK_VERSION" ] && command -v dbus-daemon >/dev/null \
        && "$1/bin/python" -c 'import dbusmock, dbus; from gi.repository import GLib' 2>/dev/null
}

install_into() {
    local venv=$1
    if ! has_bindings "$PY" || ! command -v dbus-daemon >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "dbusmock-venv: installing Debian's dbus-daemon, python3-dbus and python3-gi" >&2
            apt_install dbus-daemon python3-dbus python3-gi
        fi
    fi
    if ! has_bindings "$PY"; then
        echo "dbusmock-venv: $PY cannot import dbus and gi; install python3-dbus and python3-gi (Debian) or set SKILLMEATD_DBUS_PYTHON" >&2
        return 1
    fi
    command -v dbus-daemon >/dev/null || { echo "dbusmock-venv: dbus-daemon is missing (Debian: dbus-daemon)" >&2; return 1; }
    echo "dbusmock-venv: installing python-dbusmock==$DBUSMOCK_VERSION into $venv" >&2
    "$PY" -m venv --system-site-packages "$venv" >&2
    # --no-deps: dbus-python comes from the system Python (building it needs C headers).
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet --no-input \
        --no-deps "python-dbusmock==$DBUSMOCK_VERSION" >&2
    touch "$venv/.installed-$DBUSMOCK_VERSION"
}

build_once "$VENV" installed_ok install_into
echo "$VENV/bin/python"
