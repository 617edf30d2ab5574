package ntcb

import (
	"context"
	"fmt"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

// Export decodes the samples with the given indices, in that order, into
// w. Chunks are decoded by up to workers goroutines at once (0 means
// GOMAXPROCS) and samples written in order; at most 2*workers+1 decoded
// chunks are held at once. Each visit to a chunk decodes it once, however
// many of its samples are asked for.
func Export(ctx context.Context, r *Reader, indices []int, w tensorio.Writer, p Progress, workers int) error {
	type visit struct {
		chunk int
		pos   []int
	}
	var visits []visit
	for _, i := range indices {
		if i < 0 || i >= r.Len() {
			return fmt.Errorf("sample %d out of range [0, %d)", i, r.Len())
		}
		ci, pos := r.c.SampleChunk(i)
		if n := len(visits); n > 0 && visits[n-1].chunk == ci {
			visits[n-1].pos = append(visits[n-1].pos, pos)
		} else {
			visits = append(visits, visit{ci, []int{pos}})
		}
	}
	work := func(v int, b *chunkBuf) error { return r.decodeInto(visits[v].chunk, b) }
	n := r.meta.Layout.Values()
	emit := func(v int, j *chunkBuf) error {
		for _, pos := range visits[v].pos {
			if err := w.WriteSample(j.vals[pos*n : (pos+1)*n]); err != nil {
				return err
			}
		}
		if p != nil {
			p.Add(len(visits[v].pos))
		}
		return nil
	}
	return ordered(ctx, len(visits), workers, noFill, work, emit)
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
