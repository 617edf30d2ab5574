package main

/*
#include <stdint.h>

// Error codes: every function returns one. The message of a failure is
// written, NUL-terminated and cut to fit, into the caller's err buffer
// (err_cap bytes; NULL or 0 for none).
enum {
	NTCB_OK = 0,
	NTCB_EBADMAGIC = 1,   // not an .ntcb file
	NTCB_EVERSION = 2,    // a format version this library does not read
	NTCB_ECHECKSUM = 3,   // a CRC-32C does not match
	NTCB_ETRUNCATED = 4,  // the file ends before a structure it declares
	NTCB_ETOOLARGE = 5,   // a length or count beyond a limit of the format
	NTCB_EUNKNOWNCODEC = 6,
	NTCB_ENOTFOUND = 7,   // no such key (or model)
	NTCB_ECORRUPT = 8,    // any other damage
	NTCB_ENOFILE = 9,     // the path does not exist
	NTCB_EPERMISSION = 10,
	NTCB_EIO = 11,
	NTCB_EARGUMENT = 12,  // a bad handle, index, dtype or buffer
	NTCB_EINTERNAL = 13,  // a bug in the library
	NTCB_EEXTERNALMODEL = 14, // the file records its model by hash, and it was not given
};

// Output dtypes of ntcb_read.
enum { NTCB_FLOAT32 = 0, NTCB_FLOAT16 = 1 };

// A positional read for ntcb_open_reader: fill buf[0:n] with the bytes at
// offset off of the caller's file and return 0, or return non-zero on a
// failure. It may be called from several threads at once.
typedef int32_t (*ntcb_read_at)(void *ctx, void *buf, int64_t n, int64_t off);

static inline int32_t ntcb_call_read_at(ntcb_read_at f, void *ctx, void *buf, int64_t n, int64_t off) {
	return f(ctx, buf, n, off);
}
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The enum above holds the codes of handles.go: a mismatch does not compile
// (a negative constant converted to uint).
const _ = uint(C.NTCB_EBADMAGIC-codeBadMagic) + uint(codeBadMagic-C.NTCB_EBADMAGIC) +
	uint(C.NTCB_EVERSION-codeVersion) + uint(codeVersion-C.NTCB_EVERSION) +
	uint(C.NTCB_ECHECKSUM-codeChecksum) + uint(codeChecksum-C.NTCB_ECHECKSUM) +
	uint(C.NTCB_ETRUNCATED-codeTruncated) + uint(codeTruncated-C.NTCB_ETRUNCATED) +
	uint(C.NTCB_ETOOLARGE-codeTooLarge) + uint(codeTooLarge-C.NTCB_ETOOLARGE) +
	uint(C.NTCB_EUNKNOWNCODEC-codeUnknown) + uint(codeUnknown-C.NTCB_EUNKNOWNCODEC) +
	uint(C.NTCB_ENOTFOUND-codeNotFound) + uint(codeNotFound-C.NTCB_ENOTFOUND) +
	uint(C.NTCB_ECORRUPT-codeCorrupt) + uint(codeCorrupt-C.NTCB_ECORRUPT) +
	uint(C.NTCB_ENOFILE-codeNoFile) + uint(codeNoFile-C.NTCB_ENOFILE) +
	uint(C.NTCB_EPERMISSION-codePermission) + uint(codePermission-C.NTCB_EPERMISSION) +
	uint(C.NTCB_EIO-codeIO) + uint(codeIO-C.NTCB_EIO) +
	uint(C.NTCB_EARGUMENT-codeArgument) + uint(codeArgument-C.NTCB_EARGUMENT) +
	uint(C.NTCB_EINTERNAL-codeInternal) + uint(codeInternal-C.NTCB_EINTERNAL) +
	uint(C.NTCB_EEXTERNALMODEL-codeExternal) + uint(codeExternal-C.NTCB_EEXTERNALMODEL) +
	uint(C.NTCB_FLOAT32-dtypeFloat32) + uint(dtypeFloat32-C.NTCB_FLOAT32) +
	uint(C.NTCB_FLOAT16-dtypeFloat16) + uint(dtypeFloat16-C.NTCB_FLOAT16)

// abiVersion is the version of this C ABI; it changes when a function's
// signature or meaning does.
const abiVersion = 1

// status returns err's code and writes its message into errbuf.
func status(err error, errbuf *C.char, errcap C.int64_t) C.int32_t {
	if err == nil {
		return C.NTCB_OK
	}
	writeString(err.Error(), errbuf, errcap)
	return C.int32_t(errorCode(err))
}

// writeString copies s into buf (cap bytes), cut to fit and NUL-terminated.
func writeString(s string, buf *C.char, cap C.int64_t) {
	if buf == nil || cap <= 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(cap))
	n := copy(b[:len(b)-1], s)
	b[n] = 0
}

// callOn runs fn on the open handle h.
func callOn(h C.int64_t, errbuf *C.char, errcap C.int64_t, fn func(hd *handle) error) C.int32_t {
	return status(protect(func() error {
		hd, err := acquire(int64(h))
		if err != nil {
			return err
		}
		defer hd.mu.RUnlock()
		return fn(hd)
	}), errbuf, errcap)
}

// ntcb_abi_version returns the version of the C ABI (1).
//
//export ntcb_abi_version
func ntcb_abi_version() C.int32_t { return abiVersion }

// ntcb_open_path opens the .ntcb file at path (NUL-terminated) and stores
// its handle in *out. It reads and checks the header, footer, index and
// metadata only.
//
//export ntcb_open_path
func ntcb_open_path(path *C.char, out *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return status(protect(func() error {
		h, err := openPath(C.GoString(path))
		*out = C.int64_t(h)
		return err
	}), errbuf, errcap)
}

// ntcb_open_fd opens the .ntcb file open as the file descriptor fd (a
// regular file). The library reads a duplicate of fd, so the caller may
// close its own at any time.
//
//export ntcb_open_fd
func ntcb_open_fd(fd C.int32_t, out *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return status(protect(func() error {
		nfd, err := unix.Dup(int(fd))
		if err != nil {
			return fmt.Errorf("fd %d: %w: %v", int(fd), errArgument, err)
		}
		unix.CloseOnExec(nfd)
		h, err := openFile(os.NewFile(uintptr(nfd), fmt.Sprintf("fd %d", int(fd))))
		*out = C.int64_t(h)
		return err
	}), errbuf, errcap)
}

// ntcb_open_reader opens a .ntcb file of size bytes that the caller reads
// for the library through read (with ctx, its own), as a remote file or an
// archive member. read and ctx stay valid until ntcb_close.
//
//export ntcb_open_reader
func ntcb_open_reader(read C.ntcb_read_at, ctx unsafe.Pointer, size C.int64_t, out *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return status(protect(func() error {
		if read == nil {
			return fmt.Errorf("no read function: %w", errArgument)
		}
		h, err := openReaderAt(callbackReader{read: read, ctx: ctx}, int64(size), nil)
		*out = C.int64_t(h)
		return err
	}), errbuf, errcap)
}

// callbackReader reads through the caller's read function.
type callbackReader struct {
	read C.ntcb_read_at
	ctx  unsafe.Pointer
}

func (r callbackReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if rc := C.ntcb_call_read_at(r.read, r.ctx, unsafe.Pointer(&p[0]), C.int64_t(len(p)), C.int64_t(off)); rc != 0 {
		return 0, fmt.Errorf("reading %d bytes at offset %d: %w (the caller's read returned %d)", len(p), off, errCallerRead, int32(rc))
	}
	return len(p), nil
}

// ntcb_open_bytes opens the .ntcb file held in data[0:n]. The library
// reads that memory in place: the caller keeps it valid and unchanged
// until ntcb_close.
//
//export ntcb_open_bytes
func ntcb_open_bytes(data unsafe.Pointer, n C.int64_t, out *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return status(protect(func() error {
		var b []byte
		if n > 0 {
			b = unsafe.Slice((*byte)(data), int(n))
		}
		h, err := openBytes(b)
		*out = C.int64_t(h)
		return err
	}), errbuf, errcap)
}

// ntcb_close closes a handle; it waits for reads in other threads to end.
//
//export ntcb_close
func ntcb_close(h C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return status(protect(func() error { return closeHandle(int64(h)) }), errbuf, errcap)
}

// ntcb_add_model gives the handle the blob of a model of codec id
// (data[0:n], copied) for a file that holds its model by reference: a
// read uses it where its SHA-256 is the one the file records. Without it,
// reading such a file fails with NTCB_EEXTERNALMODEL.
//
//export ntcb_add_model
func ntcb_add_model(h C.int64_t, id C.int32_t, data unsafe.Pointer, n C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return callOn(h, errbuf, errcap, func(hd *handle) error {
		if id < 0 || id > 255 || n < 0 {
			return fmt.Errorf("model for codec %d of %d bytes: %w", int(id), int64(n), errArgument)
		}
		var b []byte
		if n > 0 {
			b = unsafe.Slice((*byte)(data), int(n))
		}
		return hd.addModel(uint8(id), b)
	})
}

// ntcb_shape stores the file's sample count, tokens per sample and token
// dimension.
//
//export ntcb_shape
func ntcb_shape(h C.int64_t, samples, tokens, dim *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return callOn(h, errbuf, errcap, func(hd *handle) error {
		n, t, d := hd.shape()
		*samples, *tokens, *dim = C.int64_t(n), C.int64_t(t), C.int64_t(d)
		return nil
	})
}

// ntcb_metadata copies the file's metadata (JSON, as stored) into buf, up
// to cap bytes, and stores its full length in *n: call it again with a
// larger buffer when *n > cap.
//
//export ntcb_metadata
func ntcb_metadata(h C.int64_t, buf *C.char, cap C.int64_t, n *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return callOn(h, errbuf, errcap, func(hd *handle) error {
		copyOut(hd.metadata(), buf, cap, n)
		return nil
	})
}

// ntcb_key copies the key of sample i into buf as ntcb_metadata does (not
// NUL-terminated; *n is its length in bytes).
//
//export ntcb_key
func ntcb_key(h C.int64_t, i C.int64_t, buf *C.char, cap C.int64_t, n *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return callOn(h, errbuf, errcap, func(hd *handle) error {
		k, err := hd.key(int64(i))
		if err == nil {
			copyOut([]byte(k), buf, cap, n)
		}
		return err
	})
}

// ntcb_lookup stores the index of the sample whose key is key[0:keylen];
// NTCB_ENOTFOUND when there is none.
//
//export ntcb_lookup
func ntcb_lookup(h C.int64_t, key *C.char, keylen C.int64_t, out *C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return callOn(h, errbuf, errcap, func(hd *handle) error {
		i, err := hd.lookup(C.GoStringN(key, C.int(keylen)))
		*out = C.int64_t(i)
		return err
	})
}

// ntcb_read decodes the n samples idx[0:n] (any order, repeats allowed)
// into dst, n x tokens x dim values of dtype (NTCB_FLOAT32 or
// NTCB_FLOAT16, aligned to their size), dst_bytes long. Reads of one
// handle may run in several threads at once.
//
//export ntcb_read
func ntcb_read(h C.int64_t, idx *C.int64_t, n C.int64_t, dtype C.int32_t, dst unsafe.Pointer, dstBytes C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return callOn(h, errbuf, errcap, func(hd *handle) error {
		var ix []int64
		if n > 0 {
			ix = unsafe.Slice((*int64)(unsafe.Pointer(idx)), int(n))
		}
		var out []byte
		if dstBytes > 0 {
			out = unsafe.Slice((*byte)(dst), int(dstBytes))
		}
		return hd.read(ix, int(dtype), out)
	})
}

// copyOut copies b into buf (cap bytes) and stores len(b) in *n.
func copyOut(b []byte, buf *C.char, cap C.int64_t, n *C.int64_t) {
	*n = C.int64_t(len(b))
	if buf != nil && cap > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(cap)), b)
	}
}
