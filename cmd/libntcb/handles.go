package main

// The library's state, in plain Go so that it is tested without cgo: a
// table of open readers by handle, reads into caller memory, and the
// mapping of errors to the ABI's codes. exports.go is the thin cgo layer
// over it.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"unsafe"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/internal/fsutil"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// Error codes of the ABI (NTCB_E* in the generated header). A call returns
// one of them; codeOK is success. The Python package maps each to an
// exception class (python/ntcb/_native.py), so the values never change.
const (
	codeOK         = 0
	codeBadMagic   = 1  // container.ErrBadMagic: not an .ntcb file
	codeVersion    = 2  // container.ErrUnsupportedVersion
	codeChecksum   = 3  // container.ErrChecksum
	codeTruncated  = 4  // container.ErrTruncated
	codeTooLarge   = 5  // container.ErrTooLarge
	codeUnknown    = 6  // codec.ErrUnknownCodec
	codeNotFound   = 7  // container.ErrNotFound: a key or a model
	codeCorrupt    = 8  // any other damage: container, ntcb or codec ErrCorrupt
	codeNoFile     = 9  // the path does not exist
	codePermission = 10 // the path cannot be read
	codeIO         = 11 // any other I/O error
	codeArgument   = 12 // a bad handle, index, dtype or buffer: a caller's bug
	codeInternal   = 13 // a failure of the library itself (a recovered panic)
	codeExternal   = 14 // container.ErrExternalModel, ntcb.ErrModelNotFound: the model is stored elsewhere
)

// errorCode returns the ABI code for err. More specific conditions come
// first: a checksum error inside a chunk is also wrapped in context.
func errorCode(err error) int {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, errArgument):
		return codeArgument
	case errors.Is(err, errInternal):
		return codeInternal
	case errors.Is(err, errCallerRead):
		return codeIO
	case errors.Is(err, container.ErrExternalModel), errors.Is(err, ntcb.ErrModelNotFound):
		return codeExternal
	case errors.Is(err, container.ErrBadMagic):
		return codeBadMagic
	case errors.Is(err, container.ErrUnsupportedVersion):
		return codeVersion
	case errors.Is(err, container.ErrTruncated):
		return codeTruncated
	case errors.Is(err, container.ErrChecksum):
		return codeChecksum
	case errors.Is(err, container.ErrTooLarge):
		return codeTooLarge
	case errors.Is(err, codec.ErrUnknownCodec):
		return codeUnknown
	case errors.Is(err, container.ErrNotFound):
		return codeNotFound
	case errors.Is(err, container.ErrCorrupt), errors.Is(err, ntcb.ErrCorrupt), errors.Is(err, codec.ErrCorrupt),
		errors.Is(err, codec.ErrBadLayout), errors.Is(err, container.ErrDuplicateKey), errors.Is(err, ntcb.ErrModel):
		return codeCorrupt
	case errors.Is(err, fs.ErrNotExist):
		return codeNoFile
	case errors.Is(err, fs.ErrPermission):
		return codePermission
	}
	var pe *fs.PathError
	if errors.As(err, &pe) || errors.Is(err, io.ErrUnexpectedEOF) {
		return codeIO
	}
	return codeCorrupt
}

// errArgument marks a caller's mistake (bad handle, index or buffer).
var errArgument = errors.New("invalid argument")

// errCallerRead marks a failure of a read function the caller gave
// (ntcb_open_reader): the caller knows why.
var errCallerRead = errors.New("read failed")

// Output dtypes of read.
const (
	dtypeFloat32 = 0
	dtypeFloat16 = 1
)

// handle is one open reader. Calls hold mu for reading while they use it;
// close holds it for writing, so that a reader is never closed under a
// read in another thread.
type handle struct {
	mu     sync.RWMutex
	closed bool
	r      *ntcb.Reader
	models *ntcb.Models // where the reader finds the models its file holds by reference
	close  func() error
	cache  chunkCache
}

var handles struct {
	mu   sync.Mutex
	next int64
	m    map[int64]*handle
}

// register adds r, which finds its external models in models, to the
// table and returns its handle (positive).
func register(r *ntcb.Reader, models *ntcb.Models, closeFn func() error) int64 {
	handles.mu.Lock()
	defer handles.mu.Unlock()
	if handles.m == nil {
		handles.m = map[int64]*handle{}
	}
	handles.next++
	handles.m[handles.next] = &handle{r: r, models: models, close: closeFn}
	return handles.next
}

// acquire returns the open handle h, read-locked; the caller unlocks it.
func acquire(h int64) (*handle, error) {
	handles.mu.Lock()
	hd := handles.m[h]
	handles.mu.Unlock()
	if hd == nil {
		return nil, fmt.Errorf("handle %d: %w: not open", h, errArgument)
	}
	hd.mu.RLock()
	if hd.closed {
		hd.mu.RUnlock()
		return nil, fmt.Errorf("handle %d: %w: closed", h, errArgument)
	}
	return hd, nil
}

// openPath opens the .ntcb file at path. Errors do not name the path: the
// caller knows it.
func openPath(path string) (int64, error) {
	f, size, err := fsutil.OpenRegular(path)
	if err != nil {
		return 0, err
	}
	return openReaderAt(f, size, f.Close)
}

// openFile opens the .ntcb file open as f, which the handle then owns.
func openFile(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return 0, fmt.Errorf("%s: not a regular file: %w", f.Name(), errArgument)
	}
	return openReaderAt(f, fi.Size(), f.Close)
}

// openBytes opens the .ntcb file held in data, which the caller keeps
// valid and unchanged until the handle is closed.
func openBytes(data []byte) (int64, error) {
	return openReaderAt(byteReader(data), int64(len(data)), nil)
}

// openReaderAt opens the .ntcb stream in r (size bytes); closeFn, if not
// nil, is called when the handle is closed. Any io.ReaderAt will do (a
// remote file, a section of an archive).
func openReaderAt(r io.ReaderAt, size int64, closeFn func() error) (int64, error) {
	models := ntcb.NewModels()
	nr, err := ntcb.NewReader(r, size, ntcb.WithModels(models))
	if err != nil {
		if closeFn != nil {
			closeFn()
		}
		return 0, err
	}
	return register(nr, models, closeFn), nil
}

// addModel gives hd the blob of a model of codec id that its file may hold
// by reference (found by the caller, a model file's or another file's); it
// is used only where its SHA-256 is the one the file records. The blob is
// copied.
func (hd *handle) addModel(id uint8, blob []byte) error {
	spec, err := codec.LookupID(id)
	if err != nil {
		return fmt.Errorf("model for codec %d: %w", id, errArgument)
	}
	return hd.models.AddModel(&ntcb.Model{Codec: spec.Name, Blob: bytes.Clone(blob)}, "a model given by the caller")
}

// byteReader reads from memory without copying it.
type byteReader []byte

func (b byteReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d: %w", off, errArgument)
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// closeHandle closes h; closing a handle twice is an error.
func closeHandle(h int64) error {
	handles.mu.Lock()
	hd := handles.m[h]
	delete(handles.m, h)
	handles.mu.Unlock()
	if hd == nil {
		return fmt.Errorf("handle %d: %w: not open", h, errArgument)
	}
	hd.mu.Lock()
	defer hd.mu.Unlock()
	hd.closed = true
	hd.cache = chunkCache{}
	if hd.close != nil {
		return hd.close()
	}
	return nil
}

// openHandles returns the number of open handles (for the tests).
func openHandles() int {
	handles.mu.Lock()
	defer handles.mu.Unlock()
	return len(handles.m)
}

// read decodes the samples idx of hd into dst, which holds
// len(idx)*tokens*dim values of dtype (elem bytes each), in the order of
// idx (repeats allowed).
func (hd *handle) read(idx []int64, dtype int, dst []byte) error {
	l := hd.r.Layout()
	n := l.Values()
	elem := 4
	if dtype == dtypeFloat16 {
		elem = 2
	} else if dtype != dtypeFloat32 {
		return fmt.Errorf("dtype %d: %w", dtype, errArgument)
	}
	if want := int64(len(idx)) * int64(n) * int64(elem); int64(len(dst)) != want {
		return fmt.Errorf("output buffer of %d bytes for %d samples of %dx%d, want %d: %w", len(dst), len(idx), l.Tokens, l.Dim, want, errArgument)
	}
	if len(dst) > 0 && uintptr(unsafe.Pointer(&dst[0]))%uintptr(elem) != 0 {
		return fmt.Errorf("output buffer not aligned to %d bytes: %w", elem, errArgument)
	}
	for _, i := range idx {
		if i < 0 || i >= int64(hd.r.Len()) {
			return fmt.Errorf("sample %d out of range [0, %d): %w", i, hd.r.Len(), errArgument)
		}
	}
	emit := func(j int, vals []float32) {
		if elem == 4 {
			copy(float32s(dst[j*n*4:(j+1)*n*4]), vals)
		} else {
			f16.Encode(uint16s(dst[j*n*2:(j+1)*n*2]), vals)
		}
	}
	// Samples of split chunks (container version 2) go through
	// ReadSamples, which reads only their parts; the others (version 1
	// files) through the cache of whole chunks.
	c := hd.r.Container()
	var split, whole []int // positions in idx
	for j, i := range idx {
		if ci, _ := c.SampleChunk(int(i)); c.Chunk(ci).Split {
			split = append(split, j)
		} else {
			whole = append(whole, j)
		}
	}
	if len(split) > 0 {
		ints := make([]int, len(split))
		for k, j := range split {
			ints[k] = int(idx[j])
		}
		if elem == 4 && len(whole) == 0 {
			_, err := hd.r.ReadSamples(ints, float32s(dst)) // straight into the caller's memory
			return err
		}
		vals, err := hd.r.ReadSamples(ints, nil)
		if err != nil {
			return err
		}
		for k, j := range split {
			emit(j, vals[k*n:(k+1)*n])
		}
	}
	for _, j := range whole {
		ci, pos := c.SampleChunk(int(idx[j]))
		vals, err := hd.cache.get(hd.r, ci)
		if err != nil {
			return err
		}
		emit(j, vals[pos*n:(pos+1)*n])
	}
	return nil
}

// chunkCache keeps the last few decoded chunks of a reader that are not
// split (files of container version 1, whose samples cannot be read by
// themselves), so that reading such a chunk's samples one by one decodes
// it once. Chunks are decoded
// outside its lock; a chunk wanted by two threads at once is decoded once.
type chunkCache struct {
	mu      sync.Mutex
	entries []*cacheEntry // most recently used last
}

// cacheChunks is how many decoded chunks a reader keeps: enough for a few
// threads each reading its own chunk in order.
const cacheChunks = 4

type cacheEntry struct {
	chunk int
	ready chan struct{}
	vals  []float32
	err   error
}

// get returns chunk ci decoded, from the cache or decoded now.
func (c *chunkCache) get(r *ntcb.Reader, ci int) ([]float32, error) {
	c.mu.Lock()
	for k, e := range c.entries {
		if e.chunk == ci {
			c.entries = append(append(c.entries[:k:k], c.entries[k+1:]...), e)
			c.mu.Unlock()
			<-e.ready
			return e.vals, e.err
		}
	}
	e := &cacheEntry{chunk: ci, ready: make(chan struct{})}
	if len(c.entries) >= cacheChunks {
		c.entries = c.entries[1:]
	}
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	e.vals, e.err = r.ReadChunk(ci, nil)
	if e.err != nil {
		c.mu.Lock()
		for k, x := range c.entries {
			if x == e {
				c.entries = append(c.entries[:k:k], c.entries[k+1:]...)
				break
			}
		}
		c.mu.Unlock()
	}
	close(e.ready)
	return e.vals, e.err
}

// shape returns (samples, tokens, dim).
func (hd *handle) shape() (int, int, int) {
	l := hd.r.Layout()
	return hd.r.Len(), l.Tokens, l.Dim
}

// metadata returns the file's metadata block (JSON), as stored.
func (hd *handle) metadata() []byte { return hd.r.Container().Metadata() }

// key returns the key of sample i.
func (hd *handle) key(i int64) (string, error) {
	if i < 0 || i >= int64(hd.r.Len()) {
		return "", fmt.Errorf("sample %d out of range [0, %d): %w", i, hd.r.Len(), errArgument)
	}
	return hd.r.Key(int(i)), nil
}

// lookup returns the index of the sample with key.
func (hd *handle) lookup(key string) (int64, error) {
	i, err := hd.r.Lookup(key)
	return int64(i), err
}

// errInternal marks a failure of the library itself: a recovered panic.
var errInternal = errors.New("libntcb: internal error")

// protect runs fn and turns a panic on its goroutine into an error wrapping
// errInternal, so that a bug in the library does not take the host
// process down with it.
func protect(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errInternal, p)
		}
	}()
	return fn()
}

// float32s and uint16s view caller memory (aligned by the caller for its
// dtype) as values.
func float32s(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func uint16s(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}
