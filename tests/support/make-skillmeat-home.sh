#!/usr/bin/env bash
# Build a SkillMeat home exactly the way the real Python CLI (0.74.0) does, for
# tests of skillmeatd against genuine files:
#   HOME_DIR/.skillmeat/collections/default  with skill review-skill,
#                                            command hello, agent helper
#   PROJECT1  plain folder, all three deployed with `deploy --project`
#   PROJECT2  `skillmeat init` run in it first (.skillmeat/manifest.toml),
#             then all three deployed
# Usage: make-skillmeat-home.sh HOME_DIR PROJECT1 PROJECT2
# Reads no stdin; exits non-zero with a message on any failure. Re-runnable
# (init is a no-op on an existing collection, add -f / deploy --overwrite).
set -euo pipefail

die() { echo "make-skillmeat-home: $*" >&2; exit 1; }
[ "$#" -eq 3 ] || die "usage: $0 HOME_DIR PROJECT1 PROJECT2"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SKILLMEAT="$("$HERE/skillmeat-venv.sh" </dev/null | tail -n 1)" || die "could not set up the skillmeat venv"
[ -x "$SKILLMEAT" ] || die "no skillmeat executable at '$SKILLMEAT'"

# SkillMeat records absolute paths: resolve the arguments first.
for d in "$1" "$2" "$3"; do mkdir -p -- "$d" 2>/dev/null || die "cannot create directory: $d"; done
HOME_DIR="$(cd "$1" && pwd -P)"
P1="$(cd "$2" && pwd -P)"
P2="$(cd "$3" && pwd -P)"

# The SkillMeat home is always $HOME/.skillmeat (no other override exists).
export HOME="$HOME_DIR"
# TERM=dumb: no ANSI colour codes in the CLI's output (NO_COLOR alone leaves some).
export TERM=dumb NO_COLOR=1
# `add` POSTs a cache invalidation to the SkillMeat web API (default
# localhost:8080); point it at a closed port so it fails fast and stays local.
export SKILLMEAT_API_URL="${SKILLMEAT_API_URL:-http://127.0.0.1:9}"

SRC="$(mktemp -d)"
OUT="$(mktemp)"
trap 'rm -rf "$SRC" "$OUT"' EXIT

# Run one CLI step with no stdin; on failure show the command and its output.
sm() {
    local rc=0
    (cd "$SRC" && "$SKILLMEAT" "$@") </dev/null >"$OUT" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "make-skillmeat-home: 'skillmeat $*' failed (exit $rc):" >&2
        sed 's/^/    /' "$OUT" >&2
        exit 1
    fi
}

# Small source artifacts: a skill folder, a command file, an agent file.
mkdir -p "$SRC/review-skill"
cat >"$SRC/review-skill/SKILL.md" <<'MD'
---
name: review-skill
description: Review code changes carefully.
---
# Review skill

Read the diff, then list risks.
MD
printf 'Checklist:\n- tests\n- docs\n' >"$SRC/review-skill/checklist.txt"
cat >"$SRC/hello.md" <<'MD'
---
description: Say hello
---
Say hello to $ARGUMENTS.
MD
cat >"$SRC/helper.md" <<'MD'
---
name: helper
description: A helpful agent.
---
You help with small tasks.
MD

# --name: a bare `init` would turn the cwd into a *project*, not a collection.
sm init --name default
# -y accepts the trust prompt (otherwise it reads stdin and fails on EOF);
# -f replaces the artifact on a re-run instead of failing "already exists".
sm add skill "$SRC/review-skill" -y -f
sm add command "$SRC/hello.md" -y -f
sm add agent "$SRC/helper.md" -y -f

# One deploy call takes several names; --overwrite makes re-runs replace files
# instead of prompting; --format json keeps stdout machine-readable.
sm deploy review-skill hello helper --project "$P1" --overwrite --format json

# In-project init: writes PROJECT2/.skillmeat/manifest.toml and .claude/ files.
# --no-input: never prompt. (It also tries a POST to api.base_url, default
# localhost:8080, 3 s timeout, non-fatal.)
sm init --project-path "$P2" --no-input
sm deploy review-skill hello helper --project "$P2" --overwrite --format json

# Check the result the way skillmeatd will read it.
COLL="$HOME_DIR/.skillmeat/collections/default"
for f in "$COLL/collection.toml" "$COLL/collection.lock" "$HOME_DIR/.skillmeat/cache/cache.db" \
         "$P2/.skillmeat/manifest.toml"; do
    [ -f "$f" ] || die "expected file missing: $f"
done
for p in "$P1" "$P2"; do
    n="$(grep -c '^\[\[deployed\]\]$' "$p/.claude/.skillmeat-deployed.toml" || true)"
    [ "$n" = 3 ] || die "$p/.claude/.skillmeat-deployed.toml has $n records, expected 3"
    for f in skills/review-skill/SKILL.md commands/hello.md agents/helper.md; do
        [ -f "$p/.claude/$f" ] || die "expected deployed file missing: $p/.claude/$f"
    done
done
echo "make-skillmeat-home: ok (HOME=$HOME_DIR, projects $P1 $P2)"
