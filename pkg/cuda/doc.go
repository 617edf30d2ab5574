// Package cuda runs ntc's GPU work on an NVIDIA GPU through the CUDA driver
// API (gorgonia.org/cu) and cuBLAS (a small cgo shim of its own).
//
// It offers what a decoder needs and no more: a [Device] whose CUDA context
// lives on one locked OS thread, device and pinned host memory, streams and
// events, PTX modules and kernel launches ([Function.Launch]), and a
// half-precision, float32-accumulating batched GEMM ([BLAS.GemmF16]).
// Kernels ship as PTX text and are compiled by the driver when loaded; the
// package needs no NVRTC and no CUDA runtime library of its own.
//
// # Builds
//
// The default build has no CUDA: every function of this package then
// returns [ErrNotBuilt] (or a zero value), [Built] reports false, and ntc
// builds and runs with CGO_ENABLED=0 on any machine. The CUDA support is in
// files with the build tag "cuda". Build it with
//
//	scripts/build-cuda.sh
//
// which installs CUDA headers and link stubs (scripts/cuda-deps.sh) and
// builds bin/ntc-cuda and the test binary bin/cuda.test with
// CGO_ENABLED=1 -tags cuda,netgo,osusergo. The build machine needs no GPU
// and no CUDA install; the binary needs libcuda.so.1 (the NVIDIA driver)
// and libcublas.so.13 (CUDA 13) where it runs, for example with
// LD_LIBRARY_PATH=/usr/local/cuda/targets/x86_64-linux/lib.
//
// A binary built with the tag cannot start on a machine without a GPU:
// gorgonia.org/cu calls cuInit in its package init and exits the process
// when that fails. That is why only files with the tag import it.
//
// # Threads and streams
//
// A CUDA context is current on one OS thread at a time. A [Device] owns a
// goroutine locked to its thread, with the context current there; every
// method that calls CUDA sends its work to that goroutine ([Device.Do]), so
// methods may be called from any goroutine. Methods that wait for the GPU
// (the Synchronize methods) wait on the caller's own thread instead, so a
// wait does not hold up work that other goroutines submit.
//
// Methods that take a *[Stream] enqueue their work on it; a nil stream
// means the context's default (NULL) stream. Streams are created blocking:
// work on them is ordered with respect to work on the default stream.
package cuda

import "errors"

// Errors of the package; callers test for them with errors.Is.
var (
	// ErrNotBuilt is returned by every function of a binary built without
	// the cuda build tag.
	ErrNotBuilt = errors.New("cuda: ntc was built without CUDA support; build it with scripts/build-cuda.sh")

	// ErrDevice wraps CUDA driver and cuBLAS failures; the message names
	// the call that failed and the error code it returned.
	ErrDevice = errors.New("cuda device error")
)

// DevPtr is a device address. Arithmetic on it (p + DevPtr(offset)) gives
// addresses inside an allocation.
type DevPtr uintptr

// Dim3 is a launch grid or block shape. A zero Y or Z counts as 1.
type Dim3 struct{ X, Y, Z int }
