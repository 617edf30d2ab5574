package tensorio

import (
	"encoding/binary"
	"math"

	"github.com/ntc-project/ntc/internal/f16"
)

// decode converts little-endian elements of type dt in src to dst.
// len(src) must be len(dst)*dt.Size().
func decode(dt DType, dst []float32, src []byte) {
	switch dt {
	case Float16:
		f16.DecodeLE(dst, src[:2*len(dst)])
	case BFloat16:
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = f16.BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Float32:
		src = src[:4*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case Float64:
		src = src[:8*len(dst)]
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	}
}

// encode converts src to little-endian elements of type dt in dst, rounding
// to nearest even. len(dst) must be len(src)*dt.Size().
func encode(dt DType, dst []byte, src []float32) {
	switch dt {
	case Float16:
		f16.EncodeLE(dst[:2*len(src)], src)
	case BFloat16:
		dst = dst[:2*len(src)]
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], f16.BF16FromFloat32(v))
		}
	case Float32:
		dst = dst[:4*len(src)]
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case Float64:
		dst = dst[:8*len(src)]
		for i, v := range src {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	}
}
