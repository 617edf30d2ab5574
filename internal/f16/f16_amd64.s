//go:build !purego

#include "textflag.h"

// Bulk float16 conversions with F16C (VCVTPS2PH / VCVTPH2PS) and, where
// the AVX-512 level runs, their ZMM forms. Rounding is to nearest even
// (immediate 0), which with Go's default MXCSR matches FromFloat32 bit for
// bit, NaNs included. n is a multiple of 16.

// func encodeF16C(dst *uint16, src *float32, n int)
TEXT ·encodeF16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   encdone
encloop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VCVTPS2PH $0, Y0, 0(DI)
	VCVTPS2PH $0, Y1, 16(DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  encloop
encdone:
	VZEROUPPER
	RET

// func encode512(dst *uint16, src *float32, n int)
TEXT ·encode512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   e512done
e512loop:
	VMOVUPS 0(SI), Z0
	VCVTPS2PH $0, Z0, 0(DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  e512loop
e512done:
	VZEROUPPER
	RET

// DECODE_SETUP loads the arguments (groups of 16 in CX, the count done in
// AX) and the constants of NAN_CHECK: 0x7fff and 0x7c00 in every word of
// Y15 and Y14.
#define DECODE_SETUP \
	MOVQ dst+0(FP), DI \
	MOVQ src+8(FP), SI \
	MOVQ n+16(FP), CX \
	SHRQ $4, CX \
	XORQ AX, AX \
	MOVL $0x7fff7fff, DX \
	MOVQ DX, X15 \
	VPBROADCASTD X15, Y15 \
	MOVL $0x7c007c00, DX \
	MOVQ DX, X14 \
	VPBROADCASTD X14, Y14

// NAN_CHECK clears ZF when a word of the 16 halves at SI is a NaN
// (|h| > 0x7c00).
#define NAN_CHECK \
	VMOVDQU (SI), Y2 \
	VPAND Y15, Y2, Y2 \
	VPCMPGTW Y14, Y2, Y2 \
	VPTEST Y2, Y2

// func decodeF16C(dst *float32, src *uint16, n int) int
// Converts groups of 16 halves and stops before the first group that holds
// a NaN (exponent all ones, mantissa not zero): VCVTPH2PS quiets
// signalling NaNs, the table does not. Returns how many it converted.
TEXT ·decodeF16C(SB), NOSPLIT, $0-32
	DECODE_SETUP
	TESTQ CX, CX
	JZ   decdone
decloop:
	NAN_CHECK
	JNZ  decdone
	VCVTPH2PS 0(SI), Y0
	VCVTPH2PS 16(SI), Y1
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	ADDQ $16, AX
	DECQ CX
	JNZ  decloop
decdone:
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET

// func decode512(dst *float32, src *uint16, n int) int
// decodeF16C with one ZMM conversion per group.
TEXT ·decode512(SB), NOSPLIT, $0-32
	DECODE_SETUP
	TESTQ CX, CX
	JZ   d512done
d512loop:
	NAN_CHECK
	JNZ  d512done
	VCVTPH2PS (SI), Z0
	VMOVUPS Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	ADDQ $16, AX
	DECQ CX
	JNZ  d512loop
d512done:
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET
