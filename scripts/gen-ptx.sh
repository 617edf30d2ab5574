#!/usr/bin/env bash
# Compiles the CUDA C kernels of pkg/cuda (pkg/cuda/kernels/kernels.cu) to
# PTX with clang, into pkg/cuda/kernels.ptx, which the cuda build embeds and
# the driver compiles for the GPU at load time. No CUDA installation is
# needed: the kernels use no CUDA header.
#
#   scripts/gen-ptx.sh          regenerate pkg/cuda/kernels.ptx
#   scripts/gen-ptx.sh --check  fail when the committed PTX is not what the
#                               source compiles to (CI runs this)
#
# clang-14 (Debian 12) is installed with apt when missing and run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG=${CLANG:-clang-14}
if ! command -v "$CLANG" >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "gen-ptx: installing $CLANG" >&2
		apt-get install -y -q "$CLANG" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$CLANG" >/dev/null; }
	else
		echo "gen-ptx: $CLANG not found (apt-get install $CLANG)" >&2
		exit 1
	fi
fi

src=pkg/cuda/kernels/kernels.cu
dst=pkg/cuda/kernels.ptx
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# sm_80 PTX runs on Ampere and later (the driver compiles it for the GPU).
"$CLANG" -x cuda --cuda-device-only --cuda-gpu-arch=sm_80 -nocudainc -nocudalib \
	-O3 -Wall -Werror -S -o "$tmp" "$src"
if grep -q -E '^\s*(\.extern|call)' "$tmp"; then
	echo "gen-ptx: $src calls functions that are not in the PTX (no libdevice here)" >&2
	exit 1
fi
if [ "${1:-}" = --check ]; then
	if ! cmp -s "$tmp" "$dst"; then
		echo "gen-ptx: $dst is stale; run scripts/gen-ptx.sh and commit it" >&2
		exit 1
	fi
	echo "gen-ptx: $dst is up to date"
	exit 0
fi
cp "$tmp" "$dst"
echo "gen-ptx: wrote $dst ($(wc -l <"$dst") lines)"
