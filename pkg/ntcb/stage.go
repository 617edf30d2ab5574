package ntcb

import (
	"errors"
	"fmt"

	"github.com/ntc-project/ntc/pkg/codec"
)

// StageChunk reads chunk i, checks its checksum, and does the host part of
// decoding it for a device decoder (codec.Stager, with mode) into a buffer that get
// returns for a size; get is called again, with a larger size, in the rare
// case that the first buffer is too small. It returns the staged chunk and
// the buffer that holds it, and raw, the buffer the payload was read into,
// for reuse. Calls may run concurrently.
func (r *Reader) StageChunk(i int, raw []byte, mode codec.StageMode, get func(size int) ([]byte, error)) (codec.Staged, []byte, []byte, error) {
	if i < 0 || i >= r.c.NumChunks() {
		return codec.Staged{}, nil, raw, fmt.Errorf("chunk %d out of range [0, %d)", i, r.c.NumChunks())
	}
	ch := r.c.Chunk(i)
	c, err := r.codecFor(ch.Codec)
	if err != nil {
		return codec.Staged{}, nil, raw, fmt.Errorf("chunk %d: %w", i, err)
	}
	sg, ok := c.(codec.Stager)
	if !ok {
		return codec.Staged{}, nil, raw, fmt.Errorf("chunk %d: codec %s cannot be decoded on a device", i, c.Name())
	}
	payload, err := r.c.ReadChunk(i, raw)
	if err != nil {
		return codec.Staged{}, nil, raw, err
	}
	raw = payload[:0]
	size, err := sg.StageSize(payload, ch.Count, mode)
	for err == nil {
		var buf []byte
		if buf, err = get(size); err != nil {
			return codec.Staged{}, nil, raw, err
		}
		var st codec.Staged
		st, err = sg.Stage(buf, payload, ch.Count, mode)
		if err == nil {
			return st, buf, raw, nil
		}
		if !errors.Is(err, codec.ErrShortBuffer) || st.Size <= size {
			break
		}
		size = st.Size
		err = nil
	}
	return codec.Staged{}, nil, raw, fmt.Errorf("chunk %d at offset %d: %w", i, ch.Offset, err)
}
