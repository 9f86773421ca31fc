#!/usr/bin/env bash
# Builds what users install and installs it the way they would, from one release build:
#   1. the wheel (maturin from PyPI, in a venv): installed into a fresh venv, whose own
#      `skillmeatd` and `smctl` then run the README's first flow (start, drift, stop) on a
#      temporary HOME built by the released SkillMeat CLI;
#   2. the Debian package (cargo-deb from crates.io): `dpkg -i`, every file checked where it
#      should land (and nothing else installed), `skillmeatd --version` and the same flow
#      from /usr/bin, then `dpkg -r` and every file checked gone.
# The SkillMeat home is made in the background while the packages are built. Prints each
# step with the seconds since the start. Needs root (or passwordless sudo) for
# dpkg; SKILLMEATD_SKIP_DEB=1 skips the Debian part and says so.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
START=$SECONDS
step() { echo "== [$((SECONDS - START))s] $*"; }
die() { echo "packaging/check.sh: $*" >&2; exit 1; }

WORK="$(mktemp -d)"
DAEMONS=()
INSTALLED=""
HOME_MAKER=""
cleanup() {
    local bin
    # Let a home still being made finish before its folder goes.
    [ -z "$HOME_MAKER" ] || wait "$HOME_MAKER" 2>/dev/null || true
    for bin in "${DAEMONS[@]}"; do
        run_as_user "$bin" stop >/dev/null 2>&1 || true
    done
    if [ -n "$INSTALLED" ]; then as_root dpkg -r skillmeatd >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# The version every installed binary must print: the workspace's, the protocol's, and the
# commit when built from a checkout, exactly as the release build prints it.
VERSION="$(cargo metadata --no-deps --format-version 1 --locked \
    | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "skillmeatd"))')"

step "release build"
cargo build --release --locked --bins
RELEASE="${CARGO_TARGET_DIR:-$REPO/target}/release"
for b in skillmeatd smctl; do
    line="$("$RELEASE/$b" --version)"
    [[ "$line" =~ ^$b\ $VERSION\ \(protocol\ [0-9]+(,\ rev\ [0-9a-f]+)?\)$ ]] \
        || die "$b --version printed '$line'"
    printf -v "WANT_${b}" '%s' "$line"
done
ls -l "$RELEASE/skillmeatd" "$RELEASE/smctl"

# A home the released SkillMeat CLI made: a collection, deployed into two projects. The
# CLI is slow to start, so it works in the background while the packages are built.
step "SkillMeat home: started in the background"
bash tests/support/make-skillmeat-home.sh "$WORK/home" "$WORK/p1" "$WORK/p2" </dev/null \
    >"$WORK/home.log" 2>&1 &
HOME_MAKER=$!
home_ready() {
    wait "$HOME_MAKER" || die "making the SkillMeat home failed:
$(cat "$WORK/home.log")"
    step "SkillMeat home: ready"
}

# Runs BIN ARGS… as the user would: the temporary HOME, no runtime dir (so the socket is
# under the home's state directory), no autostart surprises.
run_as_user() {
    env -u XDG_RUNTIME_DIR -u SKILLMEAT_HOME -u SKILLMEATD_STATE_DIR -u SKILLMEATD_SOCKET \
        -u RUST_LOG HOME="$WORK/home" SKILLMEATD_NO_AUTOSTART=1 "$@" </dev/null
}

# The README's first flow with the skillmeatd and smctl in DIR: start, drift (everything
# in sync, then one edit seen), stop. smctl must not warn: daemon and client agree.
first_flow() {
    local dir=$1 out err
    for b in skillmeatd smctl; do
        local want="WANT_$b"
        [ "$("$dir/$b" --version)" = "${!want}" ] || die "$dir/$b --version: '$("$dir/$b" --version)', want '${!want}'"
    done
    DAEMONS+=("$dir/skillmeatd")
    run_as_user "$dir/skillmeatd" start
    out="$(run_as_user "$dir/smctl" drift --sync --all --format json 2>"$WORK/err")"
    err="$(cat "$WORK/err")"
    [ -z "$err" ] || die "smctl drift wrote to stderr: $err"
    python3 - "$out" <<'PY'
import json, sys
v = json.loads(sys.argv[1])
arts = v["artifacts"]
assert len(arts) == 6, f"expected 6 artifacts in 2 projects: {v}"
assert all(a["drift_type"] == "in_sync" for a in arts), v
PY
    cp "$WORK/p1/.claude/commands/hello.md" "$WORK/hello.md"
    printf 'Say goodbye.\n' >"$WORK/p1/.claude/commands/hello.md"
    out="$(run_as_user "$dir/smctl" drift --sync --format json)"
    python3 - "$out" <<'PY'
import json, sys
v = json.loads(sys.argv[1])
got = [(a["name"], a["drift_type"]) for a in v["artifacts"]]
assert got == [("hello", "modified")], v
PY
    # Back as deployed, for the next install's run.
    cp "$WORK/hello.md" "$WORK/p1/.claude/commands/hello.md"
    run_as_user "$dir/skillmeatd" stop
    unset 'DAEMONS[-1]'
}

step "wheel: build"
MATURIN="$(bash tests/support/maturin-venv.sh </dev/null | tail -n 1)"
"$MATURIN" build --release --locked --out "$WORK/wheels"
WHEEL="$(ls "$WORK"/wheels/*.whl)"
python3 - "$WHEEL" "$VERSION" <<'PY'
import sys, zipfile
wheel, version = sys.argv[1], sys.argv[2]
names = zipfile.ZipFile(wheel).namelist()
data = f"skillmeatd-{version}.data/scripts/"
for b in ("skillmeatd", "smctl"):
    assert data + b in names, f"{b} not in {names}"
meta = zipfile.ZipFile(wheel).read(f"skillmeatd-{version}.dist-info/METADATA").decode()
for line in ("Name: skillmeatd", f"Version: {version}", "Summary: Always-on drift detection"):
    assert line in meta, f"{line!r} not in METADATA:\n{meta}"
PY
ls -l "$WHEEL"

DEB=""
if [ "${SKILLMEATD_SKIP_DEB:-}" = 1 ]; then
    step "Debian package: skipped (SKILLMEATD_SKIP_DEB=1)"
else
    as_root true 2>/dev/null || die "dpkg needs root or passwordless sudo (SKILLMEATD_SKIP_DEB=1 skips this part)"
    step "Debian package: build"
    DEB="$(bash packaging/deb.sh --no-build --fast | tail -n 1)"
    ls -l "$DEB"
fi

home_ready
step "wheel: install into a fresh venv, run the first flow"
python3 -m venv "$WORK/venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$WORK/venv/bin/pip" install --quiet --no-index "$WHEEL"
first_flow "$WORK/venv/bin"

[ -n "$DEB" ] || { step "done"; exit 0; }

# Every file the package must install, and nothing else.
EXPECTED="/usr/bin/skillmeatd
/usr/bin/smctl
/usr/lib/systemd/user/skillmeatd.service
/usr/lib/systemd/user/skillmeatd.socket
/usr/share/bash-completion/completions/smctl
/usr/share/doc/skillmeatd/README.md
/usr/share/doc/skillmeatd/copyright
/usr/share/fish/vendor_completions.d/smctl.fish
/usr/share/man/man1/skillmeatd.1.gz
/usr/share/man/man1/smctl.1.gz
/usr/share/zsh/vendor-completions/_smctl"

step "Debian package: install, check, remove"
# One install at a time on this machine: dpkg's own lock fails rather than waits.
exec {LOCK}>/tmp/skillmeatd-deb-check.lock
flock "$LOCK"
if dpkg-query -W -f='${Status}' skillmeatd 2>/dev/null | grep -q 'install ok installed'; then
    die "a skillmeatd package is already installed here; this check installs and removes its own (dpkg -r skillmeatd first)"
fi
INSTALLED=1
as_root dpkg -i "$DEB"
got="$(dpkg -L skillmeatd | while read -r f; do [ -d "$f" ] || echo "$f"; done | sort)"
[ "$got" = "$EXPECTED" ] || die "installed files differ from the expected ones:
$(diff <(echo "$EXPECTED") <(echo "$got") || true)"
grep -qx 'ExecStart=/usr/bin/skillmeatd run' /usr/lib/systemd/user/skillmeatd.service \
    || die "the packaged unit does not run /usr/bin/skillmeatd"
systemd-analyze verify --man=no /usr/lib/systemd/user/skillmeatd.service
zcat /usr/share/man/man1/skillmeatd.1.gz | grep -q '^\.TH skillmeatd 1' || die "skillmeatd.1: not a manual page"
zcat /usr/share/man/man1/smctl.1.gz | grep -q '^\.TH smctl 1' || die "smctl.1: not a manual page"
bash -c '. /usr/share/bash-completion/completions/smctl && complete -p smctl' >/dev/null \
    || die "the bash completion does not register smctl"
for b in skillmeatd smctl; do
    want="WANT_$b"
    [ "$(/usr/bin/$b --version)" = "${!want}" ] || die "/usr/bin/$b --version: '$(/usr/bin/$b --version)'"
done
first_flow /usr/bin
as_root dpkg -r skillmeatd
INSTALLED=""
while read -r f; do
    [ ! -e "$f" ] || die "$f is still there after dpkg -r"
done <<<"$EXPECTED"
flock -u "$LOCK"

step "done"
