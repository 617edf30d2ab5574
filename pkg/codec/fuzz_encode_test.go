package codec

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// fuzzLayout derives a small layout and sample count from shape: 1 to 16
// dims, a grid of 1 to 4 by 1 to 4 tokens after 0 to 3 prefix tokens, one
// to three samples.
func fuzzLayout(shape uint16) (Layout, int) {
	h, w := int(shape&3)+1, int(shape>>2&3)+1
	prefix := int(shape >> 4 & 3)
	dim := int(shape>>6&15) + 1
	n := int(shape>>10&1) + int(shape>>11&1) + 1
	return Layout{Tokens: prefix + h*w, Dim: dim, Prefix: prefix, GridH: h, GridW: w}, n
}

// fuzzValues fills nv float32 values from raw. With scaled false each four
// bytes are a float32's bits, any finite value (a NaN or infinity has its
// top exponent bit cleared, which makes it finite); with scaled true each
// two bytes are an int16 times 2^exp, for values of every magnitude that
// a codec may hold. raw is repeated to fill.
func fuzzValues(raw []byte, nv int, scaled bool, exp int8) []float32 {
	v := make([]float32, nv)
	step := 4
	if scaled {
		step = 2
	}
	if len(raw) < step {
		return v
	}
	mul := float32(math.Ldexp(1, int(exp)%48))
	for i := range v {
		o := i * step % (len(raw) - len(raw)%step)
		if scaled {
			v[i] = float32(int16(binary.LittleEndian.Uint16(raw[o:]))) * mul
			continue
		}
		b := binary.LittleEndian.Uint32(raw[o:])
		if b&0x7f800000 == 0x7f800000 {
			b &^= 0x40000000
		}
		v[i] = math.Float32frombits(b)
	}
	return v
}

// FuzzEncode runs every codec's encoder on arbitrary finite float32 input:
// the fit (for the learned codec), Encode and Decode of what Encode wrote.
// A codec may refuse values it cannot hold (ErrRange) and layouts it does
// not support (ErrBadLayout); it must not panic, and what it writes must
// decode to finite values.
func FuzzEncode(f *testing.F) {
	f.Add(uint16(0x0fff), false, int8(0), uint8(8), []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0})
	f.Add(uint16(0x0a5f), true, int8(10), uint8(4), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	// Large finite values: tokens scaled by 1e5 made the learned codec's
	// quantizer index out of range.
	big := make([]byte, 64)
	for i := range 16 {
		binary.LittleEndian.PutUint32(big[4*i:], math.Float32bits(float32(i-8)*1e5))
	}
	f.Add(uint16(0x0bff), false, int8(0), uint8(8), big)
	f.Add(uint16(0x03c5), true, int8(-40), uint8(16), []byte{0xff, 0x7f, 0, 0x80})
	f.Add(uint16(0x07ff), true, int8(30), uint8(2), []byte{0xff, 0x7f, 0x01, 0x00, 0x00, 0x80})
	f.Fuzz(func(t *testing.T, shape uint16, scaled bool, exp int8, ratio uint8, raw []byte) {
		l, n := fuzzLayout(shape)
		src := fuzzValues(raw, n*l.Values(), scaled, exp)
		for _, name := range Names() {
			s, _ := Lookup(name)
			var opts Options
			if s.Learned {
				opts.Ratio = 1 + float64(ratio)/8
			}
			c, err := s.New(l, src, n, opts)
			if err != nil {
				if !errors.Is(err, ErrRange) && !errors.Is(err, ErrBadLayout) {
					t.Fatalf("%s: New: unexpected error class: %v", name, err)
				}
				continue
			}
			p, err := c.Encode(nil, src, n)
			if err != nil {
				if !errors.Is(err, ErrRange) {
					t.Fatalf("%s: Encode: unexpected error class: %v", name, err)
				}
				var re *RangeError
				if !errors.As(err, &re) || re.Index < 0 || re.Index >= len(src) || math.Float32bits(src[re.Index]) != math.Float32bits(re.Value) {
					t.Fatalf("%s: Encode: %v does not point at the value", name, err)
				}
				continue
			}
			got := make([]float32, len(src))
			if err := c.Decode(got, p, n); err != nil {
				t.Fatalf("%s: what Encode wrote does not decode: %v", name, err)
			}
			for i, v := range got {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: value %d decodes to %g (input %g)", name, i, v, src[i])
				}
			}
		}
	})
}
