//go:build !amd64 || purego

package codec

func axpyRowsAsm(out, a, m []float32, n int) bool     { return false }
func axpyRowsFastAsm(out, a, m []float32, n int) bool { return false }

func axpy4ExactAsm(out []float32, ostride int, w int, a []float32, astride, na int, m []float32, stride int) bool {
	return false
}

func gemmLevel() int { return gemmGo }

func gemmKernel(lv, w int, a []float32, lda, groups int, b []float32, bstride, kc int, c []float32, ldc int, s []float32, lds int) {
	gemmGoKernel(a, lda, groups, b, kc, c, ldc, s, lds)
}

// scaleInt8Asm does nothing without assembly.
func scaleInt8Asm(dst []float32, src []byte, scale float32) int { return 0 }

// mulVecAsm does nothing without assembly.
func mulVecAsm(dst, m []float32) int { return 0 }
