package codec

// IDInt4 is the on-disk id of the int4 codec.
const IDInt4 uint8 = 4

// int4Group is the number of values that share one float16 scale.
const int4Group = 32

// int4 codes are in [-7, 7], stored as two's-complement nibbles, the first
// value of a pair in the low nibble. An odd-sized group pads its last byte's
// high nibble with zero.
var int4Format = &fixedFormat{
	name:     "int4",
	group:    func(dim int) int { return int4Group },
	bytesFor: func(g int) int { return (g + 1) / 2 },
	maxCode:  7,
	pack: func(dst []byte, src []float32, inv float32) {
		for i := range dst {
			lo := byte(roundClamp(src[2*i]*inv, 7)) & 0xf
			var hi byte
			if 2*i+1 < len(src) {
				hi = byte(roundClamp(src[2*i+1]*inv, 7)) & 0xf
			}
			dst[i] = lo | hi<<4
		}
	},
	unpack: func(dst []float32, src []byte, scale float32) {
		for i := 0; i < len(dst); i += 2 {
			b := src[i/2]
			dst[i] = float32(int8(b<<4)>>4) * scale
			if i+1 < len(dst) {
				dst[i+1] = float32(int8(b)>>4) * scale
			}
		}
	},
	params: map[string]any{"group": int4Group, "scale": "absmax per group, float16", "bits": 4},
	device: FixedInt4,
}

func init() {
	registerFixed(int4Format, IDInt4, "int4 in groups of 32 values with a float16 absmax scale (about 3.6x)")
}
