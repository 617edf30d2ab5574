//go:build !purego

package f16

import "github.com/ntc-project/ntc/internal/cpufeat"

//go:noescape
func encodeF16C(dst *uint16, src *float32, n int)

//go:noescape
func encode512(dst *uint16, src *float32, n int)

//go:noescape
func decodeF16C(dst *float32, src *uint16, n int) int

//go:noescape
func decode512(dst *float32, src *uint16, n int) int

// encodeVec converts a multiple of 16 leading values with the vector
// unit, if the active level has one, and returns how many it converted.
func encodeVec(dst []uint16, src []float32) int {
	n := min(len(dst), len(src)) &^ 15
	switch {
	case n == 0:
	case cpufeat.X86.HasAVX512F:
		encode512(&dst[0], &src[0], n)
	case cpufeat.X86.HasF16C:
		encodeF16C(&dst[0], &src[0], n)
	default:
		return 0
	}
	return n
}

// decodeVec converts leading values with the vector unit, if the active
// level has one, up to a multiple of 16 and stopping before the first
// group of 16 that holds a NaN, and returns how many it converted.
func decodeVec(dst []float32, src []uint16) int {
	n := min(len(dst), len(src)) &^ 15
	switch {
	case n == 0:
		return 0
	case cpufeat.X86.HasAVX512F:
		return decode512(&dst[0], &src[0], n)
	case cpufeat.X86.HasF16C:
		return decodeF16C(&dst[0], &src[0], n)
	}
	return 0
}
