package f16

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/cpufeat"
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

// forLevels runs f at every vector level the machine has.
func forLevels(t *testing.T, f func(t *testing.T)) {
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	for _, lv := range cpufeat.Levels() {
		cpufeat.SetLevel(lv)
		t.Run(lv.String(), f)
	}
}

// TestDecodeAll checks the bulk conversion of every float16 bit pattern
// (signalling and quiet NaNs included), at every offset and tail length,
// against ToFloat32 bit for bit.
func TestDecodeAll(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		src := make([]uint16, 1<<16)
		for i := range src {
			src[i] = uint16(i)
		}
		for _, off := range []int{0, 1, 7, 16, 31} {
			dst := make([]float32, len(src)-off)
			Decode(dst, src[off:])
			for i, f := range dst {
				if got, want := math.Float32bits(f), math.Float32bits(ToFloat32(src[off+i])); got != want {
					t.Fatalf("offset %d: half %#04x -> %#08x, want %#08x", off, src[off+i], got, want)
				}
			}
		}
		// The same through the byte form, at an odd address too.
		raw := make([]byte, 2*len(src)+1)
		for _, off := range []int{0, 1} {
			b := raw[off : off+2*len(src)]
			for i, h := range src {
				binary.LittleEndian.PutUint16(b[2*i:], h)
			}
			dst := make([]float32, len(src))
			DecodeLE(dst, b)
			for i, f := range dst {
				if math.Float32bits(f) != math.Float32bits(ToFloat32(src[i])) {
					t.Fatalf("DecodeLE at byte offset %d: half %#04x -> %g", off, src[i], f)
				}
			}
		}
	})
}

// encodePatterns returns float32 bit patterns that exercise every rounding
// case of FromFloat32: every sign, exponent and top-10 mantissa bits with
// low bits below, at, and above the halfway point (and the halfway points
// of the subnormal results, which sit higher), and random ones.
func encodePatterns() []float32 {
	var fs []float32
	low := []uint32{0, 1, 0xfff, 0x1000, 0x1001, 0x1fff, 0x0a5a}
	for hi := uint32(0); hi < 1<<19; hi++ {
		for _, lo := range low {
			fs = append(fs, math.Float32frombits(hi<<13|lo))
		}
	}
	// Subnormal results: halfway points at bit 13..23 of the mantissa.
	for e := uint32(100); e <= 113; e++ {
		for b := 0; b < 23; b++ {
			for _, m := range []uint32{1 << b, 1<<b - 1, 1<<b + 1, 3 << b, 0x7fffff} {
				for _, sign := range []uint32{0, 1 << 31} {
					fs = append(fs, math.Float32frombits(sign|e<<23|m&0x7fffff))
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(9, 10))
	for range 1 << 20 {
		fs = append(fs, math.Float32frombits(r.Uint32()))
	}
	return fs
}

// TestEncodeBulk checks the bulk conversion against FromFloat32 bit for
// bit on encodePatterns, at every offset and tail, and through EncodeLE.
func TestEncodeBulk(t *testing.T) {
	src := encodePatterns()
	forLevels(t, func(t *testing.T) {
		for _, off := range []int{0, 3, 16} {
			dst := make([]uint16, len(src)-off)
			Encode(dst, src[off:])
			for i, h := range dst {
				if want := FromFloat32(src[off+i]); h != want {
					t.Fatalf("offset %d: %#08x -> %#04x, want %#04x", off, math.Float32bits(src[off+i]), h, want)
				}
			}
		}
		raw := make([]byte, 2*len(src)+1)
		for _, off := range []int{0, 1} {
			b := raw[off : off+2*len(src)]
			EncodeLE(b, src)
			for i, f := range src {
				if got, want := binary.LittleEndian.Uint16(b[2*i:]), FromFloat32(f); got != want {
					t.Fatalf("EncodeLE at byte offset %d: %#08x -> %#04x, want %#04x", off, math.Float32bits(f), got, want)
				}
			}
		}
	})
}

// TestEncodeExhaustive compares the bulk conversion with FromFloat32 on all
// 2^32 float32 bit patterns (about a minute on one core); set
// NTC_F16_EXHAUSTIVE=1 to run it.
func TestEncodeExhaustive(t *testing.T) {
	if os.Getenv("NTC_F16_EXHAUSTIVE") == "" {
		t.Skip("set NTC_F16_EXHAUSTIVE=1 to run")
	}
	forLevels(t, func(t *testing.T) {
		const chunk = 1 << 20
		src := make([]float32, chunk)
		dst := make([]uint16, chunk)
		for base := uint64(0); base < 1<<32; base += chunk {
			for i := range src {
				src[i] = math.Float32frombits(uint32(base) + uint32(i))
			}
			Encode(dst, src)
			for i, h := range dst {
				if want := FromFloat32(src[i]); h != want {
					t.Fatalf("%#08x -> %#04x, want %#04x", math.Float32bits(src[i]), h, want)
				}
			}
		}
	})
}

// BenchmarkBulk measures the bulk conversions at every vector level, in
// float32 bytes (4 per value), over 1 Mi values; cpu-MB/s by the thread's
// CPU time.
func BenchmarkBulk(b *testing.B) {
	const n = 1 << 20
	f := make([]float32, n)
	h := make([]uint16, n)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range f {
		f[i] = float32(r.NormFloat64())
	}
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	for _, lv := range cpufeat.Levels() {
		for _, dir := range []string{"encode", "decode"} {
			b.Run(dir+"/"+lv.String(), func(b *testing.B) {
				cpufeat.SetLevel(lv)
				b.SetBytes(4 * n)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 := threadCPU()
				for range b.N {
					if dir == "encode" {
						Encode(h, f)
					} else {
						Decode(f, h)
					}
				}
				if cpu := (threadCPU() - t0).Seconds(); cpu > 0 {
					b.ReportMetric(4*n*float64(b.N)/cpu/1e6, "cpu-MB/s")
				}
			})
		}
	}
}

// threadCPU returns the calling thread's CPU time (RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
