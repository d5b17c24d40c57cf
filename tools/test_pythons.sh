#!/usr/bin/env bash
# `make test-pythons`: for each Python from 3.10 to 3.13 that pyenv has, a fresh .venv-3.X made by
# tools/install.sh (with an empty wheel cache, so learn2learn's Cython 3 rebuild and the repaired
# qpth wheel are built again), then the smoke subset: tools/smoke.py (import, one episode, one MAML
# step against learn2learn's, one qpth QP) and notebook 01 under nbval in quick mode.
# Prints one line per version. When every version found passes, writes tools/pythons-tested.txt:
# the hash of the install files and those lines (commit it; .ci/run compares that hash).
#
#   bash tools/test_pythons.sh            run (VERSIONS="3.12 3.13" to pick; BUDGET_S=1500 to skip
#                                         the versions that would not finish in that many seconds;
#                                         KEEP_VENVS=1 keeps the venvs that passed, ~6 GB each)
#   bash tools/test_pythons.sh --hash     print the install files' hash
#   bash tools/test_pythons.sh --needed   exit 0 when the install files differ from the last passing run
set -uo pipefail
cd "$(dirname "$0")/.."
RECORD=tools/pythons-tested.txt
OUT=.cache/test-pythons

install_hash() {  # sha256 over the install files' paths and contents (not the record itself)
  local files
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files --cached --others --exclude-standard tools pyproject.toml environment.yml)
  else
    files=$(find tools pyproject.toml environment.yml -type f -not -path '*/__pycache__/*')
  fi
  echo "$files" | grep -v -x "$RECORD" | LC_ALL=C sort | while read -r f; do
    [ -f "$f" ] && { echo "$f"; sha256sum <"$f"; }
  done | sha256sum | cut -d' ' -f1
}

case "${1:-}" in
  --hash) install_hash; exit 0 ;;
  --needed)
    recorded=$(sed -n 's/^install-files-sha256: //p' "$RECORD" 2>/dev/null)
    [ "$recorded" != "$(install_hash)" ]; exit ;;
esac

ALL="3.10 3.11 3.12 3.13"
VERSIONS=${VERSIONS:-$ALL}
COVERED=${COVERED:-}             # versions another step already installs and tests (CI: 3.11, by make test)
BUDGET_S=${BUDGET_S:-0}          # 0: no limit
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
rm -rf "$OUT"; mkdir -p "$OUT/wheels"
start=$(date +%s); lines=(); failed=0; skipped=0; tested=0; longest=0

pyenv_python() {  # the newest pyenv X.Y.Z (final releases only) for X.Y
  ls -d "$PYENV_ROOT"/versions/"$1".* 2>/dev/null | grep -E "/$1\.[0-9]+$" | sort -V | tail -1 |
    sed 's|$|/bin/python3|'
}

for v in $VERSIONS; do
  if [[ " $COVERED " == *" $v "* ]]; then
    lines+=("Python $v: not run here (COVERED: installed fresh and tested by another step)"); continue
  fi
  py=$(pyenv_python "$v")
  if [ -z "$py" ] || [ ! -x "$py" ]; then
    lines+=("Python $v: not tested (pyenv has no $v under $PYENV_ROOT/versions)"); skipped=$((skipped + 1))
    echo "${lines[-1]}"; continue
  fi
  full=$("$py" -c 'import sys; print(sys.version.split()[0])')
  elapsed=$(( $(date +%s) - start )); estimate=$(( longest > 0 ? longest : 600 ))
  if [ "$BUDGET_S" -gt 0 ] && [ $((elapsed + estimate)) -gt "$BUDGET_S" ]; then
    lines+=("Python $full: SKIPPED (would pass the ${BUDGET_S} s budget: ${elapsed} s used, ~${estimate} s needed)")
    skipped=$((skipped + 1)); echo "${lines[-1]}"; continue
  fi
  venv=.venv-$v; log=$OUT/$v.log; t0=$(date +%s)
  echo "Python $full: fresh $venv (log: $log) ..."
  rm -rf "$venv"
  stage=install
  if PYTHON="$py" VENV="$venv" WHEELS="$OUT/wheels" EXTRAS=test bash tools/install.sh >"$log" 2>&1; then
    t1=$(date +%s); stage=smoke
    if "$venv/bin/python" tools/smoke.py >>"$log" 2>&1; then
      stage="notebook 01 (nbval, quick mode)"
      if METAKIT_QUICK=1 MPLBACKEND=agg "$venv/bin/python" -m pytest notebooks/01_few_shot_tasks.ipynb \
           --nbval-lax -p no:cacheprovider -q >>"$log" 2>&1; then
        stage=""
      fi
    fi
  fi
  t2=$(date +%s); [ $((t2 - t0)) -gt "$longest" ] && longest=$((t2 - t0))
  tested=$((tested + 1))
  if [ -z "$stage" ]; then
    versions=$(grep '^smoke ok:' "$log" | sed 's/^smoke ok: Python [^,]*, //')
    lines+=("Python $full: PASS  install $((t1 - t0)) s, smoke + notebook 01 $((t2 - t1)) s; $versions")
    [ -n "${KEEP_VENVS:-}" ] || rm -rf "$venv"   # about 6 GB each (torch's CUDA libraries)
  else
    failed=$((failed + 1))
    lines+=("Python $full: FAIL at $stage (log: $log)")
    tail -n 20 "$log" | sed 's/^/  | /'
  fi
  echo "${lines[-1]}"
done

echo
echo "make test-pythons on $(uname -sm), $(date -u '+%Y-%m-%d %H:%M UTC'), $(( $(date +%s) - start )) s:"
printf '%s\n' "${lines[@]}"
if [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ] && [ "$tested" -gt 0 ] && [ "$VERSIONS" = "$ALL" ] && [ -z "$COVERED" ]; then
  {
    echo "# Written by \`make test-pythons\` (tools/test_pythons.sh) when every Python passed. .ci/run runs"
    echo "# it again only when the hash of the install files (tools/, pyproject.toml, environment.yml)"
    echo "# differs from this one, so commit this file with the install change it proves."
    echo "install-files-sha256: $(install_hash)"
    echo "make test-pythons on $(uname -sm), $(date -u '+%Y-%m-%d %H:%M UTC'), $(( $(date +%s) - start )) s:"
    printf '%s\n' "${lines[@]}"
  } >"$RECORD"
  echo "(recorded in $RECORD)"
fi
[ "$failed" -eq 0 ]
