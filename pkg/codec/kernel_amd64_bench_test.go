//go:build !purego

package codec

import (
	"fmt"
	"testing"

	"github.com/ntc-project/ntc/internal/cpufeat"
)

// BenchmarkCeiling measures the ceilings the product kernels are held
// against on one core: the FMA ports' peak with YMM and ZMM registers, and
// memory bandwidth (copy of 4 MiB, cache-resident in L2/L3, and of 256
// MiB, from memory; SetBytes counts the bytes read and written).
func BenchmarkCeiling(b *testing.B) {
	const iters = 1 << 16
	for _, k := range []struct {
		name  string
		has   bool
		peak  func(int)
		lanes int
	}{
		{"fma-avx2", cpufeat.X86.HasFMA, fmaPeak256, 8},
		{"fma-avx512", cpufeat.X86.HasAVX512F, fmaPeak512, 16},
	} {
		b.Run(k.name, func(b *testing.B) {
			if !k.has {
				b.Skip("not at this vector level")
			}
			ct := startCPU()
			for range b.N {
				k.peak(iters)
			}
			reportFlops(b, ct, float64(iters*12*k.lanes*2))
		})
	}
	for _, mb := range []int{4, 256} {
		b.Run(fmt.Sprintf("copy-%dMiB", mb), func(b *testing.B) {
			src := make([]byte, mb<<20)
			dst := make([]byte, mb<<20)
			for i := range src {
				src[i] = byte(i)
			}
			copy(dst, src)
			b.SetBytes(int64(2 * len(src)))
			ct := startCPU()
			for range b.N {
				copy(dst, src)
			}
			if cpu := ct.seconds(); cpu > 0 {
				b.ReportMetric(float64(2*len(src))*float64(b.N)/cpu/1e9, "cpu-GB/s")
			}
		})
	}
}
