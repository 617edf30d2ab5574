//go:build !purego

#include "textflag.h"

// Constants of the lane decoders (ans.go).
DATA ansC1<>+0(SB)/8, $0x0000000100000001
DATA ansC1<>+8(SB)/8, $0x0000000100000001
DATA ansC1<>+16(SB)/8, $0x0000000100000001
DATA ansC1<>+24(SB)/8, $0x0000000100000001
GLOBL ansC1<>(SB), RODATA|NOPTR, $32

DATA ansC3<>+0(SB)/8, $0x0000000300000003
DATA ansC3<>+8(SB)/8, $0x0000000300000003
DATA ansC3<>+16(SB)/8, $0x0000000300000003
DATA ansC3<>+24(SB)/8, $0x0000000300000003
GLOBL ansC3<>(SB), RODATA|NOPTR, $32

DATA ansC31<>+0(SB)/8, $0x0000001f0000001f
DATA ansC31<>+8(SB)/8, $0x0000001f0000001f
DATA ansC31<>+16(SB)/8, $0x0000001f0000001f
DATA ansC31<>+24(SB)/8, $0x0000001f0000001f
GLOBL ansC31<>(SB), RODATA|NOPTR, $32

DATA ansC127<>+0(SB)/8, $0x0000007f0000007f
DATA ansC127<>+8(SB)/8, $0x0000007f0000007f
DATA ansC127<>+16(SB)/8, $0x0000007f0000007f
DATA ansC127<>+24(SB)/8, $0x0000007f0000007f
GLOBL ansC127<>(SB), RODATA|NOPTR, $32

DATA ansC4095<>+0(SB)/8, $0x00000fff00000fff
DATA ansC4095<>+8(SB)/8, $0x00000fff00000fff
DATA ansC4095<>+16(SB)/8, $0x00000fff00000fff
DATA ansC4095<>+24(SB)/8, $0x00000fff00000fff
GLOBL ansC4095<>(SB), RODATA|NOPTR, $32

DATA ansC65535<>+0(SB)/8, $0x0000ffff0000ffff
DATA ansC65535<>+8(SB)/8, $0x0000ffff0000ffff
DATA ansC65535<>+16(SB)/8, $0x0000ffff0000ffff
DATA ansC65535<>+24(SB)/8, $0x0000ffff0000ffff
GLOBL ansC65535<>(SB), RODATA|NOPTR, $32

// ~32: clears a tab field's trellis flag.
DATA ansCNot32<>+0(SB)/8, $0xffffffdfffffffdf
DATA ansCNot32<>+8(SB)/8, $0xffffffdfffffffdf
DATA ansCNot32<>+16(SB)/8, $0xffffffdfffffffdf
DATA ansCNot32<>+24(SB)/8, $0xffffffdfffffffdf
GLOBL ansCNot32<>(SB), RODATA|NOPTR, $32

// ansTrans (0x7d28) in every lane.
DATA ansCTrans<>+0(SB)/8, $0x00007d2800007d28
DATA ansCTrans<>+8(SB)/8, $0x00007d2800007d28
DATA ansCTrans<>+16(SB)/8, $0x00007d2800007d28
DATA ansCTrans<>+24(SB)/8, $0x00007d2800007d28
GLOBL ansCTrans<>(SB), RODATA|NOPTR, $32

// Byte 0 of each dword of a 128-bit half to the half's low 4 bytes.
DATA ansCShuf<>+0(SB)/8, $0x808080800c080400
DATA ansCShuf<>+8(SB)/8, $0x8080808080808080
DATA ansCShuf<>+16(SB)/8, $0x808080800c080400
DATA ansCShuf<>+24(SB)/8, $0x8080808080808080
GLOBL ansCShuf<>(SB), RODATA|NOPTR, $32

// ANS_STEP runs eight lanes, states X and trellis states ST, over a group
// of eight symbols, as lanesGo does them one at a time: symbol j of the
// group (its tab field at EOFF(DX)) in lane j, its s | qz<<5 to TOFF(DI),
// and the lanes' words read in lane order at (R8)(R9*1), R9 advancing
// past them. It uses Y2-Y13, AX and BX; SI holds the tables and R11 the
// permutations of ansPermute. The chains of two calls with other X and ST
// are independent but for R9, which a core resolves early (the popcount
// of the renormalization mask), so that their gathers and multiplies
// overlap.
//
// The table: tab &^ 32 + qz<<5, qz = st>>1 for a trellis entry; then the
// alias part when lo > div-1; x = freq*(x>>12) + rank; the trellis, ns =
// ansTrans >> (4st + 2(s&1)) & 3 where dq; s | qz<<5, one byte per lane;
// renormalization: the lanes below 2^16 take the next words in order.
#define ANS_STEP(X, ST, EOFF, TOFF) \
	ANS_INDEX(X, ST, EOFF); \
	ANS_GATHER_HW; \
	ANS_UPDATE(X, ST, TOFF)

// ANS_STEP_EMU is ANS_STEP with the table reads as scalar loads
// (ANS_GATHER_EMU), for machines whose gather instruction is slow.
#define ANS_STEP_EMU(X, ST, EOFF, TOFF) \
	ANS_INDEX(X, ST, EOFF); \
	ANS_GATHER_EMU; \
	ANS_UPDATE(X, ST, TOFF)

// ANS_INDEX leaves in Y6 the table index of each lane's symbol, in Y7
// the rank of its state (x & 4095 & 127), in Y3 the trellis flags and in
// Y4 the lanes' qz.
#define ANS_INDEX(X, ST, EOFF) \
	VPMOVZXWD  EOFF(DX), Y2; \
	VPSRLD     $5, Y2, Y3; \
	VPAND      ansC1<>(SB), Y3, Y3; \
	VPSRLD     $1, ST, Y4; \
	VPAND      Y3, Y4, Y4; \
	VPSLLD     $5, Y4, Y5; \
	VPAND      ansCNot32<>(SB), Y2, Y6; \
	VPOR       Y5, Y6, Y6; \
	VPAND      ansC4095<>(SB), X, Y7; \
	VPSRLD     $7, Y7, Y8; \
	VPADDD     Y8, Y6, Y6; \
	VPAND      ansC127<>(SB), Y7, Y7

// ANS_GATHER_HW reads the two table words of each lane's index Y6 into
// Y10 and Y11 with VPGATHERDD.
#define ANS_GATHER_HW \
	VPCMPEQD   Y9, Y9, Y9; \
	VPGATHERDD Y9, (SI)(Y6*4), Y10; \
	VPCMPEQD   Y9, Y9, Y9; \
	VPGATHERDD Y9, 16384(SI)(Y6*4), Y11

// IDX4 moves the four dword lanes of IDX (an X register) to R0-R3.
#define IDX4(IDX, R0, R1, R2, R3) \
	VMOVD   IDX, R0; \
	VPEXTRD $1, IDX, R1; \
	VPEXTRD $2, IDX, R2; \
	VPEXTRD $3, IDX, R3

// LD4 loads the dwords at OFF(BASE) indexed by R0-R3 into the lanes of
// DST (an X register): four lanes of a gather as scalar loads.
#define LD4(BASE, OFF, R0, R1, R2, R3, DST) \
	VMOVD   OFF(BASE)(R0*4), DST; \
	VPINSRD $1, OFF(BASE)(R1*4), DST, DST; \
	VPINSRD $2, OFF(BASE)(R2*4), DST, DST; \
	VPINSRD $3, OFF(BASE)(R3*4), DST, DST

// ANS_GATHER_EMU does what ANS_GATHER_HW does with sixteen scalar loads
// inserted into the vectors, four lanes at a time. It uses AX, BX, R13,
// R14, Y9, Y12 and Y13.
#define ANS_GATHER_EMU \
	IDX4(X6, AX, BX, R13, R14); \
	VEXTRACTI128 $1, Y6, X9; \
	LD4(SI, 0, AX, BX, R13, R14, X10); \
	LD4(SI, 16384, AX, BX, R13, R14, X11); \
	IDX4(X9, AX, BX, R13, R14); \
	LD4(SI, 0, AX, BX, R13, R14, X12); \
	LD4(SI, 16384, AX, BX, R13, R14, X13); \
	VINSERTI128  $1, X12, Y10, Y10; \
	VINSERTI128  $1, X13, Y11, Y11

// ANS_UPDATE finishes ANS_STEP once Y10 and Y11 hold the table words.
#define ANS_UPDATE(X, ST, TOFF) \
	VPSRLD     $12, Y10, Y12; \
	VPAND      ansC127<>(SB), Y12, Y12; \
	VPCMPGTD   Y12, Y7, Y12; \
	VPBLENDVB  Y12, Y11, Y10, Y13; \
	VPSRLD     $12, Y11, Y8; \
	VPAND      Y12, Y8, Y8; \
	VPADDD     Y7, Y8, Y8; \
	VPAND      ansC4095<>(SB), Y8, Y8; \
	VPAND      ansC4095<>(SB), Y13, Y9; \
	VPSRLD     $12, X, X; \
	VPMULLD    Y9, X, X; \
	VPADDD     Y8, X, X; \
	VPSRLD     $24, Y13, Y13; \
	VPAND      ansC31<>(SB), Y13, Y13; \
	VPAND      ansC1<>(SB), Y13, Y8; \
	VPADDD     Y8, Y8, Y8; \
	VPSLLD     $2, ST, Y9; \
	VPADDD     Y9, Y8, Y8; \
	VMOVDQU    ansCTrans<>(SB), Y9; \
	VPSRLVD    Y8, Y9, Y9; \
	VPAND      ansC3<>(SB), Y9, Y9; \
	VPXOR      Y8, Y8, Y8; \
	VPSUBD     Y3, Y8, Y8; \
	VPBLENDVB  Y8, Y9, ST, ST; \
	VPSLLD     $5, Y4, Y4; \
	VPOR       Y4, Y13, Y13; \
	VPSHUFB    ansCShuf<>(SB), Y13, Y13; \
	VEXTRACTI128 $1, Y13, X8; \
	VPUNPCKLDQ X8, X13, X13; \
	MOVQ       X13, TOFF(DI); \
	VPMINUD    ansC65535<>(SB), X, Y8; \
	VPCMPEQD   Y8, X, Y8; \
	VMOVMSKPS  Y8, AX; \
	VPMOVZXWD  (R8)(R9*1), Y9; \
	MOVQ       AX, BX; \
	SHLQ       $5, BX; \
	VMOVDQU    (R11)(BX*1), Y10; \
	VPERMD     Y9, Y10, Y9; \
	VPSLLD     $16, X, Y10; \
	VPOR       Y9, Y10, Y10; \
	VPBLENDVB  Y8, Y10, X, X; \
	POPCNTL    AX, AX; \
	LEAQ       (R9)(AX*2), R9

// ANS_ARGS loads the arguments both lane kernels share.
#define ANS_ARGS \
	MOVQ tabs+16(FP), SI; \
	MOVQ etab+24(FP), DX; \
	MOVQ tq+32(FP), DI; \
	MOVQ groups+40(FP), CX; \
	MOVQ words+48(FP), R8; \
	MOVQ wpos+56(FP), R9; \
	MOVQ wend+64(FP), R10; \
	MOVQ lut+72(FP), R11; \
	XORQ R12, R12

// ANS_STORE stores X and ST, lanes 0-7, leaving AX at x and BX at st.
#define ANS_STORE(X, ST) \
	MOVQ    x+0(FP), AX; \
	MOVQ    st+8(FP), BX; \
	VMOVDQU X, (AX); \
	VMOVDQU ST, (BX)

// func ansLanes8(x *[8]uint32, st *[8]uint32, tabs *ansDecTables, etab *uint16, tq *uint8, groups int, words *byte, wpos, wend int, lut *[256][8]uint32, emu bool) (int, int)
//
// The eight lanes over groups of eight symbols (ANS_STEP, or ANS_STEP_EMU
// with emu). It stops
// before a group when wpos > wend and returns wpos and the groups done.
TEXT ·ansLanes8(SB), NOSPLIT, $0-104
	MOVQ    x+0(FP), AX
	MOVQ    st+8(FP), BX
	VMOVDQU (AX), Y0 // the lanes' states
	VMOVDQU (BX), Y1 // their trellis states
	ANS_ARGS

loop8:
	CMPQ R12, CX
	JGE  done8
	CMPQ R9, R10
	JGT  done8
	CMPB emu+80(FP), $0
	JNE  emu8
	ANS_STEP(Y0, Y1, 0, 0)
	JMP  next8

emu8:
	ANS_STEP_EMU(Y0, Y1, 0, 0)

next8:
	ADDQ $16, DX
	ADDQ $8, DI
	INCQ R12
	JMP  loop8

done8:
	ANS_STORE(Y0, Y1)
	VZEROUPPER
	MOVQ R9, ret+88(FP)
	MOVQ R12, ret1+96(FP)
	RET

// func ansLanes16(x *[16]uint32, st *[16]uint32, tabs *ansDecTables, etab *uint16, tq *uint8, groups int, words *byte, wpos, wend int, lut *[256][8]uint32, emu bool) (int, int)
//
// The sixteen lanes over groups of sixteen symbols: lanes 0-7 in Y0/Y1
// take symbols 0-7 of a group, lanes 8-15 in Y14/Y15 symbols 8-15, each
// half an ANS_STEP (ANS_STEP_EMU with emu), the words read in lane order (those of lanes 0-7
// first). The two halves' chains are independent, so a core runs them
// side by side. It stops before a group when wpos > wend (a group reads
// at most 32 bytes of words) and returns wpos and the groups done.
TEXT ·ansLanes16(SB), NOSPLIT, $0-104
	MOVQ    x+0(FP), AX
	MOVQ    st+8(FP), BX
	VMOVDQU (AX), Y0    // states of lanes 0-7
	VMOVDQU (BX), Y1    // their trellis states
	VMOVDQU 32(AX), Y14 // states of lanes 8-15
	VMOVDQU 32(BX), Y15 // their trellis states
	ANS_ARGS

loop16:
	CMPQ R12, CX
	JGE  done16
	CMPQ R9, R10
	JGT  done16
	CMPB emu+80(FP), $0
	JNE  emu16
	ANS_STEP(Y0, Y1, 0, 0)
	ANS_STEP(Y14, Y15, 16, 8)
	JMP  next16

emu16:
	ANS_STEP_EMU(Y0, Y1, 0, 0)
	ANS_STEP_EMU(Y14, Y15, 16, 8)

next16:
	ADDQ $32, DX
	ADDQ $16, DI
	INCQ R12
	JMP  loop16

done16:
	ANS_STORE(Y0, Y1)
	VMOVDQU Y14, 32(AX)
	VMOVDQU Y15, 32(BX)
	VZEROUPPER
	MOVQ R9, ret+88(FP)
	MOVQ R12, ret1+96(FP)
	RET

DATA ansC15<>+0(SB)/8, $0x0000000f0000000f
DATA ansC15<>+8(SB)/8, $0x0000000f0000000f
DATA ansC15<>+16(SB)/8, $0x0000000f0000000f
DATA ansC15<>+24(SB)/8, $0x0000000f0000000f
GLOBL ansC15<>(SB), RODATA|NOPTR, $32

DATA ansC16<>+0(SB)/8, $0x0000001000000010
DATA ansC16<>+8(SB)/8, $0x0000001000000010
DATA ansC16<>+16(SB)/8, $0x0000001000000010
DATA ansC16<>+24(SB)/8, $0x0000001000000010
GLOBL ansC16<>(SB), RODATA|NOPTR, $32

DATA ansC511<>+0(SB)/8, $0x000001ff000001ff
DATA ansC511<>+8(SB)/8, $0x000001ff000001ff
DATA ansC511<>+16(SB)/8, $0x000001ff000001ff
DATA ansC511<>+24(SB)/8, $0x000001ff000001ff
GLOBL ansC511<>(SB), RODATA|NOPTR, $32

DATA ansCIota<>+0(SB)/8, $0x0000000100000000
DATA ansCIota<>+8(SB)/8, $0x0000000300000002
DATA ansCIota<>+16(SB)/8, $0x0000000500000004
DATA ansCIota<>+24(SB)/8, $0x0000000700000006
GLOBL ansCIota<>(SB), RODATA|NOPTR, $32

// func ansRaw8(tq *uint8, rec *uint16, off *uint32, groups int, recon *[ansReconSize]float32, coef *float32, step float32, emu bool) int
//
// Dequantizes groups of eight trellis symbols without raw bits (no plain
// entry, no escape) whose coefficients are consecutive, as rawBlock does:
// (2m-qz + recon[rec+qz*4+min(m,3)]) * step with the symbol's sign, stored
// at coef[off0:off0+8]. It stops at the first group that is not such and
// returns the groups done. With emu it reads recon with scalar loads
// instead of VPGATHERDD.
TEXT ·ansRaw8(SB), NOSPLIT, $0-64
	MOVQ         tq+0(FP), SI
	MOVQ         rec+8(FP), DX
	MOVQ         off+16(FP), BX
	MOVQ         groups+24(FP), CX
	MOVQ         recon+32(FP), R8
	MOVQ         coef+40(FP), DI
	VBROADCASTSS step+48(FP), Y15
	VMOVDQU      ansCIota<>(SB), Y14
	XORQ         R9, R9

rloop:
	CMPQ R9, CX
	JGE  rdone

	// Consecutive coefficients of trellis entries: off = off0 + 0..7
	// (a plain entry has its top bit set).
	VMOVDQU      (BX), Y0
	VMOVMSKPS    Y0, AX
	TESTL        AX, AX
	JNE          rdone
	VPBROADCASTD X0, Y2
	VPADDD       Y14, Y2, Y2
	VPCMPEQD     Y0, Y2, Y2
	VMOVMSKPS    Y2, AX
	CMPL         AX, $0xff
	JNE          rdone

	// No escape.
	VPMOVZXBD (SI), Y1
	VPAND     ansC31<>(SB), Y1, Y3 // s
	VPCMPEQD  ansC16<>(SB), Y3, Y4
	VMOVMSKPS Y4, AX
	TESTL     AX, AX
	JNE       rdone

	VPSRLD    $5, Y1, Y5          // qz
	VPAND     ansC15<>(SB), Y3, Y6 // m
	VPAND     ansC16<>(SB), Y3, Y7
	VPSLLD    $27, Y7, Y7 // the sign bit
	VPADDD    Y6, Y6, Y8
	VPSUBD    Y5, Y8, Y8 // 2m-qz
	VCVTDQ2PS Y8, Y8

	VPMINUD    ansC3<>(SB), Y6, Y9
	VPSLLD     $2, Y5, Y10
	VPADDD     Y10, Y9, Y9
	VPMOVZXWD  (DX), Y10
	VPADDD     Y10, Y9, Y9
	VPAND      ansC511<>(SB), Y9, Y9
	CMPB       emu+52(FP), $0
	JNE        remu
	VPCMPEQD   Y11, Y11, Y11
	VPGATHERDD Y11, (R8)(Y9*4), Y12
	JMP        rgot

remu:
	IDX4(X9, R10, R11, R12, R13)
	VEXTRACTI128 $1, Y9, X10
	LD4(R8, 0, R10, R11, R12, R13, X12)
	IDX4(X10, R10, R11, R12, R13)
	LD4(R8, 0, R10, R11, R12, R13, X11)
	VINSERTI128  $1, X11, Y12, Y12

rgot:
	VADDPS     Y12, Y8, Y8
	VMULPS     Y15, Y8, Y8
	VPXOR      Y7, Y8, Y8

	VMOVD   X0, AX
	VMOVDQU Y8, (DI)(AX*4)

	ADDQ $8, SI
	ADDQ $16, DX
	ADDQ $32, BX
	INCQ R9
	JMP  rloop

rdone:
	VZEROUPPER
	MOVQ R9, ret+56(FP)
	RET

DATA ansC1023<>+0(SB)/8, $0x000003ff000003ff
DATA ansC1023<>+8(SB)/8, $0x000003ff000003ff
DATA ansC1023<>+16(SB)/8, $0x000003ff000003ff
DATA ansC1023<>+24(SB)/8, $0x000003ff000003ff
GLOBL ansC1023<>(SB), RODATA|NOPTR, $32

// GATHER_PROBE_NEXT steps the probe's indices Y6 (x -> 5x + 0x155 mod
// 1024, independent of the words read) and folds Y10 and Y11 into Y0.
#define GATHER_PROBE_NEXT \
	VPXOR   Y10, Y0, Y0; \
	VPXOR   Y11, Y0, Y0; \
	VPSLLD  $2, Y6, Y7; \
	VPADDD  Y7, Y6, Y6; \
	VPADDD  ansCTrans<>(SB), Y6, Y6; \
	VPAND   ansC1023<>(SB), Y6, Y6

// func gatherProbe(tab *uint32, n int, emu bool) uint32
//
// n rounds of ANS_GATHER_HW (ANS_GATHER_EMU with emu) from tab (at least
// 5120 words), for timing.
TEXT ·gatherProbe(SB), NOSPLIT, $0-28
	MOVQ    tab+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVDQU ansCIota<>(SB), Y6
	VPXOR   Y0, Y0, Y0

gloop:
	TESTQ CX, CX
	JLE   gdone
	CMPB  emu+16(FP), $0
	JNE   gemu
	ANS_GATHER_HW
	JMP   gnext

gemu:
	ANS_GATHER_EMU

gnext:
	GATHER_PROBE_NEXT
	DECQ CX
	JMP  gloop

gdone:
	VMOVD X0, AX
	VZEROUPPER
	MOVL  AX, ret+24(FP)
	RET
