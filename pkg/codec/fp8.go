package codec

import (
	"math"
)

// IDFP8 is the on-disk id of the fp8 codec.
const IDFP8 uint8 = 3

// e4m3 is the OCP FP8 E4M3 format: 1 sign, 4 exponent (bias 7), 3 mantissa
// bits, no infinities, largest finite value 448; S.1111.111 is NaN and is
// never written.
const e4m3Max = 448

// e4m3ToF32 maps every E4M3 byte to its value (NaN patterns map to 0).
var e4m3ToF32 = func() (t [256]float32) {
	for i := range 256 {
		e := (i >> 3) & 0xf
		m := i & 7
		var v float64
		switch {
		case e == 0xf && m == 7:
			v = 0
		case e == 0:
			v = float64(m) / 8 * math.Ldexp(1, -6)
		default:
			v = (1 + float64(m)/8) * math.Ldexp(1, e-7)
		}
		if i&0x80 != 0 {
			v = -v
		}
		t[i] = float32(v)
	}
	return t
}()

// e4m3FromF32 rounds v to the nearest E4M3 value (ties to even), saturating
// at +-448.
func e4m3FromF32(v float32) byte {
	b := math.Float32bits(v)
	sign := byte(b>>24) & 0x80
	a := math.Float32frombits(b &^ (1 << 31))
	if a >= e4m3Max {
		return sign | 0x7e
	}
	if a < 1.0/64 { // subnormal range: steps of 2^-9
		q := int(math.RoundToEven(float64(a) * 512))
		return sign | byte(q) // q == 8 is the smallest normal, encoded the same way
	}
	ab := math.Float32bits(a)
	e := int(ab>>23) - 127 // -6..8
	man := ab & 0x7fffff
	r := uint32(e+7)<<3 | man>>20
	rem := man & 0xfffff
	if rem > 0x80000 || (rem == 0x80000 && r&1 == 1) {
		r++
	}
	if r > 0x7e {
		r = 0x7e
	}
	return sign | byte(r)
}

var fp8Format = &fixedFormat{
	name:     "fp8",
	group:    func(dim int) int { return dim },
	bytesFor: func(g int) int { return g },
	maxCode:  e4m3Max,
	pack: func(dst []byte, src []float32, inv float32) {
		for i, v := range src {
			dst[i] = e4m3FromF32(v * inv)
		}
	},
	unpack: func(dst []float32, src []byte, scale float32) {
		src = src[:len(dst)]
		for i := range dst {
			dst[i] = e4m3ToF32[src[i]] * scale
		}
	},
	params: map[string]any{"format": "e4m3", "scale": "absmax per token, float16", "bits": 8},
	device: FixedFP8,
}

func init() {
	registerFixed(fp8Format, IDFP8, "fp8 e4m3 with one absmax scale per token (about 2x)")
}
