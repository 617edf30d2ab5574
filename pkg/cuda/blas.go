//go:build cuda

package cuda

// cuBLAS through a small cgo shim: gorgonia.org/cu/blas has no half
// precision. The shim calls only functions that both the CUDA 11.8 headers
// it compiles against and CUDA 13's libcublas.so.13 have (cublasCreate_v2,
// cublasDestroy_v2, cublasSetStream_v2, cublasSetMathMode, cublasGemmEx,
// cublasGemmStridedBatchedEx); scripts/cuda-deps.sh makes the link stub.

/*
#cgo LDFLAGS: -lcublas
#include <stdint.h>
#include <cuda.h>
#include <cublas_v2.h>

// ntc_gemm_f16 computes, for each batch item, the row-major product
// C[m,n] = A[m,k] B[k,n] with A and B half, float accumulation and C half
// or float. cuBLAS is column-major, and a row-major matrix read
// column-major is its transpose: the row-major product is the column-major
// C^T[n,m] = B^T[n,k] A^T[k,m], so B goes first and m and n swap. Device
// addresses come as integers.
static cublasStatus_t ntc_gemm_f16(cublasHandle_t h, int m, int n, int k,
		uintptr_t a, int lda, long long sa,
		uintptr_t b, int ldb, long long sb,
		uintptr_t c, int ldc, long long sc,
		int batch, int outF32) {
	const float one = 1.0f, zero = 0.0f;
	cudaDataType ct = outF32 ? CUDA_R_32F : CUDA_R_16F;
	if (batch == 1) {
		return cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one,
			(const void *)b, CUDA_R_16F, ldb,
			(const void *)a, CUDA_R_16F, lda,
			&zero, (void *)c, ct, ldc,
			CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
	}
	return cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one,
		(const void *)b, CUDA_R_16F, ldb, sb,
		(const void *)a, CUDA_R_16F, lda, sa,
		&zero, (void *)c, ct, ldc, sc,
		batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// blasError is a cublasStatus_t other than CUBLAS_STATUS_SUCCESS.
type blasError int

var blasStatusNames = map[blasError]string{
	C.CUBLAS_STATUS_NOT_INITIALIZED:  "CUBLAS_STATUS_NOT_INITIALIZED",
	C.CUBLAS_STATUS_ALLOC_FAILED:     "CUBLAS_STATUS_ALLOC_FAILED",
	C.CUBLAS_STATUS_INVALID_VALUE:    "CUBLAS_STATUS_INVALID_VALUE",
	C.CUBLAS_STATUS_ARCH_MISMATCH:    "CUBLAS_STATUS_ARCH_MISMATCH",
	C.CUBLAS_STATUS_MAPPING_ERROR:    "CUBLAS_STATUS_MAPPING_ERROR",
	C.CUBLAS_STATUS_EXECUTION_FAILED: "CUBLAS_STATUS_EXECUTION_FAILED",
	C.CUBLAS_STATUS_INTERNAL_ERROR:   "CUBLAS_STATUS_INTERNAL_ERROR",
	C.CUBLAS_STATUS_NOT_SUPPORTED:    "CUBLAS_STATUS_NOT_SUPPORTED",
	C.CUBLAS_STATUS_LICENSE_ERROR:    "CUBLAS_STATUS_LICENSE_ERROR",
}

func (e blasError) Error() string {
	if name, ok := blasStatusNames[e]; ok {
		return fmt.Sprintf("%s (%d)", name, int(e))
	}
	return fmt.Sprintf("cuBLAS status %d", int(e))
}

// blasCheck is check for a cuBLAS status.
func blasCheck(st C.cublasStatus_t, format string, args ...any) error {
	if st == C.CUBLAS_STATUS_SUCCESS {
		return nil
	}
	return check(blasError(st), format, args...)
}

// BLAS is a cuBLAS handle of one device. Its calls run on the device's
// thread, one at a time.
type BLAS struct {
	d      *Device
	h      C.cublasHandle_t
	closed atomic.Bool
}

// NewBLAS creates a cuBLAS handle (cublasCreate) in the device's context,
// with the default math mode, which lets cuBLAS use tensor cores.
func (d *Device) NewBLAS() (*BLAS, error) {
	b := &BLAS{d: d}
	err := d.Do(func() error {
		var h C.cublasHandle_t
		if err := blasCheck(C.cublasCreate_v2(&h), "cublasCreate"); err != nil {
			return err
		}
		if err := blasCheck(C.cublasSetMathMode(h, C.CUBLAS_DEFAULT_MATH), "cublasSetMathMode"); err != nil {
			C.cublasDestroy_v2(h)
			return err
		}
		b.h = h
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Close destroys the handle (cublasDestroy). Closing twice is a no-op.
func (b *BLAS) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	return b.d.Do(func() error { return blasCheck(C.cublasDestroy_v2(b.h), "cublasDestroy") })
}

// GemmF16 computes, for i in [0, batch), the row-major product
// C_i[m,n] = A_i[m,k] B_i[k,n], enqueued on s (nil: the default stream).
// A and B are float16, the products are summed in float32
// (CUBLAS_COMPUTE_32F), and C is float32 when outF32 is set, else float16.
// lda, ldb and ldc are the row-major leading dimensions in elements (the
// distance between the starts of two rows: at least k, n and n). strideA,
// strideB and strideC are the distances in elements between consecutive
// batch items; 0 shares one A or B between all items. C items must not
// overlap. With batch 1 the strides are unused (cublasGemmEx); otherwise
// the call is cublasGemmStridedBatchedEx. m, n or batch 0 is a no-op.
func (b *BLAS) GemmF16(s *Stream, m, n, k int, a DevPtr, lda int, strideA int64, bm DevPtr, ldb int, strideB int64, c DevPtr, ldc int, strideC int64, batch int, outF32 bool) error {
	if b.closed.Load() {
		return errors.New("cuda: GemmF16 on a closed BLAS handle")
	}
	if err := gemmShape(m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch); err != nil {
		return err
	}
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	h, err := b.d.stream(s)
	if err != nil {
		return err
	}
	out := C.int(0)
	if outF32 {
		out = 1
	}
	return b.d.Do(func() error {
		// cudaStream_t and CUstream are the same C type. Stream.C returns
		// gorgonia's unexported cgo type for it: only its address crosses.
		cs := C.cudaStream_t(unsafe.Pointer(h.C()))
		if err := blasCheck(C.cublasSetStream_v2(b.h, cs), "cublasSetStream"); err != nil {
			return err
		}
		st := C.ntc_gemm_f16(b.h, C.int(m), C.int(n), C.int(k),
			C.uintptr_t(a), C.int(lda), C.longlong(strideA),
			C.uintptr_t(bm), C.int(ldb), C.longlong(strideB),
			C.uintptr_t(c), C.int(ldc), C.longlong(strideC),
			C.int(batch), out)
		return blasCheck(st, "cublasGemm(Strided)BatchedEx(m %d, n %d, k %d, batch %d, outF32 %v)", m, n, k, batch, outF32)
	})
}

// gemmShape checks GemmF16's sizes.
func gemmShape(m, n, k, lda int, strideA int64, ldb int, strideB int64, ldc int, strideC int64, batch int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cuda: GemmF16 m %d n %d k %d lda %d ldb %d ldc %d batch %d: %s",
			append([]any{m, n, k, lda, ldb, ldc, batch}, fmt.Sprintf(format, args...))...)
	}
	for _, v := range []int{m, n, k, lda, ldb, ldc, batch} {
		if v < 0 || v > math.MaxInt32 {
			return bad("sizes must be in [0, 2^31)")
		}
	}
	switch {
	case k == 0:
		return bad("k must be positive")
	case lda < k || ldb < max(n, 1) || ldc < max(n, 1):
		return bad("leading dimensions must be at least k, n and n")
	case strideA < 0 || strideB < 0 || strideC < 0:
		return bad("strides must not be negative")
	case batch > 1 && m > 0 && n > 0 && strideC < int64(m-1)*int64(ldc)+int64(n):
		return bad("strideC %d: the outputs would overlap", strideC)
	}
	return nil
}
