package tensorio

import (
	"fmt"
	"math"
	"math/bits"
)

// Hard limits, checked before anything is allocated from a declared length.
const (
	// maxNPYHeaderLen bounds the header dict of a .npy file. numpy itself
	// refuses headers over 10000 bytes unless told otherwise.
	maxNPYHeaderLen = 1 << 20
	// maxSafetensorsHeaderLen bounds the JSON header of a .safetensors
	// file; the reference implementation uses the same limit.
	maxSafetensorsHeaderLen = 100_000_000
	// maxSampleValues bounds tokens*dim of one sample.
	maxSampleValues = 1 << 30
	// maxReadAllValues bounds the values that ReadAll returns at once.
	maxReadAllValues = 1 << 30
	// readChunkBytes bounds the read buffer of a Source (and the encode
	// buffer of a Writer). A sample up to this size is read with one
	// ReadAt; a larger one is read and converted in pieces.
	readChunkBytes = 4 << 20
	// maxShapeRank bounds how many dimensions are parsed before the rank is
	// refused, so a hostile header cannot make a huge shape slice.
	maxShapeRank = 32
)

// layout is the validated geometry of a stored tensor.
type layout struct {
	shape       []int // as stored, rank 2 or 3
	n           int   // samples
	tokens, dim int
	sampleBytes int64 // bytes of one sample
	dataBytes   int64 // bytes of the whole tensor
}

// newLayout validates a stored shape for elements of esize bytes. Sizes are
// multiplied with overflow checks; the caller then checks dataBytes against
// what the file holds.
func newLayout(shape []int64, esize int) (layout, error) {
	if len(shape) != 2 && len(shape) != 3 {
		return layout{}, fmt.Errorf("shape %s has rank %d, want 2 ([tokens, dim]) or 3 ([n, tokens, dim]): %w",
			fmtShape(shape), len(shape), ErrShape)
	}
	for _, d := range shape {
		if d < 0 {
			return layout{}, fmt.Errorf("shape %s has a negative dimension: %w", fmtShape(shape), ErrShape)
		}
		if uint64(d) > math.MaxInt {
			return layout{}, fmt.Errorf("shape %s: dimension %d does not fit an int: %w", fmtShape(shape), d, ErrShape)
		}
	}
	n := int64(1)
	if len(shape) == 3 {
		n = shape[0]
	}
	tokens, dim := shape[len(shape)-2], shape[len(shape)-1]
	if tokens == 0 || dim == 0 {
		return layout{}, fmt.Errorf("shape %s has empty samples: %w", fmtShape(shape), ErrShape)
	}
	hi, vals := bits.Mul64(uint64(tokens), uint64(dim))
	if hi != 0 {
		return layout{}, fmt.Errorf("shape %s: element count overflows: %w", fmtShape(shape), ErrShape)
	}
	hi, total := bits.Mul64(vals, uint64(n))
	hi2, totalBytes := bits.Mul64(total, uint64(esize))
	if hi != 0 || hi2 != 0 || totalBytes > math.MaxInt64 {
		return layout{}, fmt.Errorf("shape %s: element count overflows: %w", fmtShape(shape), ErrShape)
	}
	if vals > maxSampleValues {
		return layout{}, fmt.Errorf("shape %s: %d values per sample exceeds the limit of %d: %w",
			fmtShape(shape), vals, maxSampleValues, ErrTooLarge)
	}
	l := layout{
		shape:       make([]int, len(shape)),
		n:           int(n),
		tokens:      int(tokens),
		dim:         int(dim),
		sampleBytes: int64(vals) * int64(esize),
		dataBytes:   int64(totalBytes),
	}
	for i, d := range shape {
		l.shape[i] = int(d)
	}
	return l, nil
}

// fmtShape formats a shape as [a, b, c].
func fmtShape[T int | int64](shape []T) string {
	b := []byte{'['}
	for i, d := range shape {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "%d", d)
	}
	return string(append(b, ']'))
}
