#!/usr/bin/env bash
# Builds the Python package's native decoder: cmd/libntcb (the Go reader as
# a C shared library) into python/ntcb/libntcb.so, in place, so that
# PYTHONPATH=python works from a checkout. Needs Go and a C compiler (cgo).
# The library is not committed (.gitignore); rebuild it after changing Go
# code that it contains.
#
#   scripts/build-python.sh
#   PYTHONPATH=python python3 -c 'import ntcb; print(ntcb.open("x.ntcb").decoder)'   # native
#
# pip install ./python builds and installs the same into an environment;
# scripts/build-wheel.sh makes a platform wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import sys; sys.path.insert(0, "python"); import build_backend as b; print(b.build_library(sys.argv[1]))' \
  python/ntcb/libntcb.so
