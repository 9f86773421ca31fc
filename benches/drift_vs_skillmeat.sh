#!/usr/bin/env bash
# Wall time of `smctl drift PROJECT --format json` (running daemon, warm) against
# `skillmeat sync-check PROJECT --format json` (SkillMeat 0.74.0) on one project with N
# skills (default 100) deployed by the real SkillMeat CLI, three of them drifted
# (modified, outdated, conflict). Checks that both report the same drift for skills.
# Not run in CI. Needs Python 3 with venv (the SkillMeat venv is made on first use).
#
# Usage: benches/drift_vs_skillmeat.sh [N]
#   RUNS=10     timed smctl runs (median reported)
#   SM_RUNS=3   timed sync-check runs (median reported)
#   KEEP=1      keep the temporary folder
set -euo pipefail

die() { echo "drift_vs_skillmeat: $*" >&2; exit 1; }
N="${1:-100}"
case "$N" in ''|*[!0-9]*) die "N must be a positive integer, got '$N'" ;; esac
[ "$N" -ge 3 ] || die "N must be >= 3 (three skills are drifted)"
RUNS="${RUNS:-10}"
SM_RUNS="${SM_RUNS:-3}"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUPPORT="$REPO/tests/support"

echo "== building release binaries" >&2
cargo build --release --workspace --quiet --manifest-path "$REPO/Cargo.toml"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
SKILLMEATD="$TARGET/release/skillmeatd"
SMCTL="$TARGET/release/smctl"
SKILLMEAT="$("$SUPPORT/skillmeat-venv.sh" </dev/null | tail -n 1)" || die "no SkillMeat venv"

WORK="$(mktemp -d)"
# An isolated world: SkillMeat's home, the daemon's state and socket all in $WORK.
for v in SKILLMEAT_HOME XDG_RUNTIME_DIR RUST_LOG SKILLMEATD_NO_AUTOSTART; do unset "$v"; done
export HOME="$WORK/home" TERM=dumb NO_COLOR=1 SKILLMEAT_API_URL=http://127.0.0.1:9
export SKILLMEATD_STATE_DIR="$WORK/state" SKILLMEATD_SOCKET="$WORK/run/d.sock"
cleanup() {
    "$SKILLMEATD" stop >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== $N skills added and deployed with the SkillMeat CLI" >&2
"$SUPPORT/make-skillmeat-bench.sh" "$HOME" "$WORK/project" "$N" >&2
PROJECT="$(cd "$WORK/project" && pwd -P)"
COLL="$HOME/.skillmeat/collections/default"
SK="$PROJECT/.claude/skills"
echo "local edit" >>"$SK/bench-skill-001/reference.md"                # modified
echo "upstream edit" >>"$COLL/skills/bench-skill-002/reference.md"    # outdated
echo "local edit" >>"$SK/bench-skill-003/reference.md"                # conflict
echo "upstream edit" >>"$COLL/skills/bench-skill-003/docs/run.sh"

"$SKILLMEATD" start >&2
"$SMCTL" project add "$PROJECT" >/dev/null

# Warm both once (the first sync-check after a local edit also records it in the
# deployment file); keep these answers for the comparison.
"$SMCTL" drift "$PROJECT" --format json >"$WORK/ours.json"
rc=0
"$SKILLMEAT" sync-check "$PROJECT" --format json </dev/null >"$WORK/theirs.json" 2>/dev/null || rc=$?
[ "$rc" -le 1 ] || die "skillmeat sync-check exited $rc"

# Median wall time in ms of `$2…` run $1 times, output discarded; exit 1 (sync-check's
# "drift found") counts as success. Timed with hyperfine when installed, otherwise with
# bash's $EPOCHREALTIME, which reads the clock without starting a process: both commands
# are timed the same way, and nothing but the command itself is inside the interval.
median_ms() {
    local runs="$1"; shift
    if command -v hyperfine >/dev/null; then
        hyperfine --runs "$runs" --style none --ignore-failure --export-json "$WORK/hf.json" \
            "$(printf '%q ' "$@")" >/dev/null 2>&1 || die "hyperfine failed on: $*"
        python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$WORK/hf.json"
        return
    fi
    local i t0 t1 rc times=()
    for ((i = 0; i < runs; i++)); do
        t0="${EPOCHREALTIME/[.,]/}"
        rc=0
        "$@" </dev/null >/dev/null 2>&1 || rc=$?
        t1="${EPOCHREALTIME/[.,]/}"
        [ "$rc" -le 1 ] || die "failed ($rc): $*"
        times+=("$((t1 - t0))")
    done
    printf '%s\n' "${times[@]}" | sort -n |
        awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.1f\n", m/1e3}'
}

echo "== timing ($RUNS smctl runs, $SM_RUNS sync-check runs)" >&2
OURS_MS="$(median_ms "$RUNS" "$SMCTL" drift "$PROJECT" --format json)"
THEIRS_MS="$(median_ms "$SM_RUNS" "$SKILLMEAT" sync-check "$PROJECT" --format json)"

# Same drift for skills: name, drift_type, collection_sha, project_sha.
python3 - "$WORK/ours.json" "$WORK/theirs.json" <<'PY'
import json, sys
def skills(path):
    with open(path) as f:
        v = json.load(f)
    return sorted((a["name"], a["drift_type"], a["collection_sha"], a["project_sha"])
                  for a in v["artifacts"] if a["type"] == "skill")
ours, theirs = skills(sys.argv[1]), skills(sys.argv[2])
kinds = [(a[0], a[1]) for a in ours]
want = [("bench-skill-001", "modified"), ("bench-skill-002", "outdated"),
        ("bench-skill-003", "conflict")]
if kinds != want:
    sys.exit(f"drift_vs_skillmeat: smctl reported {kinds}, expected {want}")
if ours != theirs:
    sys.exit(f"drift_vs_skillmeat: skills differ:\n smctl     {ours}\n sync-check {theirs}")
print(f"agreement: smctl and sync-check report the same {len(ours)} drifted skills")
PY

awk -v n="$N" -v o="$OURS_MS" -v t="$THEIRS_MS" -v r="$RUNS" -v s="$SM_RUNS" 'BEGIN {
    printf "project with %d deployed skills (3 drifted)\n", n
    printf "smctl drift --format json:          %8.1f ms (median of %d)\n", o, r
    printf "skillmeat sync-check --format json: %8.1f ms (median of %d)\n", t, s
    printf "ratio: smctl is %.0fx faster\n", t / o
}'
