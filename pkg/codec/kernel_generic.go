//go:build !amd64 || purego

package codec

func axpyRowsAsm(out, a, m []float32, n int) bool     { return false }
func axpyRowsFastAsm(out, a, m []float32, n int) bool { return false }

func axpy4Asm(out []float32, ostride int, w int, a []float32, astride, na int, m []float32, stride int) bool {
	return false
}

func axpy4ExactAsm(out []float32, ostride int, w int, a []float32, astride, na int, m []float32, stride int) bool {
	return false
}
