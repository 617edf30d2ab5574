package ntcb

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
)

// Reader reads the samples of a .ntcb file. Opening reads the header and
// the footer index only. ReadSample and ReadSamples read and decode only
// the wanted samples of a chunk that is split into per-sample parts (every
// codec's chunks are, from container format version 2 on): the chunk's
// head and the samples' parts. A chunk that is not split is read and
// decoded whole; ReadSample keeps the last such chunk for the next call.
// A Reader is safe for concurrent use.
type Reader struct {
	c    *container.Reader
	meta *Metadata
	ro   readOptions

	mu     sync.Mutex // guards codecs
	codecs map[uint8]codec.Codec

	cacheMu sync.Mutex // guards the last decoded chunk, for ReadSample
	cached  int        // chunk index held in cache, -1 for none
	cache   []float32
	raw     []byte

	bufs sync.Pool // *chunkBuf for sample reads
}

// NewReader opens the .ntcb stream in r, of the given size, and checks that
// its metadata and index agree. A model the file holds by reference is
// looked for, when first needed, where the options say (WithModels,
// WithLocator).
func NewReader(r io.ReaderAt, size int64, opts ...ReadOption) (*Reader, error) {
	c, err := container.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	return newReader(c, readOpts(opts))
}

func newReader(c *container.Reader, ro readOptions) (*Reader, error) {
	meta, err := parseMetadata(c.Metadata(), FormatName)
	if err != nil {
		return nil, err
	}
	l := meta.Layout
	if len(meta.Shape) != 3 || meta.Shape[0] != c.NumSamples() || meta.Shape[1] != l.Tokens || meta.Shape[2] != l.Dim {
		return nil, fmt.Errorf("%w: metadata shape %v does not match %d samples of %dx%d", ErrCorrupt, meta.Shape, c.NumSamples(), l.Tokens, l.Dim)
	}
	for i := range c.NumSamples() {
		if s := c.Sample(i); s.Tokens != l.Tokens || s.Dim != l.Dim {
			return nil, fmt.Errorf("%w: sample %d (%q) is %dx%d, the layout %dx%d", ErrCorrupt, i, s.Key, s.Tokens, s.Dim, l.Tokens, l.Dim)
		}
	}
	for i := range c.NumChunks() {
		ch := c.Chunk(i)
		if _, err := l.CheckCount(ch.Count); err != nil {
			return nil, fmt.Errorf("%w: chunk %d: %w", ErrCorrupt, i, err)
		}
		if _, err := codec.LookupID(ch.Codec); err != nil {
			return nil, fmt.Errorf("%w: chunk %d: %w", ErrCorrupt, i, err)
		}
	}
	return &Reader{c: c, meta: meta, ro: ro, codecs: map[uint8]codec.Codec{}, cached: -1}, nil
}

// File is a Reader over an open file.
type File struct {
	*Reader
	f *container.File
}

// Open opens the .ntcb file at path. Errors name the path. A model the
// file holds by reference is looked for where the options say, then next
// to the file (DirLocator).
func Open(path string, opts ...ReadOption) (*File, error) {
	f, err := container.Open(path)
	if err != nil {
		return nil, err
	}
	ro := readOpts(append(opts, WithLocator(DirLocator(filepath.Dir(path)))))
	if ro.name == "" {
		ro.name = path
	}
	r, err := newReader(f.Reader, ro)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{Reader: r, f: f}, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// name returns what messages call the file.
func (r *Reader) name() string {
	if r.ro.name == "" {
		return "the file"
	}
	return r.ro.name
}

// Meta returns the file's metadata.
func (r *Reader) Meta() Metadata { return *r.meta }

// Layout returns the token layout of every sample.
func (r *Reader) Layout() codec.Layout { return r.meta.Layout }

// Container gives access to the file's framing: chunks, models, sizes.
func (r *Reader) Container() *container.Reader { return r.c }

// Len returns the number of samples.
func (r *Reader) Len() int { return r.c.NumSamples() }

// Key returns the key of sample i.
func (r *Reader) Key(i int) string { return r.c.Sample(i).Key }

// Lookup returns the index of the sample with the key.
func (r *Reader) Lookup(key string) (int, error) { return r.c.Lookup(key) }

// codecFor returns the codec of a chunk, loading its model on first use.
func (r *Reader) codecFor(id uint8) (codec.Codec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.codecs[id]; ok {
		return c, nil
	}
	spec, err := codec.LookupID(id)
	if err != nil {
		return nil, err
	}
	var model []byte
	for _, m := range r.c.Models() {
		if m.Codec != id {
			continue
		}
		if m.External {
			c, err := r.ro.models.load(spec, r.meta.Layout, m, r.meta.ModelFile, r.name(), r.ro.locators)
			if err != nil {
				return nil, err
			}
			r.codecs[id] = c
			return c, nil
		}
		if model, err = r.c.ReadModel(id); err != nil {
			return nil, err
		}
	}
	c, err := spec.Load(r.meta.Layout, model)
	if err != nil {
		return nil, fmt.Errorf("%s model: %w", spec.Name, err)
	}
	r.codecs[id] = c
	return c, nil
}

// ReadChunk decodes chunk i into dst (grown as needed) and returns the
// values of its samples, in order. Calls may run concurrently.
func (r *Reader) ReadChunk(i int, dst []float32) ([]float32, error) {
	dst, _, err := r.decodeChunk(i, dst, nil)
	return dst, err
}

// chunkBuf holds one decoded chunk and the payload it came from, reused
// from chunk to chunk by the parallel decoders.
type chunkBuf struct {
	vals []float32
	raw  []byte
}

// noFill is the fill stage of pipelines whose jobs need no input.
func noFill(int, *chunkBuf) error { return nil }

// decodeInto decodes chunk i into b.
func (r *Reader) decodeInto(i int, b *chunkBuf) error {
	var err error
	b.vals, b.raw, err = r.decodeChunk(i, b.vals, b.raw)
	return err
}

// decodeChunk decodes chunk i into dst, reading its payload into raw; both
// are grown as needed and returned for reuse.
func (r *Reader) decodeChunk(i int, dst []float32, raw []byte) ([]float32, []byte, error) {
	if i < 0 || i >= r.c.NumChunks() {
		return dst, raw, fmt.Errorf("chunk %d out of range [0, %d)", i, r.c.NumChunks())
	}
	ch := r.c.Chunk(i)
	c, err := r.codecFor(ch.Codec)
	if err != nil {
		return dst, raw, fmt.Errorf("chunk %d: %w", i, err)
	}
	payload, err := r.c.ReadChunk(i, raw)
	if err != nil {
		return dst, raw, err
	}
	raw = payload[:0]
	dst = grow(dst, ch.Count*r.meta.Layout.Values())
	if err := c.Decode(dst, payload, ch.Count); err != nil {
		return dst, raw, fmt.Errorf("chunk %d at offset %d: %w", i, ch.Offset, err)
	}
	return dst, raw, nil
}

// ReadSample decodes sample i into dst (grown as needed to tokens*dim
// values) and returns it. It reads the chunk's head and the sample's part
// when the chunk is split, and the whole chunk, kept for the next call,
// otherwise.
func (r *Reader) ReadSample(i int, dst []float32) ([]float32, error) {
	if i < 0 || i >= r.Len() {
		return nil, fmt.Errorf("sample %d out of range [0, %d)", i, r.Len())
	}
	ci, pos := r.c.SampleChunk(i)
	n := r.meta.Layout.Values()
	dst = grow(dst, n)
	if r.c.ChunkSplit(ci) {
		if err := r.decodeRange(ci, pos, 1, dst); err != nil {
			return nil, err
		}
		return dst, nil
	}
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	if r.cached != ci {
		r.cached = -1
		vals, raw, err := r.decodeChunk(ci, r.cache, r.raw)
		r.cache, r.raw = vals, raw
		if err != nil {
			return nil, err
		}
		r.cached = ci
	}
	copy(dst, r.cache[pos*n:(pos+1)*n])
	return dst, nil
}

// ReadSamples decodes the samples with the given indices (any order,
// repeats allowed) into dst, grown as needed to len(idx)*tokens*dim values,
// and returns it. Each run of consecutive wanted samples of a split chunk
// is read (its chunk's head and the samples' parts) and decoded once; a
// chunk that is not split is read and decoded once, whole. Calls may run
// concurrently.
func (r *Reader) ReadSamples(idx []int, dst []float32) ([]float32, error) {
	n := r.meta.Layout.Values()
	for _, i := range idx {
		if i < 0 || i >= r.Len() {
			return nil, fmt.Errorf("sample %d out of range [0, %d)", i, r.Len())
		}
	}
	dst = grow(dst, len(idx)*n)
	for _, run := range sampleRuns(r, idx) {
		if run.direct {
			if err := r.decodeRange(run.chunk, run.first, run.n, dst[run.out[0]*n:][:run.n*n]); err != nil {
				return nil, err
			}
			continue
		}
		b := r.getBuf()
		var vals []float32
		var err error
		if run.whole {
			b.vals, b.raw, err = r.decodeChunk(run.chunk, b.vals, b.raw)
			vals = b.vals[run.first*n:]
		} else {
			b.vals = grow(b.vals, run.n*n)
			err = r.decodeRange(run.chunk, run.first, run.n, b.vals)
			vals = b.vals
		}
		if err == nil {
			for k, o := range run.out {
				s := run.outSample[k] - run.first
				copy(dst[o*n:(o+1)*n], vals[s*n:(s+1)*n])
			}
		}
		r.bufs.Put(b)
		if err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// getBuf returns a reusable decoding buffer.
func (r *Reader) getBuf() *chunkBuf {
	if b, ok := r.bufs.Get().(*chunkBuf); ok {
		return b
	}
	return new(chunkBuf)
}

// decodeRange decodes the samples [first, first+count) of split chunk ci
// into dst, which holds count samples: it reads the chunk's head and the
// samples' parts only.
func (r *Reader) decodeRange(ci, first, count int, dst []float32) error {
	ch := r.c.Chunk(ci)
	c, err := r.codecFor(ch.Codec)
	if err != nil {
		return fmt.Errorf("chunk %d: %w", ci, err)
	}
	b := r.getBuf()
	defer r.bufs.Put(b)
	payload, err := r.c.ReadSampleRange(ci, first, count, b.raw)
	if err != nil {
		return err
	}
	b.raw = payload[:0]
	if err := c.Decode(dst, payload, count); err != nil {
		return fmt.Errorf("chunk %d at offset %d, samples %d to %d: %w", ci, ch.Offset, ch.First+first, ch.First+first+count-1, err)
	}
	return nil
}

// sampleRun is one read of ReadSamples: count samples from first of a chunk
// (or the whole chunk), and the output positions they go to.
type sampleRun struct {
	chunk, first, n int
	whole           bool  // the chunk is not split: decode it whole
	direct          bool  // the run decodes straight into consecutive outputs
	out             []int // output positions
	outSample       []int // for each output, its sample's position in the chunk
}

// sampleRuns groups the wanted samples into runs of consecutive samples of
// split chunks and visits of whole chunks, each read once.
func sampleRuns(r *Reader, idx []int) []sampleRun {
	order := make([]int, len(idx))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(idx[a], idx[b]) })
	var runs []sampleRun
	for _, o := range order {
		ci, pos := r.c.SampleChunk(idx[o])
		if k := len(runs) - 1; k >= 0 && runs[k].chunk == ci {
			last := &runs[k]
			switch {
			case last.whole:
				last.out, last.outSample = append(last.out, o), append(last.outSample, pos)
				continue
			case pos == last.first+last.n-1: // a repeat
				last.out, last.outSample = append(last.out, o), append(last.outSample, pos)
				continue
			case pos == last.first+last.n:
				last.n++
				last.out, last.outSample = append(last.out, o), append(last.outSample, pos)
				continue
			}
		}
		run := sampleRun{chunk: ci, first: pos, n: 1, out: []int{o}, outSample: []int{pos}}
		if !r.c.ChunkSplit(ci) {
			run.whole, run.first, run.n = true, 0, r.c.Chunk(ci).Count
		}
		runs = append(runs, run)
	}
	for k := range runs {
		run := &runs[k]
		if run.whole || len(run.out) != run.n {
			continue
		}
		run.direct = true
		for j, o := range run.out {
			if o != run.out[0]+j {
				run.direct = false
				break
			}
		}
	}
	return runs
}

// Verify checks every checksum in the file and decodes every chunk, on
// GOMAXPROCS goroutines. It returns the first problem found, naming the
// chunk.
func (r *Reader) Verify(ctx context.Context, p Progress) error {
	if err := r.c.Verify(); err != nil {
		return err
	}
	emit := func(i int, _ *chunkBuf) error {
		if p != nil {
			p.Add(r.c.Chunk(i).Count)
		}
		return nil
	}
	return ordered(ctx, r.c.NumChunks(), 0, noFill, r.decodeInto, emit)
}
