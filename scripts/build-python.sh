#!/usr/bin/env bash
# Builds the Python package's native decoder: cmd/libntcb (the Go reader as
# a C shared library) into python/ntcb/libntcb.so, in place, so that
# PYTHONPATH=python works from a checkout. Needs Go and a C compiler (cgo).
# The library is not committed (.gitignore); rebuild it after changing Go
# code that it contains.
#
#   scripts/build-python.sh          python/ntcb/libntcb.so
#   scripts/build-python.sh --cuda   also python/ntcb/libntcb_cuda.so, the
#                                    CUDA build for read_torch(device="cuda")
#                                    (headers and link stubs from
#                                    scripts/cuda-deps.sh; no GPU needed here)
#   PYTHONPATH=python python3 -c 'import ntcb; print(ntcb.open("x.ntcb").decoder)'   # native
#
# pip install ./python builds and installs the CPU build into an
# environment; scripts/build-wheel.sh makes a platform wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
PY=${PYTHON:-/usr/bin/python3}
cuda=0
case "${1:-}" in
  "") ;;
  --cuda) cuda=1 ;;
  -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "build-python.sh: unknown argument '$1' (use --cuda or nothing)" >&2; exit 2 ;;
esac
build() { # OUT CUDA
  "$PY" -c 'import sys; sys.path.insert(0, "python"); import build_backend as b; print(b.build_library(sys.argv[1], sys.argv[2] == "1"))' "$1" "$2"
}
build python/ntcb/libntcb.so 0
if [ "$cuda" -eq 1 ]; then
  (eval "$(bash scripts/cuda-deps.sh)" && build python/ntcb/libntcb_cuda.so 1)
fi
