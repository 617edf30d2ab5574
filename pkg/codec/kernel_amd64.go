//go:build !purego

package codec

import "github.com/ntc-project/ntc/internal/cpufeat"

// The vector kernels need the AVX2 level (AVX2 and FMA) or the AVX-512 one;
// below it (or with NTC_CPU=purego) the portable loops run. They read the
// level at call time, so that tests can switch it.
func hasAVX2() bool { return cpufeat.X86.HasAVX2 }
func hasFMA() bool  { return cpufeat.X86.HasFMA }
func has512() bool  { return cpufeat.X86.HasAVX512F }

//go:noescape
func axpy4Exact512(out *float32, ostride int, a *float32, astride int, na int, m *float32, stride, cols int)

// axpy4ExactAsm does axpyRows for the four tokens out[t*ostride:][:w] with
// coefficients a[t*astride:][:na], t = 0..3, when the machine has AVX-512:
// the AVX-512 kernel over the first multiple of 16 columns, axpyRows over
// the rest. It reports whether it did.
func axpy4ExactAsm(out []float32, ostride int, w int, a []float32, astride, na int, m []float32, stride int) bool {
	if !has512() || w < 16 || na == 0 {
		return false
	}
	_ = out[3*ostride+w-1]
	_ = a[3*astride+na-1]
	_ = m[(na-1)*stride+w-1]
	c16 := w &^ 15
	axpy4Exact512(&out[0], ostride, &a[0], astride, na, &m[0], stride, c16)
	if c16 < w {
		for t := range 4 {
			axpyRows(out[t*ostride+c16:t*ostride+w], a[t*astride:t*astride+na], m[c16:], stride)
		}
	}
	return true
}

//go:noescape
func axpyFMA512(out, a *float32, na int, m *float32, stride, cols int)

//go:noescape
func axpyAVX2(out, a *float32, na int, m *float32, stride, cols int)

//go:noescape
func axpyFMA(out, a *float32, na int, m *float32, stride, cols int)

func axpyRowsAsm(out, a, m []float32, stride int) bool {
	w := len(out)
	if !hasAVX2() || w < 8 {
		return false
	}
	cols := w &^ 7
	axpyAVX2(&out[0], &a[0], len(a), &m[0], stride, cols)
	if cols < w {
		axpyRowsGo(out[cols:], a, m[cols:], stride)
	}
	return true
}

func axpyRowsFastAsm(out, a, m []float32, stride int) bool {
	w := len(out)
	if !hasFMA() || w < 8 {
		return axpyRowsAsm(out, a, m, stride)
	}
	if has512() && w >= 16 {
		c16 := w &^ 15
		axpyFMA512(&out[0], &a[0], len(a), &m[0], stride, c16)
		if c16 < w && !axpyRowsFastAsm(out[c16:], a, m[c16:], stride) {
			axpyRowsGo(out[c16:], a, m[c16:], stride)
		}
		return true
	}
	cols := w &^ 7
	axpyFMA(&out[0], &a[0], len(a), &m[0], stride, cols)
	if cols < w {
		axpyRowsGo(out[cols:], a, m[cols:], stride)
	}
	return true
}

//go:noescape
func gemm6x16(a *float32, lda, groups int, b *float32, kc int, c *float32, ldc int, s *float32, lds int)

//go:noescape
func gemm6x64(a *float32, lda, groups int, b *float32, bstride, kc int, c *float32, ldc int, s *float32, lds int)

// gemmLevel returns the product kernels the active vector level runs.
func gemmLevel() int {
	switch {
	case has512():
		return gemmAVX512
	case hasFMA():
		return gemmAVX2
	}
	return gemmGo
}

// gemmKernel runs the kernel of level lv over groups groups of rows and w
// columns (gemmWide with AVX-512, else gemmPanel) from the panel at b,
// panels bstride floats apart; mulAdd has checked the bounds.
func gemmKernel(lv, w int, a []float32, lda, groups int, b []float32, bstride, kc int, c []float32, ldc int, s []float32, lds int) {
	switch {
	case w == gemmWide:
		gemm6x64(&a[0], lda, groups, &b[0], bstride, kc, &c[0], ldc, &s[0], lds)
	case lv >= gemmAVX2:
		gemm6x16(&a[0], lda, groups, &b[0], kc, &c[0], ldc, &s[0], lds)
	default:
		gemmGoKernel(a, lda, groups, b, kc, c, ldc, s, lds)
	}
}

// fmaPeak256 and fmaPeak512 run n iterations of 12 independent FMAs on
// YMM or ZMM registers: the benchmarks' ceiling of the FMA ports.
//
//go:noescape
func fmaPeak256(n int)

//go:noescape
func fmaPeak512(n int)

//go:noescape
func scaleInt8AVX2(dst *float32, src *byte, n int, scale float32)

// scaleInt8Asm does scaleInt8 for the first multiple of 16 values with
// AVX2 when the machine has it and returns how many it did.
func scaleInt8Asm(dst []float32, src []byte, scale float32) int {
	n := len(dst) &^ 15
	if !hasAVX2() || n == 0 {
		return 0
	}
	_ = src[n-1]
	scaleInt8AVX2(&dst[0], &src[0], n, scale)
	return n
}

//go:noescape
func mulVecAVX2(dst, m *float32, n int)

// mulVecAsm does mulVec for the first multiple of 16 values with AVX2
// when the machine has it and returns how many it did.
func mulVecAsm(dst, m []float32) int {
	n := len(dst) &^ 15
	if !hasAVX2() || n == 0 {
		return 0
	}
	_ = m[n-1]
	mulVecAVX2(&dst[0], &m[0], n)
	return n
}
