package ntcb

import (
	"fmt"

	"github.com/ntc-project/ntc/pkg/codec"
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
	ModelRefs    []ModelRef   `json:"model_refs,omitempty"`
	// ModelVersion is the format version of the model the file holds
	// (the learned codec's; 0 for codecs without a versioned model or a
	// model held by reference).
	ModelVersion int         `json:"model_version,omitempty"`
	Metadata     Metadata    `json:"metadata"`
	Chunks       []ChunkInfo `json:"chunks"`
}

// ModelRef describes a model that a file holds by reference: not stored
// in it, found by its hash in a model file.
type ModelRef struct {
	Codec  string `json:"codec"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
	// File is the model file's name as the writer recorded it (a hint).
	File string `json:"file,omitempty"`
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
		if !m.External {
			info.ModelBytes += m.Length
			if info.ModelVersion == 0 {
				if c, err := r.codecFor(m.Codec); err == nil {
					if v, ok := c.(codec.Versioned); ok {
						info.ModelVersion = v.ModelVersion()
					}
				}
			}
			continue
		}
		name := fmt.Sprintf("id %d", m.Codec)
		if s, err := codec.LookupID(m.Codec); err == nil {
			name = s.Name
		}
		info.ModelRefs = append(info.ModelRefs, ModelRef{Codec: name, SHA256: FormatHash(m.SHA256), Bytes: m.Length, File: r.meta.ModelFile})
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
