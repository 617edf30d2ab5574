package codec

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// One zstd encoder and decoder per process, made on first use and shared by
// all codecs: EncodeAll and DecodeAll are safe for concurrent use.
//
// The encoder runs at SpeedBetterCompression: at the default level zstd
// stores shuffled float16 bytes raw (ratio 1.00 on real tokens), while this
// level entropy-codes the exponent bytes (1.18x on the shared DeiT tokens, at
// about 195 MB/s encode and 2 GB/s decode per core).
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
			zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
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

// Frames without a declared content size are accepted only for outputs
// below smallFrame bytes, in payloads at most smallFrameSlack bytes larger.
const (
	smallFrame      = 256
	smallFrameSlack = 64
)

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
	switch {
	case h.HasFCS && h.FrameContentSize != uint64(want):
		return nil, fmt.Errorf("%w: zstd frame holds %d bytes, want %d", ErrCorrupt, h.FrameContentSize, want)
	case !h.HasFCS && (want >= smallFrame || len(payload) > want+smallFrameSlack):
		// The encoder leaves out the size only for frames under 256 bytes;
		// holding such payloads to a few bytes more than their output bounds
		// what a hostile frame (of RLE blocks, say) can expand to.
		return nil, fmt.Errorf("%w: zstd frame of %d bytes without a content size, want %d", ErrCorrupt, len(payload), want)
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
