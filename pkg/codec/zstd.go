package codec

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// One zstd encoder and decoder per process, made on first use and shared by
// all codecs: EncodeAll and DecodeAll are safe for concurrent use.
//
// Frames carry no zstd checksum: the container already protects every
// chunk with a CRC-32C over its payload, so a second checksum only costs time.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdCoders() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderCRC(false),
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.IgnoreChecksum(true),
			zstd.WithDecoderMaxMemory(4*MaxValues))
	})
	return zstdEnc, zstdDec, zstdErr
}

// zstdCompress appends the zstd frame of src to dst.
func zstdCompress(dst, src []byte) ([]byte, error) {
	enc, _, err := zstdCoders()
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(src, dst), nil
}

// zstdDecompress decodes one zstd payload that must expand to exactly want
// bytes, into dst's storage when it is large enough. The frame's declared
// size is checked before any output is allocated.
func zstdDecompress(dst, payload []byte, want int) ([]byte, error) {
	_, dec, err := zstdCoders()
	if err != nil {
		return nil, err
	}
	var h zstd.Header
	if err := h.Decode(payload); err != nil {
		return nil, fmt.Errorf("%w: zstd header: %v", ErrCorrupt, err)
	}
	if !h.HasFCS || h.FrameContentSize != uint64(want) {
		return nil, fmt.Errorf("%w: zstd frame holds %d bytes, want %d", ErrCorrupt, h.FrameContentSize, want)
	}
	if cap(dst) < want {
		dst = make([]byte, 0, want)
	}
	out, err := dec.DecodeAll(payload, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(out) != want {
		return nil, fmt.Errorf("%w: zstd payload decoded to %d bytes, want %d", ErrCorrupt, len(out), want)
	}
	return out, nil
}
