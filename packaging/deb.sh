#!/usr/bin/env bash
# Builds the Debian package, target/debian/skillmeatd_<version>-1_<arch>.deb, with cargo-deb
# (from crates.io; tests/support/cargo-deb.sh installs it under target/ once), and prints its
# path as the last line of stdout.
#   packaging/deb.sh              release build, then the package
#   packaging/deb.sh --no-build   package the release build already in target/release
#   packaging/deb.sh --fast       lighter compression (a larger file, made sooner: CI)
#
# Besides the two binaries, the package carries files generated here from those very
# binaries, so they always describe them (none is committed): the manual pages
# (`skillmeatd man`, `smctl man`), smctl's bash, zsh and fish completions, and the systemd
# user unit, systemd/skillmeatd.service with ExecStart=/usr/bin/skillmeatd. Where each file
# lands is [package.metadata.deb] in Cargo.toml.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
die() { echo "deb.sh: $*" >&2; exit 1; }

BUILD=1
DEB_FLAGS=()
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD="" ;;
        --fast) DEB_FLAGS+=(--fast) ;;
        *) die "usage: packaging/deb.sh [--no-build] [--fast]" ;;
    esac
done
[ -z "$BUILD" ] || cargo build --release --locked --bins >&2
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
for b in skillmeatd smctl; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run 'cargo build --release' (or drop --no-build)"
done

# Generated into a fresh folder, then swapped in whole.
OUT="$REPO/target/deb-assets"
rm -rf "$OUT.new"
mkdir -p "$OUT.new"
"$BIN/skillmeatd" man >"$OUT.new/skillmeatd.1"
"$BIN/smctl" man >"$OUT.new/smctl.1"
"$BIN/smctl" completions bash >"$OUT.new/smctl.bash"
"$BIN/smctl" completions zsh >"$OUT.new/_smctl"
"$BIN/smctl" completions fish >"$OUT.new/smctl.fish"
# The user unit: the repository's, with the packaged binary and a header of its own.
{
    cat <<'UNIT'
# skillmeatd as a systemd user service, installed by the skillmeatd package. Start it now
# and at every login with:
#   systemctl --user enable --now skillmeatd
# (no `smctl service install` needed; a unit that command writes to
# ~/.config/systemd/user/ takes precedence over this one). To keep it running while you
# are logged out: loginctl enable-linger "$USER"
# Desktop notifications need the session bus in the user manager's environment: the
# per-user bus (dbus-user-session) provides it; otherwise run once per login
#   systemctl --user import-environment DBUS_SESSION_BUS_ADDRESS

UNIT
    sed -n '/^\[Unit\]/,$p' systemd/skillmeatd.service \
        | sed 's|^ExecStart=.*|ExecStart=/usr/bin/skillmeatd run|'
} >"$OUT.new/skillmeatd.service"
[ "$(grep -c '^ExecStart=/usr/bin/skillmeatd run$' "$OUT.new/skillmeatd.service")" = 1 ] \
    || die "systemd/skillmeatd.service: expected exactly one ExecStart= line"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"

CARGO_DEB="$(bash tests/support/cargo-deb.sh </dev/null | tail -n 1)"
"$CARGO_DEB" deb --no-build --locked -p skillmeatd "${DEB_FLAGS[@]}" >&2
VERSION="$(cargo metadata --no-deps --format-version 1 --locked \
    | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "skillmeatd"))')"
ARCH="$(dpkg --print-architecture)"
DEB="${CARGO_TARGET_DIR:-$REPO/target}/debian/skillmeatd_${VERSION}-1_${ARCH}.deb"
[ -f "$DEB" ] || die "cargo-deb made no $DEB"
echo "$DEB"
