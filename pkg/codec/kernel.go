package codec

import "unsafe"

// axpyRows accumulates out[j] += sum_i a[i] * m[i*stride+j] for j <
// len(out), over the len(a) rows of m, in the order i = 0, 1, ... for every
// j. Products and sums are rounded to float32 one by one (no fused
// multiply-add), so every implementation, vector or not, gives
// bit-identical results: the encoder relies on it for deterministic output.
func axpyRows(out, a, m []float32, stride int) {
	if len(a) == 0 || len(out) == 0 {
		return
	}
	_ = m[(len(a)-1)*stride+len(out)-1]
	if axpyRowsAsm(out, a, m, stride) {
		return
	}
	axpyRowsGo(out, a, m, stride)
}

// axpyRowsFast computes what axpyRows does but may fuse multiply-adds, so
// its results may differ in the last bit between machines. Decoding uses
// it: decoded values need not be bit-identical across CPUs, encoded files
// must be.
func axpyRowsFast(out, a, m []float32, stride int) {
	if len(a) == 0 || len(out) == 0 {
		return
	}
	_ = m[(len(a)-1)*stride+len(out)-1]
	if axpyRowsFastAsm(out, a, m, stride) {
		return
	}
	axpyRowsGo(out, a, m, stride)
}

// axpyRowsGo is the portable kernel.
func axpyRowsGo(out, a, m []float32, stride int) {
	w := len(out)
	for i, ai := range a {
		row := m[i*stride : i*stride+w]
		j := 0
		for ; j+4 <= w; j += 4 {
			r := row[j : j+4 : j+4]
			o := out[j : j+4 : j+4]
			o[0] = float32(o[0] + float32(ai*r[0]))
			o[1] = float32(o[1] + float32(ai*r[1]))
			o[2] = float32(o[2] + float32(ai*r[2]))
			o[3] = float32(o[3] + float32(ai*r[3]))
		}
		for ; j < w; j++ {
			out[j] = float32(out[j] + float32(ai*row[j]))
		}
	}
}

// The inverse transform's product: [rows x K] coefficients times the
// [K x D] basis, plus the mean. The kernels work on groups of gemmRows
// rows and panels of gemmPanel columns of a packed copy of the matrix
// (packedMat), blocked so that a panel's slice of kc rows stays in L1
// while every group of a block of rows goes by, and that block of rows' kc
// columns of A stay in L2 while every panel goes by.
const (
	gemmRows  = 6       // rows per kernel group
	gemmPanel = 16      // columns of a packed panel
	gemmWide  = 64      // columns of the AVX-512 kernel (four panels)
	gemmL2    = 1 << 20 // bytes of A a block of rows may hold
	gemmMaxKC = 1024    // rows of B per pass at most
)

// packedMat is a K x D matrix laid out for the product kernels: the first
// n16 = D rounded down to a multiple of gemmPanel columns in panels of
// gemmPanel columns, each K rows of 64 bytes one after the other, so that
// a kernel's slice of a panel is contiguous; the last D-n16 columns are
// read from the matrix itself.
type packedMat struct {
	k, d, n16 int
	pack      []float32
	m         []float32 // the matrix, K x D, row-major
}

// packMat packs m (k x d, row-major); it keeps a reference to m.
func packMat(m []float32, k, d int) *packedMat {
	p := &packedMat{k: k, d: d, m: m, n16: d / gemmPanel * gemmPanel}
	p.pack = alignedFloats(k * p.n16)
	for j0 := 0; j0 < p.n16; j0 += gemmPanel {
		pan := p.pack[j0*k : (j0+gemmPanel)*k]
		for i := range k {
			copy(pan[i*gemmPanel:(i+1)*gemmPanel], m[i*d+j0:])
		}
	}
	return p
}

// alignedFloats returns n zeroed floats starting on a 64-byte boundary, so
// that the kernels' loads of a panel row do not straddle cache lines.
func alignedFloats(n int) []float32 {
	b := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return b[off : off+n : off+n]
}

// gemmPadRows is how many rows of A mulAdd reads for rows rows: whole
// groups (the rows past rows are read, their values do not matter).
func gemmPadRows(rows int) int { return (rows + gemmRows - 1) / gemmRows * gemmRows }

// mulAdd sets out[r*D+j] = bias[j] + sum_i a[r*lda+i]*M[i*D+j] for r <
// rows, j < D. a must hold gemmPadRows(rows) rows of stride lda >= K; tmp
// holds at least gemmRows*D floats. The vector kernels fuse the
// multiply-adds, in the order i = 0, 1, ..., K-1: the results are those of
// copying bias and then axpyRowsFast with each row of a, bit for bit, at
// every vector level. The portable kernel may or may not fuse them, as the
// compiler decides.
func (p *packedMat) mulAdd(out, a []float32, lda, rows int, bias, tmp []float32) {
	d, k := p.d, p.k
	if rows == 0 || d == 0 {
		return
	}
	if k == 0 {
		for r := range rows {
			copy(out[r*d:r*d+d], bias[:d])
		}
		return
	}
	groups := gemmPadRows(rows) / gemmRows
	whole := rows / gemmRows // groups written straight to out
	// Everything the kernels read or write lies within these.
	_, _ = out[rows*d-1], bias[d-1]
	_, _ = a[(groups*gemmRows-1)*lda+k-1], tmp[gemmRows*d-1]
	lv := gemmLevel()
	kc, mcg := gemmBlocking(k)
	for k0 := 0; k0 < k; k0 += kc {
		kl := min(kc, k-k0)
		for g0 := 0; g0 < groups; g0 += mcg {
			g1 := min(groups, g0+mcg)
			for j0 := 0; j0 < p.n16; {
				w := gemmPanel
				if lv == gemmAVX512 && j0+gemmWide <= p.n16 {
					w = gemmWide
				}
				b := p.pack[j0*k+k0*gemmPanel:]
				if n := min(g1, whole) - g0; n > 0 {
					c := out[g0*gemmRows*d+j0:]
					s, lds := c, d
					if k0 == 0 {
						s, lds = bias[j0:], 0
					}
					gemmKernel(lv, w, a[g0*gemmRows*lda+k0:], lda, n, b, k*gemmPanel, kl, c, d, s, lds)
				}
				if g1 > whole {
					c := tmp[j0:]
					s, lds := c, d
					if k0 == 0 {
						s, lds = bias[j0:], 0
					}
					gemmKernel(lv, w, a[whole*gemmRows*lda+k0:], lda, 1, b, k*gemmPanel, kl, c, d, s, lds)
				}
				j0 += w
			}
		}
	}
	for r := whole * gemmRows; r < rows; r++ {
		t := r - whole*gemmRows
		copy(out[r*d:r*d+p.n16], tmp[t*d:])
	}
	if c0 := p.n16; c0 < d {
		for r := range rows {
			o := out[r*d+c0 : r*d+d]
			copy(o, bias[c0:d])
			axpyRowsFast(o, a[r*lda:r*lda+k], p.m[c0:], d)
		}
	}
}

// gemmBlocking returns the depth kc of a pass over K and the groups of
// rows per block (whose kc columns of A stay in L2 while every panel goes
// by). Measured on a Sapphire Rapids core (2 MB L2, 48 KB L1) at K = D =
// 1024: one pass over K, the panel's rows streaming from L2 and the
// accumulators never leaving the registers, beat passes of 128-256 rows of
// the panel held in L1 by 5-15% at both vector levels, and tied at K = D
// = 192. Very deep products still go in passes of up to gemmMaxKC.
func gemmBlocking(k int) (kc, mcg int) {
	passes := (k + gemmMaxKC - 1) / gemmMaxKC
	kc = (k + passes - 1) / passes
	return kc, max(1, gemmL2/(4*kc*gemmRows))
}

// The kernel levels gemmLevel returns.
const (
	gemmGo = iota
	gemmAVX2
	gemmAVX512
)

// gemmGoKernel is the portable kernel: for the groups rows of 6, c[r][j] =
// s[r][j] + sum_i a[r][i] b[i][j] over one panel (j < gemmPanel, b's rows
// gemmPanel floats apart), i < kc, two rows and four columns at a time.
func gemmGoKernel(a []float32, lda, groups int, b []float32, kc int, c []float32, ldc int, s []float32, lds int) {
	for r := 0; r < groups*gemmRows; r += 2 {
		a0 := a[r*lda:][:kc]
		a1 := a[(r+1)*lda:][:kc]
		for j := 0; j < gemmPanel; j += 4 {
			s0 := s[r*lds+j:][:4]
			s1 := s[(r+1)*lds+j:][:4]
			c00, c01, c02, c03 := s0[0], s0[1], s0[2], s0[3]
			c10, c11, c12, c13 := s1[0], s1[1], s1[2], s1[3]
			for i, x0 := range a0 {
				x1 := a1[i]
				bb := b[i*gemmPanel+j:][:4]
				c00 += x0 * bb[0]
				c01 += x0 * bb[1]
				c02 += x0 * bb[2]
				c03 += x0 * bb[3]
				c10 += x1 * bb[0]
				c11 += x1 * bb[1]
				c12 += x1 * bb[2]
				c13 += x1 * bb[3]
			}
			o0 := c[r*ldc+j:][:4]
			o1 := c[(r+1)*ldc+j:][:4]
			o0[0], o0[1], o0[2], o0[3] = c00, c01, c02, c03
			o1[0], o1[1], o1[2], o1[3] = c10, c11, c12, c13
		}
	}
}

// mulVec sets dst[i] *= m[i] (len(m) >= len(dst)): one rounded product
// each, the same in assembly and Go.
func mulVec(dst, m []float32) {
	m = m[:len(dst)]
	for i := mulVecAsm(dst, m); i < len(dst); i++ {
		dst[i] *= m[i]
	}
}
