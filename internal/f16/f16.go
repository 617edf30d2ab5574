// Package f16 converts between float32 and the two 16-bit float formats
// that token dumps use: IEEE 754 binary16 (float16) and bfloat16.
//
// Conversions to 16 bits round to nearest, ties to even, as numpy and
// PyTorch do; values beyond the float16 range become infinities.
package f16

import (
	"encoding/binary"
	"math"
	"unsafe"
)

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
// It converts min(len(dst), len(src)) values, with F16C or AVX-512 where
// the vector level has them (internal/cpufeat), bit for bit as ToFloat32.
func Decode(dst []float32, src []uint16) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for len(src) > 0 {
		k := decodeVec(dst, src)
		dst, src = dst[k:], src[k:]
		// The vector unit stops before a group of 16 that holds a NaN
		// (it would quiet a signalling one) and leaves the tail: these
		// go by the table.
		m := min(len(src), 16)
		for i, h := range src[:m] {
			dst[i] = toF32[h]
		}
		dst, src = dst[m:], src[m:]
	}
}

// Encode rounds float32 values to float16: dst[i] = FromFloat32(src[i]).
// It converts min(len(dst), len(src)) values, with F16C or AVX-512 where
// the vector level has them, bit for bit as FromFloat32.
func Encode(dst []uint16, src []float32) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	k := encodeVec(dst, src)
	for i, f := range src[k:] {
		dst[k+i] = FromFloat32(f)
	}
}

// littleEndian is whether uint16s are stored low byte first, so that the
// byte forms can convert in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// as16 returns b as len(b)/2 uint16s when that is the same as little-endian
// byte pairs and b is aligned for it, else nil.
func as16(b []byte) []uint16 {
	if len(b) < 2 || !littleEndian || uintptr(unsafe.Pointer(unsafe.SliceData(b)))&1 != 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/2)
}

// DecodeLE converts little-endian float16 bytes to float32: dst[i] is the
// value of src[2i:2i+2]. It converts min(len(dst), len(src)/2) values.
func DecodeLE(dst []float32, src []byte) {
	n := min(len(dst), len(src)/2)
	if h := as16(src[:2*n]); h != nil {
		Decode(dst[:n], h)
		return
	}
	for i := range dst[:n] {
		dst[i] = toF32[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

// EncodeLE rounds float32 values to little-endian float16 bytes:
// dst[2i:2i+2] = FromFloat32(src[i]). It converts min(len(dst)/2,
// len(src)) values.
func EncodeLE(dst []byte, src []float32) {
	n := min(len(dst)/2, len(src))
	if h := as16(dst[:2*n]); h != nil {
		Encode(h, src[:n])
		return
	}
	for i, f := range src[:n] {
		binary.LittleEndian.PutUint16(dst[2*i:], FromFloat32(f))
	}
}

// Round returns f rounded to the nearest float16 value, as a float32.
func Round(f float32) float32 { return toF32[FromFloat32(f)] }

// IsFinite16 reports whether the float16 bit pattern h is neither an
// infinity nor a NaN.
func IsFinite16(h uint16) bool { return h&0x7c00 != 0x7c00 }
