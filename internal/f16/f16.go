// Package f16 converts between float32 and the two 16-bit float formats
// that token dumps use: IEEE 754 binary16 (float16) and bfloat16.
//
// Conversions to 16 bits round to nearest, ties to even, as numpy and
// PyTorch do; values beyond the float16 range become infinities.
package f16

import "math"

// toF32 maps every float16 bit pattern to its float32 value. A table is
// faster than bit manipulation in the decode loops and costs 256 KiB.
var toF32 = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = convertToFloat32(uint16(i))
	}
	return &t
}()

func convertToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN; keep the payload's top bits.
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: value = man * 2^-24.
	f := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// ToFloat32 returns the float32 value of the float16 bit pattern h.
func ToFloat32(h uint16) float32 { return toF32[h] }

// FromFloat32 rounds f to the nearest float16 (ties to even) and returns its
// bit pattern. NaN stays NaN; values too large become infinities.
func FromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13) // quiet NaN
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // underflows to zero
		}
		// Subnormal result: shift the mantissa with its implicit bit.
		m := man | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rem := m & (1<<shift - 1)
		r := m >> shift
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to infinity: correct
	}
	return sign | uint16(r)
}

// BF16ToFloat32 returns the float32 value of the bfloat16 bit pattern h.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// BF16FromFloat32 rounds f to the nearest bfloat16 (ties to even).
func BF16FromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// Decode converts float16 bit patterns to float32: dst[i] = value of src[i].
// It converts min(len(dst), len(src)) values.
func Decode(dst []float32, src []uint16) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, h := range src {
		dst[i] = toF32[h]
	}
}

// Encode rounds float32 values to float16: dst[i] = FromFloat32(src[i]).
// It converts min(len(dst), len(src)) values.
func Encode(dst []uint16, src []float32) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, f := range src {
		dst[i] = FromFloat32(f)
	}
}

// Round returns f rounded to the nearest float16 value, as a float32.
func Round(f float32) float32 { return toF32[FromFloat32(f)] }

// IsFinite16 reports whether the float16 bit pattern h is neither an
// infinity nor a NaN.
func IsFinite16(h uint16) bool { return h&0x7c00 != 0x7c00 }
