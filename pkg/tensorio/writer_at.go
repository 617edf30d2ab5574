package tensorio

import (
	"fmt"
	"os"
	"sync"
)

// mapWrites says whether writes by place may map the file (tests turn it
// off to try the WriteAt path).
var mapWrites = true

// atState is a fileWriter's state once its samples are written by place
// (WriteEncodedAt).
type atState struct {
	mu    sync.Mutex // guards the fields below and the writer's err and f
	hdr   int64      // bytes before the samples
	per   int        // bytes per sample
	mem   []byte     // the file, mapped; nil: written with WriteAt
	f     *os.File
	seen  []uint64 // bit i: sample i was written
	count int
}

// WriteEncodedAt implements EncodedWriter. The file is mapped into memory
// where the platform allows (after reserving its blocks, so that a full
// disk shows as an error here rather than a fault later), so that the
// copies of several goroutines, and the page faults that come with them,
// run in parallel; a buffered write to one file is serialised by the
// kernel. Elsewhere it writes with WriteAt.
func (w *fileWriter) WriteEncodedAt(first int, b []byte) error {
	at := w.startAt()
	at.mu.Lock()
	if w.err != nil || w.f == nil {
		defer at.mu.Unlock()
		if w.err != nil {
			return w.err
		}
		return fmt.Errorf("%s: %w", w.path, errWriterClosed)
	}
	if len(b)%at.per != 0 {
		at.mu.Unlock()
		return fmt.Errorf("%s: %d encoded bytes are not whole samples of %d", w.path, len(b), at.per)
	}
	k := len(b) / at.per
	if first < 0 || first+k > w.l.n {
		at.mu.Unlock()
		return fmt.Errorf("%s: samples [%d, %d) outside the %d declared", w.path, first, first+k, w.l.n)
	}
	for i := first; i < first+k; i++ {
		if at.seen[i/64]&(1<<(i%64)) != 0 {
			at.mu.Unlock()
			return fmt.Errorf("%s: sample %d written twice", w.path, i)
		}
	}
	for i := first; i < first+k; i++ {
		at.seen[i/64] |= 1 << (i % 64)
	}
	at.count += k
	at.mu.Unlock()

	off := at.hdr + int64(first)*int64(at.per)
	if at.mem != nil {
		copy(at.mem[off:], b)
		return nil
	}
	if _, err := at.f.WriteAt(b, off); err != nil {
		at.mu.Lock()
		defer at.mu.Unlock()
		if w.err == nil {
			w.fail(err)
		}
		return w.err
	}
	return nil
}

// startAt switches the writer to writes by place on first use: it flushes
// what was written in order (those samples count as written) and maps the
// file.
func (w *fileWriter) startAt() *atState {
	w.atOnce.Do(func() {
		at := &atState{per: w.l.tokens * w.l.dim * w.dtype.Size(), hdr: w.hdr}
		at.seen = make([]uint64, (w.l.n+63)/64)
		for i := range w.written {
			at.seen[i/64] |= 1 << (i % 64)
		}
		at.count = w.written
		if w.err == nil && w.f != nil {
			if err := w.bw.Flush(); err != nil {
				w.fail(err)
			} else {
				at.f = w.f.OS()
				if mapWrites {
					at.mem = mapFile(at.f, at.hdr+int64(w.l.n)*int64(at.per))
				}
			}
		}
		w.at = at
	})
	return w.at
}

// Written implements EncodedWriter.
func (w *fileWriter) Written() int {
	if w.at == nil {
		return w.written
	}
	w.at.mu.Lock()
	defer w.at.mu.Unlock()
	return w.at.count
}

// unmap releases the mapping, if any.
func (at *atState) unmap() error {
	if at.mem == nil {
		return nil
	}
	err := unmapFile(at.mem)
	at.mem = nil
	return err
}
