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
func axpy4FMA512(out *float32, ostride int, a *float32, astride int, na int, m *float32, stride, cols int)

// axpy4Asm does axpyRowsFast for the four tokens out[t*ostride:][:w] with
// coefficients a[t*astride:][:na], t = 0..3, when the machine has AVX-512;
// it reports whether it did.
func axpy4Asm(out []float32, ostride int, w int, a []float32, astride, na int, m []float32, stride int) bool {
	return axpy4With(axpy4FMA512, axpyRowsFast, out, ostride, w, a, astride, na, m, stride)
}

//go:noescape
func axpy4Exact512(out *float32, ostride int, a *float32, astride int, na int, m *float32, stride, cols int)

// axpy4ExactAsm is axpy4Asm with the rounding of axpyRows.
func axpy4ExactAsm(out []float32, ostride int, w int, a []float32, astride, na int, m []float32, stride int) bool {
	return axpy4With(axpy4Exact512, axpyRows, out, ostride, w, a, astride, na, m, stride)
}

// axpy4With runs the four-token AVX-512 kernel over the first multiple of
// 16 columns and the matching Go loop over the rest.
func axpy4With(kernel func(out *float32, ostride int, a *float32, astride int, na int, m *float32, stride, cols int),
	tail func(out, a, m []float32, stride int),
	out []float32, ostride int, w int, a []float32, astride, na int, m []float32, stride int) bool {
	if !has512() || w < 16 || na == 0 {
		return false
	}
	_ = out[3*ostride+w-1]
	_ = a[3*astride+na-1]
	_ = m[(na-1)*stride+w-1]
	c16 := w &^ 15
	kernel(&out[0], ostride, &a[0], astride, na, &m[0], stride, c16)
	if c16 < w {
		for t := range 4 {
			tail(out[t*ostride+c16:t*ostride+w], a[t*astride:t*astride+na], m[c16:], stride)
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
