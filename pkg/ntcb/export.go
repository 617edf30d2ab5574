package ntcb

import (
	"context"
	"fmt"
	"slices"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

// exportGroupBytes bounds the float32 values of the samples Export
// decodes at once from a split chunk: a few hundred KB, well within a
// core's L2 cache (1-2 MB on current x86 server cores). A variable for
// the tests.
var exportGroupBytes = 512 << 10

// Export decodes the samples with the given indices, in that order, into
// w. Chunks are decoded by up to workers goroutines at once (0 means
// GOMAXPROCS) and samples written in order; at most 2*workers+1 decoded
// chunks are held at once. When w is a tensorio.EncodedWriter (as
// tensorio.Create's are), the workers also convert the samples to its
// dtype and write them at their place in the file, so that nothing but
// the progress report is left to the one goroutine that keeps the order. Of a split chunk, each run of consecutive
// indices is read and decoded by itself (the chunk's head and the samples'
// parts); a chunk that is not split is decoded once per visit, however many
// of its samples are asked for.
func Export(ctx context.Context, r *Reader, indices []int, w tensorio.Writer, p Progress, workers int) error {
	type visit struct {
		chunk, first, n int   // samples [first, first+n) of a split chunk
		whole           bool  // or the whole chunk
		pos             []int // the samples to write, by position in the chunk
	}
	var visits []visit
	for _, i := range indices {
		if i < 0 || i >= r.Len() {
			return fmt.Errorf("sample %d out of range [0, %d)", i, r.Len())
		}
		ci, pos := r.c.SampleChunk(i)
		if k := len(visits) - 1; k >= 0 && visits[k].chunk == ci && (visits[k].whole || pos == visits[k].first+visits[k].n) {
			if !visits[k].whole {
				visits[k].n++
			}
			visits[k].pos = append(visits[k].pos, pos)
			continue
		}
		v := visit{chunk: ci, first: pos, n: 1, pos: []int{pos}}
		if !r.c.ChunkSplit(ci) {
			v.whole, v.first, v.n = true, 0, r.c.Chunk(ci).Count
		}
		visits = append(visits, v)
	}
	type job struct {
		chunkBuf
		out []byte // with an EncodedWriter: the samples to write, encoded
	}
	ew, encoded := w.(tensorio.EncodedWriter)
	// at[k] is the place in the output of visit k's first sample: after
	// what w already holds.
	at := make([]int, len(visits))
	if encoded && len(visits) > 0 {
		at[0] = ew.Written()
	}
	for k := 1; k < len(visits); k++ {
		at[k] = at[k-1] + len(visits[k-1].pos)
	}
	n := r.meta.Layout.Values()
	// A run of a split chunk written to an EncodedWriter goes through in
	// groups of samples small enough to stay in the core's cache from
	// decoding to conversion: a whole chunk (4 MiB of float16, 8 MiB as
	// float32) would go out to memory and back twice.
	group := max(1, exportGroupBytes/(4*n))
	work := func(k int, j *job) error {
		v := &visits[k]
		if encoded && !v.whole {
			for s := 0; s < v.n; s += group {
				c := min(group, v.n-s)
				j.vals = grow(j.vals, c*n)
				if err := r.decodeRange(v.chunk, v.first+s, c, j.vals); err != nil {
					return err
				}
				j.out = tensorio.EncodeValues(j.out[:0], ew.DType(), j.vals[:c*n])
				if err := ew.WriteEncodedAt(at[k]+s, j.out); err != nil {
					return err
				}
			}
			return nil
		}
		if v.whole {
			if err := r.decodeInto(v.chunk, &j.chunkBuf); err != nil {
				return err
			}
		} else {
			j.vals = grow(j.vals, v.n*n)
			if err := r.decodeRange(v.chunk, v.first, v.n, j.vals); err != nil {
				return err
			}
		}
		if encoded {
			j.out = slices.Grow(j.out[:0], len(v.pos)*n*ew.DType().Size())
			for _, pos := range v.pos {
				s := pos - v.first
				j.out = tensorio.EncodeValues(j.out, ew.DType(), j.vals[s*n:(s+1)*n])
			}
			return ew.WriteEncodedAt(at[k], j.out)
		}
		return nil
	}
	emit := func(k int, j *job) error {
		v := &visits[k]
		if !encoded {
			for _, pos := range v.pos {
				s := pos - v.first
				if err := w.WriteSample(j.vals[s*n : (s+1)*n]); err != nil {
					return err
				}
			}
		}
		if p != nil {
			p.Add(len(v.pos))
		}
		return nil
	}
	noInput := func(int, *job) error { return nil }
	return ordered(ctx, len(visits), workers, noInput, work, emit)
}

// Copy writes every sample of src, in order, to w, reporting each to p
// when p is not nil: a dataset rewritten in another dtype or format (the
// conversion is w's).
func Copy(ctx context.Context, src Source, w tensorio.Writer, p Progress) error {
	t, d := src.Shape()
	buf := make([]float32, t*d)
	for i := range src.Len() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := src.ReadSample(i, buf); err != nil {
			return err
		}
		if err := w.WriteSample(buf); err != nil {
			return err
		}
		if p != nil {
			p.Add(1)
		}
	}
	return nil
}
