package f16

import (
	"math"
	"testing"
)

// TestRoundTripAll checks that every finite float16 survives a trip through
// float32, and that rounding picks the nearest float16.
func TestRoundTripAll(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := ToFloat32(h)
		if math.IsNaN(float64(f)) {
			if g := FromFloat32(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := FromFloat32(f); g != h {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, g)
		}
	}
}

func TestRounding(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65520, 0x7c00}, // halfway to the next step rounds to even: infinity
		{1e6, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{1 + 1.0/2048, 0x3c00},           // tie, rounds to even
		{1 + 3.0/2048, 0x3c02},           // tie, rounds up to even
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{2.9802322387695312e-08, 0x0000}, // half of it: tie to even (zero)
		{4.4703483581542969e-08, 0x0001}, // 0.75 of it
		{6.097555160522461e-05, 0x03ff},  // largest subnormal
		{6.103515625e-05, 0x0400},        // smallest normal
	}
	for _, c := range cases {
		if got := FromFloat32(c.in); got != c.want {
			t.Errorf("FromFloat32(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

// TestNearest checks FromFloat32 against a brute-force nearest search on
// values between the float16 steps.
func TestNearest(t *testing.T) {
	for i := 0; i < 0x7bff; i += 7 {
		lo, hi := ToFloat32(uint16(i)), ToFloat32(uint16(i+1))
		for _, w := range []float32{0.25, 0.49, 0.51, 0.75} {
			f := lo + (hi-lo)*w
			want := uint16(i)
			if w > 0.5 {
				want = uint16(i + 1)
			}
			if got := FromFloat32(f); got != want {
				t.Fatalf("FromFloat32(%g) = %#04x, want %#04x", f, got, want)
			}
		}
	}
}

func TestBF16(t *testing.T) {
	for _, f := range []float32{0, 1, -3.5, 1e30, -1e-30} {
		h := BF16FromFloat32(f)
		g := BF16ToFloat32(h)
		if math.Abs(float64(g-f)) > math.Abs(float64(f))/128 {
			t.Errorf("bf16(%g) = %g", f, g)
		}
	}
	if h := BF16FromFloat32(1 + 1.0/256); h != 0x3f80 { // tie to even
		t.Errorf("tie: %#04x", h)
	}
	if !math.IsNaN(float64(BF16ToFloat32(BF16FromFloat32(float32(math.NaN()))))) {
		t.Error("NaN lost")
	}
}

func BenchmarkDecode(b *testing.B) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(len(src) * 2))
	for b.Loop() {
		Decode(dst, src)
	}
}

func BenchmarkEncode(b *testing.B) {
	src := make([]float32, 1<<16)
	for i := range src {
		src[i] = float32(i-1<<15) * 0.001
	}
	dst := make([]uint16, len(src))
	b.SetBytes(int64(len(src) * 2))
	for b.Loop() {
		Encode(dst, src)
	}
}
