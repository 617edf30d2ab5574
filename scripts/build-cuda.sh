#!/usr/bin/env bash
# Builds the CUDA flavour of ntc (pkg/cuda with the build tag "cuda") on a
# machine without a GPU or CUDA install:
#   bin/ntc-cuda    ntc (./cmd/ntc) with CUDA support
#   bin/cuda.test   the tests of pkg/cuda, to run on the GPU machine
#   bin/synth       synthetic tokens for scripts/gpu-check.sh
#   bin/libntcb_cuda.so  the Python package's native decoder with CUDA
#                   (cmd/libntcb, c-shared; scripts/build-python.sh --cuda
#                   puts it in python/ntcb)
# Both need only libcuda.so.1 (the NVIDIA driver), libcublas.so.13 (CUDA 13)
# and glibc where they run; there, for example:
#   export LD_LIBRARY_PATH=/usr/local/cuda/targets/x86_64-linux/lib
#   (cd pkg/cuda && ../../bin/cuda.test -test.v)
# Neither starts on a machine without a GPU (gorgonia.org/cu's init exits).
#
# Usage: scripts/build-cuda.sh [--check]
#   --check   compile and vet only, into a temporary folder (CI); bin/ is
#             left alone
# Runs scripts/cuda-deps.sh first (headers and link stubs; it does nothing
# when they are installed). Environment: NTC_CUDA_ROOT, as for cuda-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "build-cuda.sh: unknown argument '$1' (use --check or nothing)" >&2; exit 2 ;;
esac

env_lines=$(bash scripts/cuda-deps.sh)
eval "$env_lines"
tags=cuda,netgo,osusergo

if [ "$check" -eq 1 ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/ntc-build-cuda.XXXXXX")
  trap 'rm -rf "$out"' EXIT
else
  out=bin
  mkdir -p "$out"
fi

echo "build-cuda: go build -tags $tags -o $out/ntc-cuda ./cmd/ntc" >&2
go build -tags "$tags" -o "$out/ntc-cuda" ./cmd/ntc
echo "build-cuda: go test -c -tags $tags -o $out/cuda.test ./pkg/cuda" >&2
go test -c -tags "$tags" -o "$out/cuda.test" ./pkg/cuda
echo "build-cuda: go build -tags $tags -buildmode=c-shared -o $out/libntcb_cuda.so ./cmd/libntcb" >&2
go build -tags "$tags" -buildmode=c-shared -o "$out/libntcb_cuda.so" ./cmd/libntcb
rm -f "$out/libntcb_cuda.h"
# The synthetic token generator, which scripts/gpu-check.sh runs.
CGO_ENABLED=0 go build -o "$out/synth" ./scripts/synth
if [ "$check" -eq 1 ]; then
  echo "build-cuda: go vet -tags $tags ./..." >&2
  go vet -tags "$tags" ./...
fi

# The link stubs must make the binaries ask for CUDA 13's libcublas.so.13
# and carry no symbol versions of another CUDA (see cuda-deps.sh).
cuda_pkg=$(go list ./pkg/cuda)
for bin in "$out/ntc-cuda" "$out/cuda.test" "$out/libntcb_cuda.so"; do
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  echo "build-cuda: $(basename "$bin") needs: ${needed:-nothing}" >&2
  if [ "$bin" = "$out/ntc-cuda" ] && ! go list -tags "$tags" -deps ./cmd/ntc | grep -qx "$cuda_pkg"; then
    echo "build-cuda: note: cmd/ntc does not import $cuda_pkg (yet): ntc-cuda has no CUDA in it" >&2
    continue
  fi
  case " $needed " in
    *" libcuda.so.1 "*) ;;
    *) echo "build-cuda: $bin does not link libcuda.so.1" >&2; exit 1 ;;
  esac
  if readelf -V "$bin" | grep -Eq 'lib(cublas|cublasLt|nvrtc|cudart)\.so\.1[0-2]'; then
    echo "build-cuda: $bin wants symbols of CUDA 10-12 libraries; the stubs are wrong" >&2
    exit 1
  fi
done
echo "build-cuda: ok" >&2
