package tensorio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ntc-project/ntc/internal/fsutil"
)

// Writer writes [N, T, D] samples one at a time, streaming, to a temporary
// file that Close moves into place (Create), or to a stream (NewWriter).
// It is not safe for concurrent use.
type Writer interface {
	// WriteSample appends the next sample; v must have length T*D. After
	// an error the Writer is spent: the temporary file is gone and Close
	// returns the error.
	WriteSample(v []float32) error
	// Close commits the file: it checks that all N samples were written,
	// flushes, fsyncs and renames the temporary file to the destination.
	// On any error the temporary file is removed and the destination is
	// left as it was.
	Close() error
	// Abort removes the temporary file and leaves the destination as it
	// was. After Close it does nothing, so `defer w.Abort()` is safe.
	Abort() error
}

// EncodedWriter is a Writer that also takes samples already encoded in
// its dtype, at their place in the file, from several goroutines at once:
// callers convert and write on every worker, and nothing is left to a
// single goroutine (Create's writers implement it).
type EncodedWriter interface {
	Writer
	// DType is the element type of the file, as EncodeValues must write it.
	DType() DType
	// WriteEncodedAt writes whole samples encoded by EncodeValues in the
	// writer's dtype (len(b) a multiple of T*D*DType().Size()) as samples
	// first, first+1, ... of the file. It is safe for concurrent use
	// with itself, for distinct samples; a Writer written this way takes no
	// WriteSample, and Close and Abort must not run while it does. Close
	// checks that every sample was written once. An I/O error spends the
	// Writer as for WriteSample; a bad argument only returns an error.
	WriteEncodedAt(first int, b []byte) error
	// Written returns how many samples have been written, in order or by
	// place: while no write is under way and those are the first ones,
	// the place of the next sample in order.
	Written() int
}

// EncodeValues appends src to dst as little-endian elements of type dt,
// rounding to nearest even (float16 with F16C or AVX-512 where the CPU has
// them), and returns the extended slice: what a Writer of dtype dt writes
// for those values.
func EncodeValues(dst []byte, dt DType, src []float32) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(src)*dt.Size())[:n+len(src)*dt.Size()]
	encode(dt, dst[n:], src)
	return dst
}

// WriteOption configures Create.
type WriteOption func(*writeOptions) error

type writeOptions struct {
	tensor  string
	meta    map[string]string
	keepOld bool
}

// WithReplace says whether Close may replace a file at the path; the
// default is true. With false, Create fails if the path exists, and so
// does Close if a file appeared there meanwhile; both errors wrap
// fs.ErrExist.
func WithReplace(replace bool) WriteOption {
	return func(o *writeOptions) error {
		o.keepOld = !replace
		return nil
	}
}

// DefaultTensorName is the tensor name that Create writes to a .safetensors
// file unless WithTensorName says otherwise.
const DefaultTensorName = "tokens"

// WithTensorName sets the tensor name of a .safetensors file; the default
// is DefaultTensorName. The name must be non-empty, valid utf-8 and not
// "__metadata__". It is ignored for .npy.
func WithTensorName(name string) WriteOption {
	return func(o *writeOptions) error {
		if name == "" || name == stMetadataKey || !isUTF8(name) {
			return fmt.Errorf("invalid tensor name %q", name)
		}
		o.tensor = name
		return nil
	}
}

// WithMetadata sets the "__metadata__" string map of a .safetensors file;
// the default is none. The map is copied. It is ignored for .npy, which has
// no place for it.
func WithMetadata(meta map[string]string) WriteOption {
	return func(o *writeOptions) error {
		for k, v := range meta {
			if !isUTF8(k) || !isUTF8(v) {
				return fmt.Errorf("metadata %q is not valid utf-8", k)
			}
		}
		o.meta = make(map[string]string, len(meta))
		for k, v := range meta {
			o.meta[k] = v
		}
		return nil
	}
}

// Create starts writing a .npy or .safetensors file (chosen by the
// extension of path) that holds a tensor of type dtype and shape
// [n, tokens, dim]. n may be 0; tokens and dim must be positive.
//
// It writes to a temporary file in the destination's directory, unnamed
// where the platform allows (internal/fsutil): Close flushes, fsyncs and
// moves it into place, and Abort (or an error) removes it, so the
// destination never holds a half-written file, and a killed process
// leaves nothing behind.
//
// A .npy file is written as numpy does, version 1.0 with a 64-byte aligned
// header; bfloat16 gets the descr '<V2' that np.save writes for an ml_dtypes
// bfloat16 array (numpy loads it as 2-byte voids: use
// .view(ml_dtypes.bfloat16)). A .safetensors file holds one tensor, named
// "tokens" unless WithTensorName is given, and the WithMetadata map.
func Create(path string, dtype DType, n, tokens, dim int, opts ...WriteOption) (Writer, error) {
	w, err := newWriter(path, filepath.Ext(path), func(o *writeOptions) (sink, error) {
		return fsutil.Create(path, fsutil.CreateOptions{Replace: !o.keepOld})
	}, dtype, n, tokens, dim, opts)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// NewWriter is Create for a stream, such as standard output: it writes a
// tensor of format "npy" or "safetensors" to w as WriteSample is called.
// Close flushes it and checks that all n samples came; nothing is undone
// on an error, so a consumer of the stream sees a short tensor then.
// WithReplace does not apply.
func NewWriter(w io.Writer, format string, dtype DType, n, tokens, dim int, opts ...WriteOption) (Writer, error) {
	fw, err := newWriter("<"+format+" stream>", "."+strings.TrimPrefix(format, "."), func(*writeOptions) (sink, error) {
		return streamSink{w}, nil
	}, dtype, n, tokens, dim, opts)
	if err != nil {
		return nil, err
	}
	// In order only: a stream cannot be written by place (no
	// EncodedWriter).
	return streamWriter{fw}, nil
}

// streamWriter is the Writer of NewWriter.
type streamWriter struct{ w *fileWriter }

func (s streamWriter) WriteSample(v []float32) error { return s.w.WriteSample(v) }
func (s streamWriter) Close() error                  { return s.w.Close() }
func (s streamWriter) Abort() error                  { return s.w.Abort() }

// sink is where a Writer's bytes go: an atomic file, or a stream.
type sink interface {
	io.Writer
	Commit() error
	Abort() error
	// OS returns the file being written, for writes by place; nil for a
	// stream.
	OS() *os.File
}

// streamSink is a sink over a stream, which cannot be undone.
type streamSink struct{ io.Writer }

func (streamSink) Commit() error { return nil }
func (streamSink) Abort() error  { return nil }
func (streamSink) OS() *os.File  { return nil }

// newWriter starts a Writer of the format of extension ext, named name in
// messages, writing to the sink that open returns.
func newWriter(name, ext string, open func(*writeOptions) (sink, error), dtype DType, n, tokens, dim int, opts []WriteOption) (*fileWriter, error) {
	o := writeOptions{tensor: DefaultTensorName}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if !dtype.Valid() {
		return nil, fmt.Errorf("%s: %v: %w", name, dtype, ErrDType)
	}
	if n < 0 || tokens <= 0 || dim <= 0 {
		return nil, fmt.Errorf("%s: shape [%d, %d, %d]: samples must be non-empty: %w", name, n, tokens, dim, ErrShape)
	}
	l, err := newLayout([]int64{int64(n), int64(tokens), int64(dim)}, dtype.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var header []byte
	switch ext = strings.ToLower(ext); ext {
	case extNPY:
		header = npyHeaderBytes(dtype, l.shape)
	case extSafetensors:
		if header, err = safetensorsHeaderBytes(o.tensor, dtype, l.shape, l.dataBytes, o.meta); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	default:
		return nil, fmt.Errorf("%s: cannot write file type %q (want .npy or .safetensors): %w", name, ext, ErrFormat)
	}
	f, err := open(&o)
	if err != nil {
		return nil, err
	}
	w := &fileWriter{
		path:  name,
		f:     f,
		bw:    bufio.NewWriterSize(f, 1<<20),
		dtype: dtype,
		l:     l,
	}
	w.hdr = int64(len(header))
	if _, err := w.bw.Write(header); err != nil {
		w.fail(err)
		return nil, w.err
	}
	return w, nil
}

func isUTF8(s string) bool { return utf8.ValidString(s) }

// fileWriter implements Writer for both formats: the header is known up
// front, so only the samples follow it.
type fileWriter struct {
	path    string
	f       sink // nil once closed or aborted
	bw      *bufio.Writer
	dtype   DType
	l       layout
	written int
	scratch []byte
	err     error    // sticky
	done    bool     // committed
	at      *atState // once WriteEncodedAt is used
	atOnce  sync.Once
	hdr     int64 // header bytes
}

var _ EncodedWriter = (*fileWriter)(nil)

var errWriterClosed = errors.New("writer is closed")

func (w *fileWriter) WriteSample(v []float32) error {
	if w.err != nil {
		return w.err
	}
	if w.at != nil {
		return fmt.Errorf("%s: WriteSample after WriteEncodedAt", w.path)
	}
	if w.f == nil {
		return fmt.Errorf("%s: %w", w.path, errWriterClosed)
	}
	if len(v) != w.l.tokens*w.l.dim {
		return fmt.Errorf("%s: sample holds %d values, want %d x %d", w.path, len(v), w.l.tokens, w.l.dim)
	}
	if w.written >= w.l.n {
		return fmt.Errorf("%s: sample %d beyond the %d declared", w.path, w.written, w.l.n)
	}
	esize := w.dtype.Size()
	chunk := max(1, readChunkBytes/esize)
	for done := 0; done < len(v); {
		k := min(chunk, len(v)-done)
		nb := k * esize
		if cap(w.scratch) < nb {
			w.scratch = make([]byte, nb)
		}
		buf := w.scratch[:nb]
		encode(w.dtype, buf, v[done:done+k])
		if _, err := w.bw.Write(buf); err != nil {
			w.fail(err)
			return w.err
		}
		done += k
	}
	w.written++
	return nil
}

// DType implements EncodedWriter.
func (w *fileWriter) DType() DType { return w.dtype }

func (w *fileWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		if w.done {
			return nil
		}
		return fmt.Errorf("%s: %w", w.path, errWriterClosed)
	}
	if w.at != nil {
		w.written = w.at.count
		if err := w.at.unmap(); err != nil {
			w.fail(err)
			return w.err
		}
	}
	if w.written != w.l.n {
		w.fail(fmt.Errorf("closed after %d of %d samples", w.written, w.l.n))
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.fail(err)
		return w.err
	}
	err := w.f.Commit()
	w.f = nil
	if err != nil {
		w.err = fmt.Errorf("%s: %w", w.path, err)
		return w.err
	}
	w.done = true
	return nil
}

func (w *fileWriter) Abort() error {
	if w.f == nil {
		return nil
	}
	if w.at != nil {
		w.at.unmap()
	}
	err := w.f.Abort()
	w.f = nil
	if w.err == nil {
		w.err = fmt.Errorf("%s: %w", w.path, errWriterClosed)
	}
	return err
}

// fail records err as the Writer's error and removes the temporary file.
func (w *fileWriter) fail(err error) {
	w.err = fmt.Errorf("%s: %w", w.path, err)
	if w.f != nil {
		if w.at != nil {
			w.at.unmap()
		}
		w.f.Abort()
		w.f = nil
	}
}
