#!/usr/bin/env bash
# Creates the virtual environment (if missing) and installs metakit with everything it needs.
# Called by `make`; safe to run again: an up-to-date environment is left alone by the Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
WHEELS=.cache/wheels          # learn2learn wheels built here, reused by the next fresh venv
L2L=learn2learn==0.2.0
# Every pip call below honours these bounds (see the file for why).
export PIP_CONSTRAINT="$(pwd)/tools/constraints.txt"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
py="$(cd "$VENV" && pwd)/bin/python"
pip() { "$py" -m pip "$@"; }
pip install -q --upgrade pip "setuptools<81" wheel

if ! "$py" -c "import learn2learn" >/dev/null 2>&1; then
  mkdir -p "$WHEELS"
  if ! pip install -q --find-links "$WHEELS" "$L2L" 2>"$VENV/learn2learn-build.log"; then
    # learn2learn 0.2.0 ships C files made by Cython 0.29, which do not compile on Python >= 3.11
    # (learnables/learn2learn#413). Regenerate them from the .pyx sources with Cython 3.
    echo "Plain install of $L2L failed (see $VENV/learn2learn-build.log); rebuilding it with Cython 3."
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    pip install -q "cython>=3"
    pip download -q --no-deps --no-binary :all: -d "$tmp" "$L2L"
    tar -xzf "$tmp"/learn2learn-*.tar.gz -C "$tmp"
    (cd "$tmp"/learn2learn-*/ && rm -f learn2learn/data/*.c &&
       "$py" setup.py -q build_ext bdist_wheel >"$tmp/build.log" 2>&1) ||
      { cat "$tmp/build.log"; echo "Building learn2learn with Cython 3 failed."; exit 1; }
    cp "$tmp"/learn2learn-*/dist/*.whl "$WHEELS"/
    pip install -q --find-links "$WHEELS" --only-binary learn2learn "$L2L"
  fi
fi

pip install -q -e .
echo "metakit is installed in $VENV"
