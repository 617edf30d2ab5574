package tensorio

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ntc-project/ntc/internal/f16"
)

// ReadAllFloat64 reads a whole input tensor into memory as float64, exactly
// for every stored type (ReadAll rounds float64 to float32): for small
// matrices whose every bit matters, such as a task metric. It returns the
// values in C order and the shape as stored, and refuses tensors of more
// than 1<<30 values with ErrTooLarge.
func ReadAllFloat64(spec string) ([]float64, []int, error) {
	src, err := Open(spec)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	s := src.(*source)
	n, per := s.l.n, s.l.tokens*s.l.dim
	if n > 0 && per > maxReadAllValues/n {
		return nil, nil, fmt.Errorf("%s: %d values exceed the ReadAll limit of %d: %w", spec, int64(n)*int64(per), maxReadAllValues, ErrTooLarge)
	}
	out := make([]float64, n*per)
	esize := s.dtype.Size()
	chunk := max(1, readChunkBytes/esize)
	buf := make([]byte, min(len(out), chunk)*esize)
	for done := 0; done < len(out); {
		k := min(chunk, len(out)-done)
		b := buf[:k*esize]
		if err := s.data.readAt(b, int64(done)*int64(esize)); err != nil {
			return nil, nil, fmt.Errorf("%s: value %d: %w", spec, done, err)
		}
		decode64(s.dtype, out[done:done+k], b)
		done += k
	}
	return out, s.Shape(), nil
}

// decode64 converts little-endian elements of type dt in src to dst
// exactly.
func decode64(dt DType, dst []float64, src []byte) {
	switch dt {
	case Float64:
		for i := range dst {
			dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))
		}
	case Float32:
		for i := range dst {
			dst[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case Float16:
		for i := range dst {
			dst[i] = float64(f16.ToFloat32(binary.LittleEndian.Uint16(src[2*i:])))
		}
	case BFloat16:
		for i := range dst {
			dst[i] = float64(f16.BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:])))
		}
	}
}
