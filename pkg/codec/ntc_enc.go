package codec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/metrics"
)

// coefSet holds the DCT coefficients of every grid block of a run of
// samples: per block, blockSize classes of stride components.
type coefSet struct {
	stride int
	blocks int // blocks per sample
	n      int // samples
	coef   []float32
}

func (cs *coefSet) block(s, b int) []float32 {
	i := (s*cs.blocks + b) * blockSize * cs.stride
	return cs.coef[i : i+blockSize*cs.stride]
}

// checkFinite reports the first value of src that is not finite, or
// beyond the float16 range: the model keeps the mean and the int8 rows'
// scales as float16, so larger values would overflow them.
func checkFinite(src []float32) error {
	return checkRange(src, 0, MaxFloat16, "the largest magnitude the learned codec holds (its model is float16)")
}

// transform computes the block coefficients of n samples of src.
func (c *ntcCodec) transform(src []float32, n int) *coefSet {
	l := c.layout
	K, D := c.k, c.dim
	cs := &coefSet{stride: K, blocks: len(c.blocks), n: n}
	cs.coef = make([]float32, n*len(c.blocks)*blockSize*K)
	if K == 0 {
		return cs
	}
	y := make([]float32, blockSize*K)
	tmp := make([]float32, blockSize*K)
	r := make([]float32, blockSide*D)
	var a [blockSide]float32
	dcTmp := make([]float32, blockSize*K)
	fwd := c.forward()
	for s := range n {
		smp := src[s*l.Tokens*D:][:l.Tokens*D]
		for bi := range c.blocks {
			g := &c.blocks[bi]
			bh, bw := int(g.bh), int(g.bw)
			clear(y)
			for py := range bh {
				for px := range bw {
					t := int(g.tok[py*blockSide+px])
					x := smp[t*D : t*D+D]
					rr := r[px*D : px*D+D]
					for d := range rr {
						rr[d] = x[d] - c.mean[d]
					}
				}
				// A row of four tokens shares one pass over the basis.
				if bw == blockSide && axpy4ExactAsm(y[py*blockSide*K:], K, K, r, D, D, fwd, K) {
					continue
				}
				for px := range bw {
					axpyRows(y[(py*blockSide+px)*K:][:K], r[px*D:px*D+D], fwd, K)
				}
			}
			cy, cx := &dctMats[bh], &dctMats[bw]
			clear(tmp)
			for py := range bh {
				for fx := range bw {
					for px := range bw {
						a[px] = cx[fx][px]
					}
					axpyRows(tmp[(py*blockSide+fx)*K:][:K], a[:bw], y[py*blockSide*K:], K)
				}
			}
			coef := cs.block(s, bi)
			for fy := range bh {
				for fx := range bw {
					axpyRows(coef[(fy*blockSide+fx)*K:][:K], cy[fy][:bh], tmp[fx*K:], blockSide*K)
				}
			}
		}
	}
	for s := range n {
		c.forwardDC(cs, s, dcTmp)
	}
	return cs
}

// forwardDC applies the second-level DCT to the DC coefficients of each
// group of blocks of sample s.
func (c *ntcCodec) forwardDC(cs *coefSet, s int, tmp []float32) {
	K := cs.stride
	var a [blockSide]float32
	for gi := range c.groups {
		g := &c.groups[gi]
		gh, gw := int(g.gh), int(g.gw)
		cy, cx := &dctMats[gh], &dctMats[gw]
		// tmp[a][j] = sum_b cx[j][b] dc[a][b]; F[i][j] = sum_a cy[i][a] tmp[a][j].
		clear(tmp)
		for ai := range gh {
			for j := range gw {
				o := tmp[(ai*blockSide+j)*K:][:K]
				for b := range gw {
					axpyRows(o, cx[j][b:b+1], cs.block(s, int(g.blk[ai*blockSide+b])), K)
				}
			}
		}
		for i := range gh {
			for ai := range gh {
				a[ai] = cy[i][ai]
			}
			for j := range gw {
				f := cs.block(s, int(g.blk[i*blockSide+j]))[:K]
				clear(f)
				axpyRows(f, a[:gh], tmp[j*K:], blockSide*K)
			}
		}
	}
}

// quantize maps the coefficients to symbols for a plan and step, and
// returns the symbols (per block, one per plan entry; absent entries 0) and
// the centroid offsets table.
func (c *ntcCodec) quantize(cs *coefSet, pl []planEntry, stepCode int32, round float32) ([]int32, [ntcBuckets][3]int8) {
	inv := 1 / stepOf(stepCode)
	nb := cs.n * cs.blocks
	sym := make([]int32, nb*len(pl))
	idx := c.shapeIndex(pl)
	var sum [ntcBuckets][3]float64
	var cnt [ntcBuckets][3]float64
	for bi := range nb {
		coef := cs.coef[bi*blockSize*cs.stride:][:blockSize*cs.stride]
		q := sym[bi*len(pl):][:len(pl)]
		for _, i := range idx[bi%cs.blocks] {
			e := &pl[i]
			v := coef[int(e.u)*cs.stride+int(e.k)] * inv
			a := abs32(v)
			m := int32(min(a+round, 1<<24))
			if m == 0 {
				continue
			}
			j := min(m, 3) - 1
			sum[e.bucket][j] += float64(a) - float64(m)
			cnt[e.bucket][j]++
			if v < 0 {
				m = -m
			}
			q[i] = m
		}
	}
	var off [ntcBuckets][3]int8
	for b := range sum {
		for j := range sum[b] {
			if cnt[b][j] > 0 {
				// Stored negated: reconstruction is |q| - off/256.
				o := math.Round(-sum[b][j] / cnt[b][j] * 256)
				off[b][j] = int8(max(-128, min(127, o)))
			}
		}
	}
	return sym, off
}

// encodeSlices appends the coefficient slices of one sample, whose nb
// blocks' symbols are sym (one per plan entry and block): every slice's
// rANS and raw-bit stream lengths (uvarints), then the streams, slice by
// slice. Slice j codes the blocks [j*nb/spp, (j+1)*nb/spp).
func encodeSlices(dst []byte, pl []planEntry, sym []int32, idx [][]int32, nb, spp int, tabs *[ntcBuckets]ransTable, e *sliceEncoder) []byte {
	e.streams = e.streams[:0]
	e.lens = e.lens[:0]
	for j := range spp {
		var bw bitWriter
		bw.out = e.bits[:0]
		e.syms = e.syms[:0]
		for bi := j * nb / spp; bi < (j+1)*nb/spp; bi++ {
			q := sym[bi*len(pl):][:len(pl)]
			for _, i := range idx[bi] {
				v := q[i]
				m := uint32(abs32i(v))
				r := uint(pl[i].shift)
				t := m >> r
				s := min(t, ransEsc)
				e.syms = append(e.syms, ransSymbol{bucket: pl[i].bucket, sym: uint8(s)})
				if s == ransEsc {
					writeEscape(&bw, t-ransEsc)
				}
				if r > 0 {
					bw.write(uint64(m&(1<<r-1)), r)
				}
				if m != 0 {
					bw.write(uint64(uint32(v)>>31), 1)
				}
			}
		}
		p := len(e.streams)
		e.streams = encodeRANS(e.streams, tabs, e.syms)
		e.lens = append(e.lens, len(e.streams)-p)
		p = len(e.streams)
		e.bits = bw.flush()
		e.streams = append(e.streams, e.bits...)
		e.lens = append(e.lens, len(e.streams)-p)
	}
	for _, n := range e.lens {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	return append(dst, e.streams...)
}

// sliceEncoder holds encodeSlices' buffers.
type sliceEncoder struct {
	syms    []ransSymbol
	bits    []byte
	streams []byte
	lens    []int
}

// histogram adds the symbols of nb blocks to h.
func histogram(h *[ntcBuckets][ransSyms]float64, pl []planEntry, sym []int32, idx [][]int32, nb int) {
	for bi := range nb {
		q := sym[bi*len(pl):][:len(pl)]
		for _, i := range idx[bi%len(idx)] {
			h[pl[i].bucket][min(abs32i(q[i])>>pl[i].shift, ransEsc)]++
		}
	}
}

func abs32i(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

// prefixIndex returns the indices (s*Tokens+t) of the prefix tokens of n
// samples.
func (c *ntcCodec) prefixIndex(n int) []int32 {
	l := c.layout
	idx := make([]int32, 0, n*l.Prefix)
	for s := range n {
		for t := range l.Prefix {
			idx = append(idx, int32(s*l.Tokens+t))
		}
	}
	return idx
}

// encodeWith appends the payload of n samples at the given step code.
func (c *ntcCodec) encodeWith(dst []byte, src []float32, n int, cs *coefSet, stepCode int32) []byte {
	pl := c.plan(stepCode)
	sym, off := c.quantize(cs, pl, stepCode, float32(c.round)/256)
	return c.appendPayload(dst, src, n, pl, sym, off, stepCode, &c.tabs)
}

// outliers returns the indices (s*Tokens+t) of the grid tokens of n
// samples that are farther from the mean than the model's threshold.
func (c *ntcCodec) outliers(src []float32, n int) []int32 {
	if c.othr <= 0 {
		return nil
	}
	l := c.layout
	var out []int32
	for s := range n {
		for t := l.Prefix; t < l.Tokens; t++ {
			x := src[(s*l.Tokens+t)*l.Dim:][:l.Dim]
			var e float32
			for d, v := range x {
				r := v - c.mean[d]
				e = float32(e + float32(r*r))
			}
			if e > c.othr {
				out = append(out, int32(s*l.Tokens+t))
			}
		}
	}
	return out
}

// fillOutliers returns src with every outlier token replaced by the mean
// of the other tokens of its block (the mean token when there are none),
// so that the block transform codes a smooth stand-in; the decoder writes
// the outliers' own rows over it. src itself is not modified.
func (c *ntcCodec) fillOutliers(src []float32, n int, outl []int32) []float32 {
	if len(outl) == 0 {
		return src
	}
	l := c.layout
	D := l.Dim
	out := append([]float32(nil), src...)
	is := make(map[int32]bool, len(outl))
	for _, t := range outl {
		is[t] = true
	}
	// Blocks by token, within a sample.
	blockOf := make([]int32, l.Tokens)
	for bi := range c.blocks {
		g := &c.blocks[bi]
		for py := range int(g.bh) {
			for px := range int(g.bw) {
				blockOf[g.tok[py*blockSide+px]] = int32(bi)
			}
		}
	}
	sum := make([]float32, D)
	for _, ti := range outl {
		s, t := int(ti)/l.Tokens, int(ti)%l.Tokens
		g := &c.blocks[blockOf[t]]
		clear(sum)
		cnt := 0
		for py := range int(g.bh) {
			for px := range int(g.bw) {
				u := int32(s*l.Tokens) + g.tok[py*blockSide+px]
				if is[u] {
					continue
				}
				for d, v := range src[int(u)*D:][:D] {
					sum[d] += v
				}
				cnt++
			}
		}
		row := out[int(ti)*D:][:D]
		if cnt == 0 {
			copy(row, c.mean)
			continue
		}
		for d := range row {
			row[d] = sum[d] / float32(cnt)
		}
	}
	return out
}

// appendRows appends the tokens idx (s*Tokens+t) of src as int8 rows with
// a float16 absmax scale each.
func appendRows(dst []byte, src []float32, dim int, idx []int32) []byte {
	for _, t := range idx {
		row := src[int(t)*dim:][:dim]
		var amax float32
		for _, v := range row {
			amax = max(amax, abs32(v))
		}
		h := scaleFor(amax, 127)
		dst = append(dst, byte(h), byte(h>>8))
		var inv float32
		if sc := f16.ToFloat32(h); sc > 0 {
			inv = 1 / sc
		}
		p := len(dst)
		dst = append(dst, make([]byte, dim)...)
		int8Format.pack(dst[p:], row, inv)
	}
	return dst
}

// unpackRows writes the rows appendRows made for idx into dst.
func unpackRows(dst []float32, dim int, idx []int32, rows []byte) {
	for i, t := range idx {
		r := rows[i*(2+dim):][:2+dim]
		int8Format.unpack(dst[int(t)*dim:][:dim], r[2:], f16.ToFloat32(uint16(r[0])|uint16(r[1])<<8))
	}
}

// appendPayload appends the payload of n samples given their symbols:
// the head, then each sample's part.
func (c *ntcCodec) appendPayload(dst []byte, src []float32, n int, pl []planEntry, sym []int32, off [ntcBuckets][3]int8, stepCode int32, tabs *[ntcBuckets]ransTable) []byte {
	l := c.layout
	spp := c.slicesPerSample()
	dst = append(dst, ntcPayloadVersion, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(stepCode))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(spp))
	for b := range off {
		for j := range off[b] {
			dst = append(dst, byte(off[b][j]))
		}
	}
	outl := c.outliers(src, n)
	idx := c.shapeIndex(pl)
	nb := len(c.blocks)
	var e sliceEncoder
	pidx := c.prefixIndex(n)
	for s := range n {
		dst = appendRows(dst, src, l.Dim, pidx[s*l.Prefix:(s+1)*l.Prefix])
		var mine []int32
		for len(outl) > 0 && int(outl[0])/l.Tokens == s {
			mine, outl = append(mine, outl[0]), outl[1:]
		}
		dst = binary.AppendUvarint(dst, uint64(len(mine)))
		t := l.Prefix - 1
		for _, o := range mine {
			u := int(o) % l.Tokens
			dst = binary.AppendUvarint(dst, uint64(u-t-1))
			t = u
		}
		dst = appendRows(dst, src, l.Dim, mine)
		if spp > 0 {
			dst = encodeSlices(dst, pl, sym[s*nb*len(pl):(s+1)*nb*len(pl)], idx, nb, spp, tabs, &e)
		}
	}
	return dst
}

// Encode implements Codec.
func (c *ntcCodec) Encode(dst []byte, src []float32, n int) ([]byte, error) {
	nv, err := c.layout.CheckCount(n)
	if err != nil {
		return nil, err
	}
	if len(src) != nv {
		return nil, fmt.Errorf("%w: %d values for %d samples, want %d", ErrBadLayout, len(src), n, nv)
	}
	if err := checkFinite(src); err != nil {
		return nil, err
	}
	cs := c.transform(c.fillOutliers(src, n, c.outliers(src, n)), n)
	stepCode := c.stepCode
	if c.qkind != qualityNone {
		stepCode = c.searchQuality(src, n, cs)
	}
	return c.encodeWith(dst, src, n, cs, stepCode), nil
}

// searchQuality returns the largest step code (the lowest rate) whose
// reconstruction of the n samples meets the codec's quality target, within
// six octaves of the fitted step; the finest step searched when none does.
func (c *ntcCodec) searchQuality(src []float32, n int, cs *coefSet) int32 {
	recon := make([]float32, len(src))
	l := c.layout
	// Prefix and outlier tokens do not depend on the step.
	pidx := c.prefixIndex(n)
	unpackRows(recon, l.Dim, pidx, appendRows(nil, src, l.Dim, pidx))
	outl := c.outliers(src, n)
	outRows := appendRows(nil, src, l.Dim, outl)
	s := c.scratch()
	defer c.bufs.Put(s)
	meets := func(code int32) bool {
		pl := c.plan(code)
		sym, off := c.quantize(cs, pl, code, float32(c.round)/256)
		c.reconstruct(recon, s, cs.n, pl, sym, off, code)
		unpackRows(recon, l.Dim, outl, outRows)
		q := metrics.Compare(src, recon, l.Dim)
		if c.qkind == qualitySNR {
			return q.SNR >= float64(c.qtarget)
		}
		return q.CosMean >= float64(c.qtarget)
	}
	const unit = 8 // search in 1/32 octave
	lo, hi := c.stepCode-6*256, c.stepCode+6*256
	lo, hi = max(lo, -stepCodeMax), min(hi, stepCodeMax)
	if !meets(lo) {
		return lo
	}
	if meets(hi) {
		return hi
	}
	for hi-lo > unit {
		mid := lo + (hi-lo)/2/unit*unit
		if mid == lo {
			mid = lo + unit
		}
		if meets(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// reconstruct writes the grid tokens that the symbols decode to, as Decode
// does, into dst (prefix tokens untouched).
func (c *ntcCodec) reconstruct(dst []float32, s *ntcScratch, n int, pl []planEntry, sym []int32, off [ntcBuckets][3]int8, code int32) {
	l := c.layout
	step := stepOf(code)
	recon := reconTable(&off)
	nb := len(c.blocks)
	per := blockSize * c.k
	for smp := range n {
		out := dst[smp*l.Tokens*l.Dim:][:l.Tokens*l.Dim]
		clear(s.coef)
		for bi := range c.blocks {
			q := sym[(smp*nb+bi)*len(pl):][:len(pl)]
			coef := s.coef[bi*per : (bi+1)*per]
			for i := range pl {
				if v := q[i]; v != 0 {
					e := &pl[i]
					coef[int(e.u)*c.k+int(e.k)] = dequant(v, &recon[e.bucket], step)
				}
			}
		}
		c.synthesize(out, s)
	}
}

// reconTable turns the stored centroid offsets into reconstruction
// corrections, indexed by bucket and min(|q|, 3).
func reconTable(off *[ntcBuckets][3]int8) (r [ntcBuckets][4]float32) {
	for b := range off {
		for j := range off[b] {
			r[b][j+1] = -float32(off[b][j]) / 256
		}
	}
	return r
}

// dequant returns the reconstruction of symbol v.
func dequant(v int32, recon *[4]float32, step float32) float32 {
	m := v
	if m < 0 {
		m = -m
	}
	r := float32(float32(m)+recon[min(m, 3)]) * step
	if v < 0 {
		r = -r
	}
	return r
}
