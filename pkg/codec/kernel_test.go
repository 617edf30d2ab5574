package codec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ntc-project/ntc/internal/cpufeat"
)

// TestAxpyKernels checks the vector kernels against the portable loop: the
// exact kernel bit for bit, the fused one within rounding.
func TestAxpyKernels(t *testing.T) {
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	for _, lv := range cpufeat.Levels() {
		cpufeat.SetLevel(lv)
		t.Run(lv.String(), testAxpyKernels)
	}
}

func testAxpyKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, na := range []int{1, 2, 3, 7, 64, 192} {
		for _, n := range []int{1, 7, 8, 9, 33, 64, 65, 192, 200} {
			a := make([]float32, na)
			m := make([]float32, na*n)
			for i := range a {
				a[i] = float32(r.NormFloat64())
			}
			for i := range m {
				m[i] = float32(r.NormFloat64())
			}
			want := make([]float32, n)
			for i := range want {
				want[i] = float32(r.NormFloat64())
			}
			got := append([]float32(nil), want...)
			fast := append([]float32(nil), want...)
			axpyRowsGo(want, a, m, n)
			axpyRows(got, a, m, n)
			axpyRowsFast(fast, a, m, n)
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("na=%d n=%d: exact kernel [%d] = %g, want %g", na, n, j, got[j], want[j])
				}
				if math.Abs(float64(fast[j]-want[j])) > 1e-4*float64(na) {
					t.Fatalf("na=%d n=%d: fused kernel [%d] = %g, want %g", na, n, j, fast[j], want[j])
				}
			}
		}
	}
}

func TestAxpy4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, na := range []int{1, 5, 96, 192} {
		for _, w := range []int{16, 40, 64, 192, 200} {
			ostride, astride := w+3, na+2
			a := make([]float32, 4*astride)
			m := make([]float32, na*w)
			for i := range a {
				a[i] = float32(r.NormFloat64())
			}
			for i := range m {
				m[i] = float32(r.NormFloat64())
			}
			out := make([]float32, 4*ostride)
			for i := range out {
				out[i] = float32(r.NormFloat64())
			}
			want := append([]float32(nil), out...)
			for tk := range 4 {
				axpyRowsGo(want[tk*ostride:tk*ostride+w], a[tk*astride:tk*astride+na], m, w)
			}
			if !axpy4ExactAsm(out, ostride, w, a, astride, na, m, w) {
				t.Skip("no AVX-512")
			}
			for i := range out {
				if out[i] != want[i] {
					t.Fatalf("na=%d w=%d: exact [%d] = %g, want %g", na, w, i, out[i], want[i])
				}
			}
		}
	}
}

func BenchmarkAxpy(b *testing.B) {
	for _, k := range []int{96, 192} {
		const n = 192
		a := make([]float32, k)
		m := make([]float32, k*n)
		out := make([]float32, n)
		for i := range m {
			m[i] = float32(i%7) * 0.1
		}
		for i := range a {
			a[i] = 0.5
		}
		for _, fast := range []bool{false, true} {
			name := "exact"
			if fast {
				name = "fused"
			}
			b.Run(fmt.Sprintf("%s/K%d", name, k), func(b *testing.B) {
				b.SetBytes(2 * n) // float16 bytes of one token
				for range b.N {
					if fast {
						axpyRowsFast(out, a, m, n)
					} else {
						axpyRows(out, a, m, n)
					}
				}
				b.ReportMetric(float64(2*k*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestScaleInt8 checks int8's dequantization at every vector level against
// the Go loop, bit for bit: every byte value, lengths around the kernel's
// 16 values, and scales from subnormal to large.
func TestScaleInt8(t *testing.T) {
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	src := make([]byte, 512+37)
	for i := range src {
		src[i] = byte(i * 7)
	}
	for _, lv := range cpufeat.Levels() {
		cpufeat.SetLevel(lv)
		for _, n := range []int{0, 1, 15, 16, 17, 192, 256, 512 + 37} {
			for _, scale := range []float32{1, 1.0 / 127, 3.3e-3, 6e-8, 65504, -0.5} {
				got := make([]float32, n)
				scaleInt8(got, src, scale)
				for i := range got {
					want := float32(int8(src[i])) * scale
					if math.Float32bits(got[i]) != math.Float32bits(want) {
						t.Fatalf("%v: n %d scale %g: value %d is %g, want %g", lv, n, scale, i, got[i], want)
					}
				}
			}
		}
	}
}

// TestMulVec checks the decoder's product with the class step multipliers
// at every vector level against one rounded product per value, bit for
// bit, at lengths around the kernel's 16 values.
func TestMulVec(t *testing.T) {
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	r := rand.New(rand.NewPCG(4, 4))
	for _, lv := range cpufeat.Levels() {
		cpufeat.SetLevel(lv)
		for _, n := range []int{0, 1, 15, 16, 17, 31, 33, 192, 3072 + 5} {
			x, m := make([]float32, n), make([]float32, n+3)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 3)
			}
			for i := range m {
				m[i] = float32(math.Exp2(float64(r.IntN(65)-32) / 8))
			}
			got := append([]float32(nil), x...)
			mulVec(got, m)
			for i := range got {
				if want := x[i] * m[i]; math.Float32bits(got[i]) != math.Float32bits(want) {
					t.Fatalf("%v: n %d: value %d is %g, want %g", lv, n, i, got[i], want)
				}
			}
		}
	}
}
