#!/usr/bin/env bash
# Creates the virtual environment (if missing) and installs metakit with everything it needs.
# Called by `make`; safe to run again: an up-to-date environment is left alone by the Makefile.
# Every step's output goes to $VENV/install.log; when a step fails, the message says which
# package, the likely cause, and where the log is, and the script exits non-zero so that make
# writes no stamp and the next `make` tries again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-}
WHEELS=${WHEELS:-.cache/wheels}   # wheels built here (learn2learn, qpth), reused by the next fresh venv
L2L=learn2learn==0.2.0
QPTH=qpth==0.0.18
QPTH_LOCAL=0.0.18+numpy2      # the version of the repaired qpth wheel built below
# Every pip call below honours these bounds (see the file for why).
export PIP_CONSTRAINT="$(pwd)/tools/constraints.txt"

fail() {  # fail PACKAGE CAUSE: say what broke and where to look, then stop
  echo >&2
  echo "make setup FAILED while installing $1." >&2
  echo "Likely cause: $2" >&2
  echo "Full log: $LOG   (last lines below)" >&2
  tail -n 15 "$LOG" | sed 's/^/  | /' >&2
  exit 1
}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "make setup FAILED: no Python called '$PYTHON'. Pass one, e.g. make setup PYTHON=python3.12" >&2
  exit 1
fi
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$version" in
  3.10|3.11|3.12|3.13) ;;
  *) echo "make setup FAILED: $PYTHON is Python $version; metakit needs Python 3.10 to 3.13." >&2
     exit 1 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  LOG=$(mktemp)
  "$PYTHON" -m venv "$VENV" >"$LOG" 2>&1 ||
    fail "the virtual environment ($VENV)" "this Python has no venv module (Debian/Ubuntu: sudo apt install python$version-venv)."
fi
LOG="$(cd "$VENV" && pwd)/install.log"
: >"$LOG"
py="$(cd "$VENV" && pwd)/bin/python"
pip() { echo "+ [$(date +%T)] pip $*" >>"$LOG"; "$py" -m pip "$@" >>"$LOG" 2>&1; }
echo "Installing into $VENV with Python $version (log: $LOG)"

pip install --upgrade pip "setuptools<81" wheel ||
  fail "pip/setuptools" "the package index cannot be reached (no network, or a proxy pip is not told about)."

mkdir -p "$WHEELS"

# qpth 0.0.18 declares numpy>=1,<2, but its code runs unchanged on numpy 2 (tests/test_qpth.py and
# `make test-pythons` check it). numpy 1 has no wheels for Python 3.13, and on 3.12 pip may collect
# numpy 2 for another package and then backtrack to qpth 0.0.15, whose source release does not
# build. So build qpth 0.0.18 from its source release with the pin lifted (version 0.0.18+numpy2),
# keep the wheel in .cache/wheels and install it before learn2learn, which requires qpth too.
# An environment made by an older install.sh has PyPI's qpth 0.0.18 (and numpy 1): replace it.
if ! "$py" -c "import importlib.metadata as m; assert m.version('qpth') == '$QPTH_LOCAL'" >/dev/null 2>&1; then
  if ! ls "$WHEELS"/qpth-"$QPTH_LOCAL"-*.whl >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    pip download --no-deps --no-binary qpth -d "$tmp" "$QPTH" ||
      fail "qpth (download of its source release)" "the package index cannot be reached."
    tar -xzf "$tmp"/qpth-*.tar.gz -C "$tmp"
    src=$(echo "$tmp"/qpth-*/)
    grep -q "'numpy>=1,<2'" "$src/setup.py" ||
      { echo "qpth's setup.py no longer pins 'numpy>=1,<2'" >>"$LOG"; fail qpth "its source release changed; update tools/install.sh."; }
    sed -i -e "s/'numpy>=1,<2'/'numpy>=1'/" -e "s/version='0.0.18'/version='$QPTH_LOCAL'/" "$src/setup.py"
    rm -rf "$src"/*.egg-info
    pip wheel --no-deps --no-build-isolation -w "$WHEELS" "$src" ||
      fail "qpth (building its wheel)" "setuptools could not build it; see the log."
    rm -rf "$tmp"
  fi
  pip install --find-links "$WHEELS" "qpth==$QPTH_LOCAL" ||
    fail "qpth and its dependencies (numpy, cvxpy)" "a dependency has no wheel for Python $version on this platform, or the index cannot be reached."
fi

if ! "$py" -c "import learn2learn" >/dev/null 2>&1; then
  # A wheel built by an earlier run (any venv of this Python) is used as is. Otherwise, on 3.10 the
  # release installs as published; from 3.11 on its C does not compile (below), so skip that try.
  if ! pip install --find-links "$WHEELS" --only-binary learn2learn "$L2L" &&
     ! { [ "$version" = 3.10 ] && pip install --find-links "$WHEELS" "$L2L"; }; then
    # learn2learn 0.2.0 ships C files made by Cython 0.29, which do not compile on Python >= 3.11
    # (learnables/learn2learn#413). Regenerate them from the .pyx sources with Cython 3.
    echo "Building $L2L for Python $version with Cython 3 (its published C needs Python 3.10)."
    tmp=$(mktemp -d)
    pip install "cython>=3" ||
      fail "Cython" "the package index cannot be reached."
    pip download --no-deps --no-binary learn2learn -d "$tmp" "$L2L" ||
      fail "learn2learn (download of its source release)" "the package index cannot be reached."
    tar -xzf "$tmp"/learn2learn-*.tar.gz -C "$tmp"
    (cd "$tmp"/learn2learn-*/ && rm -f learn2learn/data/*.c &&
       "$py" setup.py -q build_ext bdist_wheel >>"$LOG" 2>&1) ||
      fail "learn2learn (compiling its C extensions)" "no working C compiler. Linux: install gcc (Debian/Ubuntu: sudo apt install build-essential python3-dev); macOS: xcode-select --install; Windows: Microsoft C++ Build Tools (see the README's install section)."
    cp "$tmp"/learn2learn-*/dist/*.whl "$WHEELS"/
    rm -rf "$tmp"
    pip install --find-links "$WHEELS" --only-binary learn2learn "$L2L" ||
      fail "learn2learn's dependencies (torch, gym, gsutil, ...)" "a dependency has no wheel for Python $version on this platform, or the index cannot be reached."
  fi
fi

# EXTRAS (comma-separated, pyproject.toml's optional dependencies: test, browser, app, hub, all) adds
# what a target needs; make installs each extra on first use, tools/test_pythons.sh passes "test".
pip install --find-links "$WHEELS" -e ".${EXTRAS:+[$EXTRAS]}" ||
  fail "metakit's dependencies (pyproject.toml${EXTRAS:+, extras $EXTRAS})" "a dependency has no wheel for Python $version (torch needs one for your platform), or the index cannot be reached."
"$py" -c "import qpth, learn2learn, metakit" >>"$LOG" 2>&1 ||
  fail "metakit (import check)" "an installed package does not import; see the log."
echo "metakit is installed in $VENV ($("$py" -c 'import numpy, torch; print("numpy", numpy.__version__, "torch", torch.__version__)'))"
