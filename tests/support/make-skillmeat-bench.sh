#!/usr/bin/env bash
# Python half of benches/drift_vs_skillmeat.sh: build a SkillMeat home whose
# default collection holds N local skills (bench-skill-001 ...), each a folder
# with SKILL.md + 2 small files, all deployed to PROJECT.
# Usage: make-skillmeat-bench.sh HOME_DIR PROJECT [N=100]
#   SKILLMEAT_BENCH_ADD=inproc (default) | cli
#     `skillmeat add` takes exactly one path per call and each process spends
#     ~2 s importing SkillMeat, so by default the N adds run the CLI's own click
#     command N times inside ONE Python process (same code path, ~0.2 s each).
#     `cli` runs one `skillmeat add` process per skill (slow, for cross-checks).
# init and deploy are always real CLI processes; deploy takes all N names at once.
# Reads no stdin; exits non-zero with a message on any failure.
set -euo pipefail

die() { echo "make-skillmeat-bench: $*" >&2; exit 1; }
[ "$#" -ge 2 ] && [ "$#" -le 3 ] || die "usage: $0 HOME_DIR PROJECT [N]"
N="${3:-100}"
case "$N" in ''|*[!0-9]*) die "N must be a positive integer, got '$N'" ;; esac
[ "$N" -ge 1 ] || die "N must be >= 1"
MODE="${SKILLMEAT_BENCH_ADD:-inproc}"
case "$MODE" in inproc|cli) ;; *) die "SKILLMEAT_BENCH_ADD must be inproc or cli" ;; esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SKILLMEAT="$("$HERE/skillmeat-venv.sh" </dev/null | tail -n 1)" || die "could not set up the skillmeat venv"
[ -x "$SKILLMEAT" ] || die "no skillmeat executable at '$SKILLMEAT'"
VENV_PY="$(dirname "$SKILLMEAT")/python"

for d in "$1" "$2"; do mkdir -p -- "$d" 2>/dev/null || die "cannot create directory: $d"; done
HOME_DIR="$(cd "$1" && pwd -P)"
PROJECT="$(cd "$2" && pwd -P)"

# Same environment as make-skillmeat-home.sh: SkillMeat home = $HOME/.skillmeat,
# no ANSI colours, web-API notifications sent to a closed local port.
export HOME="$HOME_DIR"
export TERM=dumb NO_COLOR=1
export SKILLMEAT_API_URL="${SKILLMEAT_API_URL:-http://127.0.0.1:9}"

SRC="$(mktemp -d)"
OUT="$(mktemp)"
trap 'rm -rf "$SRC" "$OUT"' EXIT

sm() {
    local rc=0
    (cd "$SRC" && "$SKILLMEAT" "$@") </dev/null >"$OUT" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "make-skillmeat-bench: 'skillmeat $*' failed (exit $rc):" >&2
        sed 's/^/    /' "$OUT" >&2
        exit 1
    fi
}

# Source skills.
NAMES=()
for i in $(seq -f '%03g' 1 "$N"); do
    name="bench-skill-$i"
    NAMES+=("$name")
    mkdir -p "$SRC/skills/$name/docs"
    printf -- '---\nname: %s\ndescription: Benchmark skill number %s.\n---\n# %s\n\nDo task %s.\n' \
        "$name" "$i" "$name" "$i" >"$SRC/skills/$name/SKILL.md"
    printf 'reference notes for %s\n' "$name" >"$SRC/skills/$name/reference.md"
    printf '#!/bin/sh\necho %s\n' "$name" >"$SRC/skills/$name/docs/run.sh"
done

t0=$SECONDS
sm init --name default

if [ "$MODE" = cli ]; then
    for name in "${NAMES[@]}"; do
        sm add skill "$SRC/skills/$name" -y -f
    done
else
    # One interpreter, the CLI's click command called once per skill; stop at
    # the first non-zero exit. stdout/stderr go to $OUT for the error message.
    cat >"$SRC/add_all.py" <<'PY'
import sys
from skillmeat.cli import main

for path in sys.argv[1:]:
    args = ["add", "skill", path, "-y", "-f"]
    try:
        main.main(args, prog_name="skillmeat", standalone_mode=False)
        rc = 0
    except SystemExit as e:  # click's ctx.exit / sys.exit inside commands
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if rc:
        print(f"FAILED: skillmeat {' '.join(args)} (exit {rc})", file=sys.stderr)
        sys.exit(1)
PY
    paths=()
    for name in "${NAMES[@]}"; do paths+=("$SRC/skills/$name"); done
    rc=0
    (cd "$SRC" && "$VENV_PY" "$SRC/add_all.py" "${paths[@]}") </dev/null >"$OUT" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "make-skillmeat-bench: in-process 'skillmeat add skill' loop failed (exit $rc):" >&2
        tail -n 40 "$OUT" | sed 's/^/    /' >&2
        exit 1
    fi
fi
t_add=$((SECONDS - t0))

# deploy accepts many names in one call.
t1=$SECONDS
sm deploy "${NAMES[@]}" --project "$PROJECT" --overwrite --format json
t_deploy=$((SECONDS - t1))

# Sanity checks.
COLL="$HOME_DIR/.skillmeat/collections/default"
n_lock="$(grep -c '^\[lock\.entries\."bench-skill-[0-9]*::skill"\]$' "$COLL/collection.lock" || true)"
[ "$n_lock" -ge "$N" ] || die "collection.lock has $n_lock bench entries, expected $N"
n_dep="$(grep -c '^\[\[deployed\]\]$' "$PROJECT/.claude/.skillmeat-deployed.toml" || true)"
[ "$n_dep" -ge "$N" ] || die "$PROJECT/.claude/.skillmeat-deployed.toml has $n_dep records, expected $N"
echo "make-skillmeat-bench: ok: $N skills (add mode $MODE: ${t_add}s incl. init, deploy: ${t_deploy}s)"
