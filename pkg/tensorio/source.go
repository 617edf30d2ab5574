package tensorio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
)

// Source is one input tensor holding N samples of [T, D] values.
//
// A Source reads one sample at a time through a small reused buffer; it never
// loads a whole file. It is not safe for concurrent use.
type Source interface {
	// Name returns the spec the Source was opened from, e.g.
	// "a/b.npz:tokens".
	Name() string
	// DType returns the stored element type.
	DType() DType
	// Shape returns the shape as stored: [T, D] or [N, T, D]. The caller
	// may modify the returned slice.
	Shape() []int
	// Batched reports whether the stored tensor is 3-D.
	Batched() bool
	// NumSamples returns N, or 1 for a 2-D tensor.
	NumSamples() int
	// SampleShape returns T and D.
	SampleShape() (tokens, dim int)
	// ReadSample converts sample i to float32 into dst, which must have
	// length tokens*dim. Sequential access (0, 1, 2, ...) is efficient for
	// every format; random access works for all formats (a deflated npz
	// entry may reopen and skip through its stream).
	ReadSample(i int, dst []float32) error
	// Close releases the file. Reading after Close is an error.
	Close() error
}

// byteReader reads bytes of the data region of a tensor, at offsets
// relative to the region's start.
type byteReader interface {
	readAt(p []byte, off int64) error
	close() error
}

// source implements Source over a byteReader for every format.
type source struct {
	name   string
	dtype  DType
	l      layout
	data   byteReader
	closer io.Closer // the file, or nil
	meta   map[string]string
	buf    []byte
	closed bool
}

var _ Source = (*source)(nil)

func (s *source) Name() string                   { return s.name }
func (s *source) DType() DType                   { return s.dtype }
func (s *source) Shape() []int                   { return slices.Clone(s.l.shape) }
func (s *source) Batched() bool                  { return len(s.l.shape) == 3 }
func (s *source) NumSamples() int                { return s.l.n }
func (s *source) SampleShape() (tokens, dim int) { return s.l.tokens, s.l.dim }

func (s *source) ReadSample(i int, dst []float32) error {
	switch {
	case s.closed:
		return fmt.Errorf("%s: read after close", s.name)
	case i < 0 || i >= s.l.n:
		return fmt.Errorf("%s: sample %d out of range [0, %d)", s.name, i, s.l.n)
	case len(dst) != s.l.tokens*s.l.dim:
		return fmt.Errorf("%s: destination holds %d values, a sample has %d", s.name, len(dst), s.l.tokens*s.l.dim)
	}
	esize := s.dtype.Size()
	chunk := max(1, readChunkBytes/esize)
	base := int64(i) * s.l.sampleBytes
	for done := 0; done < len(dst); {
		k := min(chunk, len(dst)-done)
		nb := k * esize
		if cap(s.buf) < nb {
			s.buf = make([]byte, nb)
		}
		buf := s.buf[:nb]
		if err := s.data.readAt(buf, base+int64(done)*int64(esize)); err != nil {
			return fmt.Errorf("%s: sample %d: %w", s.name, i, err)
		}
		decode(s.dtype, dst[done:done+k], buf)
		done += k
	}
	return nil
}

func (s *source) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.buf = nil
	err := s.data.close()
	if s.closer != nil {
		err = errors.Join(err, s.closer.Close())
	}
	return err
}

// atReader reads a data region at a fixed offset of an io.ReaderAt.
type atReader struct {
	r    io.ReaderAt
	base int64 // offset of the data region in r
	size int64 // bytes of the data region
}

func (a *atReader) readAt(p []byte, off int64) error {
	if off < 0 || off > a.size || int64(len(p)) > a.size-off {
		return fmt.Errorf("read of %d bytes at %d beyond data of %d bytes: %w", len(p), off, a.size, ErrTruncated)
	}
	n, err := a.r.ReadAt(p, a.base+off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = ErrTruncated
	}
	return fmt.Errorf("read %d of %d bytes at offset %d: %w", n, len(p), a.base+off, err)
}

func (a *atReader) close() error { return nil }

// streamReader reads a data region that is only available as a stream (a
// deflated npz entry). Reads at increasing offsets cost nothing extra; a read
// behind the current position reopens the stream and skips forward.
type streamReader struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser // nil when not open
	pos  int64         // offset in the stream (from its start) of the next byte of rc
	base int64         // offset of the data region in the stream
	size int64         // bytes of the data region
}

func (s *streamReader) readAt(p []byte, off int64) error {
	if off < 0 || off > s.size || int64(len(p)) > s.size-off {
		return fmt.Errorf("read of %d bytes at %d beyond data of %d bytes: %w", len(p), off, s.size, ErrTruncated)
	}
	target := s.base + off
	if s.rc != nil && target < s.pos {
		s.reset()
	}
	if s.rc == nil {
		rc, err := s.open()
		if err != nil {
			return streamErr(err)
		}
		s.rc, s.pos = rc, 0
	}
	if skip := target - s.pos; skip > 0 {
		n, err := io.CopyN(io.Discard, s.rc, skip)
		s.pos += n
		if err != nil {
			s.reset()
			return streamErr(err)
		}
	}
	n, err := io.ReadFull(s.rc, p)
	s.pos += int64(n)
	if err != nil {
		s.reset()
		return streamErr(err)
	}
	if s.pos == s.base+s.size {
		// The last byte of data: drain the rest of the entry so that
		// archive/zip verifies its CRC-32. Its reader refuses to produce
		// more bytes than the entry declares.
		_, err := io.Copy(io.Discard, s.rc)
		s.reset()
		if err != nil {
			return streamErr(err)
		}
	}
	return nil
}

func (s *streamReader) reset() {
	if s.rc != nil {
		s.rc.Close()
		s.rc = nil
	}
}

func (s *streamReader) close() error {
	s.reset()
	return nil
}

// streamErr maps errors from a decompressing reader to sentinels.
func streamErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("compressed stream ended early: %w", ErrTruncated)
	}
	var pe *fs.PathError
	if errors.Is(err, ErrFormat) || errors.Is(err, ErrTruncated) || errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("compressed stream: %v: %w", err, ErrFormat)
}
