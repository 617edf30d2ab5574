#!/usr/bin/env bash
# Builds a platform wheel of the Python package (python/) with its native
# decoder, into DIR (default dist/): ntcb-VERSION-py3-none-manylinux_2_X_ARCH.whl,
# where glibc 2.X is the newest the library needs. One wheel serves every
# Python 3 of the platform (the library is loaded with ctypes). Needs Go, a
# C compiler and pip; nothing is downloaded (python/build_backend.py has no
# build requirements). NTCB_NATIVE=0 makes a pure-Python wheel instead.
#
#   scripts/build-wheel.sh [DIR]
#   pip install dist/ntcb-*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
PY=${PYTHON:-/usr/bin/python3}
out=$(realpath -m "${1:-dist}")
"$PY" -m pip wheel --no-deps --disable-pip-version-check -w "$out" ./python
ls -l "$out"/ntcb-*.whl
