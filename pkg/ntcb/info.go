package ntcb

import (
	"context"
	"fmt"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// Info summarises a .ntcb file for display.
type Info struct {
	Version      int          `json:"format_version"`
	FileBytes    int64        `json:"file_bytes"`
	FP16Bytes    int64        `json:"fp16_bytes"`
	Ratio        float64      `json:"ratio"`
	BitsPerValue float64      `json:"bits_per_value"`
	Samples      int          `json:"samples"`
	Layout       codec.Layout `json:"layout"`
	Codec        string       `json:"codec"`
	ModelBytes   int          `json:"model_bytes"`
	Metadata     Metadata     `json:"metadata"`
	Chunks       []ChunkInfo  `json:"chunks"`
}

// ChunkInfo describes one chunk and its rate.
type ChunkInfo struct {
	Index        int     `json:"index"`
	Offset       int64   `json:"offset"`
	Bytes        int     `json:"bytes"`
	Codec        string  `json:"codec"`
	FirstSample  int     `json:"first_sample"`
	Samples      int     `json:"samples"`
	BitsPerValue float64 `json:"bits_per_value"`
}

// Info describes the file from its header, index and metadata; it reads no
// chunk.
func (r *Reader) Info() Info {
	l := r.meta.Layout
	info := Info{
		Version: r.c.Version(), FileBytes: r.c.Size(), Samples: r.Len(), Layout: l,
		Codec: r.meta.Codec, Metadata: *r.meta,
	}
	values := int64(r.Len()) * int64(l.Values())
	info.FP16Bytes = 2 * values
	if info.FileBytes > 0 {
		info.Ratio = float64(info.FP16Bytes) / float64(info.FileBytes)
	}
	if values > 0 {
		info.BitsPerValue = 8 * float64(info.FileBytes) / float64(values)
	}
	for _, m := range r.c.Models() {
		info.ModelBytes += m.Length
	}
	for i := range r.c.NumChunks() {
		ch := r.c.Chunk(i)
		name := fmt.Sprintf("id %d", ch.Codec)
		if s, err := codec.LookupID(ch.Codec); err == nil {
			name = s.Name
		}
		info.Chunks = append(info.Chunks, ChunkInfo{
			Index: i, Offset: ch.Offset, Bytes: ch.Length, Codec: name, FirstSample: ch.First, Samples: ch.Count,
			BitsPerValue: 8 * float64(ch.Length) / float64(ch.Count*l.Values()),
		})
	}
	return info
}

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
