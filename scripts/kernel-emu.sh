#!/usr/bin/env bash
# Runs the CUDA kernels of pkg/cuda (pkg/cuda/kernels/kernels.cu) on the CPU,
# without a GPU: the kernel emulator (pkg/cuda/kernels/emu) compiles the
# kernels' source as host C++ and runs each block's threads as OS threads,
# on the device programs that the GPU decoder launches for every chunk of
# the test files, checked against the CPU decoder (go test -tags kernelemu,
# pkg/cuda/emu_test.go). Extra arguments go to go test.
#
#   scripts/kernel-emu.sh
#   NTC_EMU_KEEP=/tmp/jobs scripts/kernel-emu.sh -run EmuKernels   # keep the jobs
#
# The emulator is built twice, with AddressSanitizer and UBSan, and with
# ThreadSanitizer (see emuCXXFlags in emu_test.go; NTC_EMU_SANITIZE=0 builds
# it without them). clang-14 and its sanitizer runtimes (Debian 12: clang-14,
# libclang-rt-14-dev) are installed with apt when missing and run as root.
# About 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

CXX_EMU=${CXX_EMU:-clang++-14}
have() {
	command -v "$CXX_EMU" >/dev/null 2>&1 || return 1
	[ "${NTC_EMU_SANITIZE:-1}" = 0 ] && return 0
	[ -e "$("$CXX_EMU" -print-runtime-dir)/libclang_rt.asan-x86_64.a" ]
}
if ! have; then
	pkgs="clang-14 libclang-rt-14-dev"
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "kernel-emu: installing $pkgs" >&2
		# shellcheck disable=SC2086
		apt-get install -y -q $pkgs >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $pkgs >/dev/null; }
	else
		echo "kernel-emu: $CXX_EMU or its sanitizer runtimes not found (apt-get install $pkgs)" >&2
		exit 1
	fi
fi
export CXX_EMU
# -count=1: go test's cache does not know about clang.
exec go test -count=1 -tags kernelemu -run Emu -v "$@" ./pkg/cuda/
