package codec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/cpufeat"
)

// fma32 returns x*y+z rounded once to float32, as a fused multiply-add
// does. x*y is exact in float64; the float64 sum is rounded to odd (its
// last bit set when inexact), which makes the rounding to float32 that
// follows correct.
func fma32(x, y, z float32) float32 {
	p := float64(x) * float64(y)
	s := p + float64(z)
	bb := float64(s - p)
	e := float64(p-float64(s-bb)) + float64(float64(z)-bb)
	if b := math.Float64bits(s); e != 0 && b&1 == 0 {
		if (e > 0) == (s > 0) {
			b++
		} else {
			b--
		}
		s = math.Float64frombits(b)
	}
	return float32(s)
}

// refMulAdd is what mulAdd computes at the vector levels: bias, then fused
// multiply-adds in order, except that the last D%8 columns past the packed
// ones round the product and the sum apart (axpyRowsFast's Go tail).
func refMulAdd(out, a []float32, lda, rows int, m []float32, k, d int, bias []float32) {
	c0 := d / gemmPanel * gemmPanel
	fusedTo := c0 + (d-c0)&^7
	for r := range rows {
		for j := range d {
			acc := bias[j]
			for i := range k {
				if j < fusedTo {
					acc = fma32(a[r*lda+i], m[i*d+j], acc)
				} else {
					acc = float32(acc + float32(a[r*lda+i]*m[i*d+j]))
				}
			}
			out[r*d+j] = acc
		}
	}
}

func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		x, y, z := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		if got, want := fma32(x, y, z), float32(math.FMA(float64(x), float64(y), float64(z))); math.Abs(float64(got-want)) > 1e-6 {
			t.Fatalf("fma32(%g, %g, %g) = %g, want about %g", x, y, z, got, want)
		}
	}
	// 1 + 2^-24 is a float32 tie; the tiny product decides it upwards.
	if got := fma32(1.0/(1<<24), 1+1.0/(1<<20), 1); got != 1+1.0/(1<<23) {
		t.Fatalf("tie broken wrongly: %g", got)
	}
}

// TestMulAdd checks the product kernels at every vector level against the
// fused reference bit for bit, and the portable kernel within rounding.
func TestMulAdd(t *testing.T) {
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	rng := rand.New(rand.NewPCG(7, 8))
	for _, lv := range cpufeat.Levels() {
		cpufeat.SetLevel(lv)
		for _, d := range []int{8, 16, 17, 48, 64, 72, 80, 96, 130, 192, 200} {
			for _, k := range []int{1, 3, 17, 64, 192, 300, 400, gemmMaxKC + 77} {
				for _, rows := range []int{1, 5, 6, 7, 13, 44} {
					if k > gemmMaxKC && (d > 64 || rows > 7) {
						continue // two passes over K: a few cases suffice
					}
					lda := k + 3
					a := make([]float32, gemmPadRows(rows)*lda)
					m := make([]float32, k*d)
					bias := make([]float32, d)
					for _, v := range [][]float32{a, m, bias} {
						for i := range v {
							v[i] = float32(rng.NormFloat64())
						}
					}
					p := packMat(m, k, d)
					got := make([]float32, rows*d+1)
					got[rows*d] = 42 // must stay untouched
					tmp := make([]float32, gemmRows*d)
					p.mulAdd(got[:rows*d], a, lda, rows, bias, tmp)
					want := make([]float32, rows*d)
					refMulAdd(want, a, lda, rows, m, k, d, bias)
					if got[rows*d] != 42 {
						t.Fatalf("%v d=%d k=%d rows=%d: wrote past the output", lv, d, k, rows)
					}
					for i := range want {
						if lv == cpufeat.Generic {
							if math.Abs(float64(got[i]-want[i])) > 1e-5*float64(k) {
								t.Fatalf("%v d=%d k=%d rows=%d: [%d] = %g, want %g", lv, d, k, rows, i, got[i], want[i])
							}
						} else if got[i] != want[i] {
							t.Fatalf("%v d=%d k=%d rows=%d: [%d] = %g, want %g", lv, d, k, rows, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// BenchmarkMulAdd measures the product at block10's size (one sample of
// 196 grid tokens, K = D = 192) and a CLIP-L-like one (576 tokens, K = D
// = 1024, synthetic values), in float16 bytes of output, at every vector
// level.
func BenchmarkMulAdd(b *testing.B) {
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	for _, sz := range []struct{ rows, k, d int }{{196, 192, 192}, {576, 1024, 1024}, {576, 256, 1024}} {
		a := make([]float32, gemmPadRows(sz.rows)*sz.k)
		m := make([]float32, sz.k*sz.d)
		for i := range a {
			a[i] = float32(i%13) * 0.01
		}
		for i := range m {
			m[i] = float32(i%7) * 0.1
		}
		p := packMat(m, sz.k, sz.d)
		bias := make([]float32, sz.d)
		out := make([]float32, sz.rows*sz.d)
		tmp := make([]float32, gemmRows*sz.d)
		for _, lv := range cpufeat.Levels() {
			b.Run(fmt.Sprintf("%v/T%d-K%d-D%d", lv, sz.rows, sz.k, sz.d), func(b *testing.B) {
				cpufeat.SetLevel(lv)
				b.SetBytes(int64(2 * sz.rows * sz.d))
				ct := startCPU()
				for range b.N {
					p.mulAdd(out, a, sz.k, sz.rows, bias, tmp)
				}
				reportFlops(b, ct, float64(2*sz.rows*sz.k*sz.d))
			})
		}
	}
}

// cpuTimer measures a benchmark's loop in the thread's CPU time
// (threadCPU), which on a shared machine is far less noisy than wall time.
type cpuTimer time.Duration

// startCPU locks the goroutine to its thread and starts the clock.
func startCPU() cpuTimer {
	runtime.LockOSThread()
	return cpuTimer(threadCPU())
}

// seconds stops the clock and returns the thread CPU seconds spent.
func (c cpuTimer) seconds() float64 {
	d := threadCPU() - time.Duration(c)
	runtime.UnlockOSThread()
	return d.Seconds()
}

// reportFlops reports GFLOP/s by wall time and by the thread's CPU time
// for flops per iteration.
func reportFlops(b *testing.B, ct cpuTimer, flops float64) {
	cpu := ct.seconds()
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu/1e9, "cpu-GFLOP/s")
	}
}

// BenchmarkDecodeParts splits the learned codec's decoding of 55 real
// block10 samples at 8x into its whole (Decode) and the inverse transforms
// (synthesize: the DC and block inverse DCTs and the product with the
// basis), at every vector level, in float16 bytes of output. cpu-MB/s is
// by the thread's CPU time.
func BenchmarkDecodeParts(b *testing.B) {
	const n = 55
	data, src := benchData(b, n)
	c, err := newNTC(deitLayout, data, n, Options{Ratio: 8})
	if err != nil {
		b.Fatal(err)
	}
	p, err := c.Encode(nil, data, n)
	if err != nil {
		b.Fatal(err)
	}
	nc := c.(*ntcCodec)
	ch, err := nc.parse(p, n)
	if err != nil {
		b.Fatal(err)
	}
	s := nc.scratch()
	per := len(s.coef)
	coefs := make([]float32, n*per)
	err = nc.symbols(&ch, s, func(smp, bi int) []float32 {
		return coefs[smp*per+bi*blockSize*nc.k:][:blockSize*nc.k]
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float32, len(data))
	v := deitLayout.Values()
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Active()))
	for _, lv := range cpufeat.Levels() {
		cpufeat.SetLevel(lv)
		run := func(name string, f func()) {
			b.Run(fmt.Sprintf("%s/%v/%s", name, lv, src), func(b *testing.B) {
				b.SetBytes(int64(2 * len(data)))
				ct := startCPU()
				for range b.N {
					f()
				}
				if cpu := ct.seconds(); cpu > 0 {
					b.ReportMetric(float64(2*len(data))*float64(b.N)/cpu/1e6, "cpu-MB/s")
				}
			})
		}
		run("decode", func() {
			if err := c.Decode(out, p, n); err != nil {
				b.Fatal(err)
			}
		})
		run("synthesize", func() {
			for smp := range n {
				copy(s.coef, coefs[smp*per:(smp+1)*per])
				nc.synthesize(out[smp*v:(smp+1)*v], s)
			}
		})
	}
}
