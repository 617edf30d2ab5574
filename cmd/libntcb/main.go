// Command libntcb is the .ntcb reader as a C shared library, for Python
// (python/ntcb loads it with ctypes) and any other language with a C FFI.
// It is the Go reader of pkg/ntcb behind a small C ABI (exports.go):
// handles as integers, samples decoded into the caller's buffer as float32
// or float16, errors as codes with a message. It holds no codec logic of
// its own.
//
// Build it with cgo (scripts/build-python.sh does, into python/ntcb):
//
//	go build -buildmode=c-shared -o libntcb.so ./cmd/libntcb
//
// which also writes the C header, libntcb.h. Without cgo the package
// builds to an empty program, so that CGO_ENABLED=0 go build ./... works.
//
// A process must not call into the library after a fork(2) if the
// library was loaded before it: the Go runtime does not survive fork.
// python/ntcb loads it lazily and checks for that (see docs/usage.md).
package main

func main() {}
