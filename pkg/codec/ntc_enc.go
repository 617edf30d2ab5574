package codec

import (
	"encoding/binary"
	"fmt"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/internal/knobs"
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
		if c.cmul != nil {
			c.divideClassSteps(cs.coef[s*cs.blocks*blockSize*K:][:cs.blocks*blockSize*K])
		}
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

// walkSymbols calls f for every coded symbol of nb blocks of sym (one per
// plan entry and block), in the order the version 6 decoder reads them:
// sample by sample, slice by slice (spp per sample), its blocks in order;
// with the slice's index in the sample (j), the symbol's block (bi, in the
// sample) and the quantizer its lane's trellis state gives it. pb is the
// model's first plain bucket.
func walkSymbols(pl []planEntry, pb int, sym []int32, idx [][]int32, nb, n, spp, lanes int, f func(j, bi int, e *planEntry, q uint32, v int32)) {
	for s := range n {
		for j := range spp {
			var st [ansMaxLanes]uint32
			p := 0
			for bi := j * nb / spp; bi < (j+1)*nb/spp; bi++ {
				q := sym[(s*nb+bi)*len(pl):][:len(pl)]
				for _, i := range idx[bi] {
					l := p % lanes
					v := q[i]
					if ansPlain(int(pl[i].bucket), pb) {
						f(j, bi, &pl[i], 0, v)
					} else {
						f(j, bi, &pl[i], st[l]>>1, v)
						st[l] = ansNext(st[l], ansSym(v, int(pl[i].bucket), pb))
					}
					p++
				}
			}
		}
	}
}

// sliceEncoder holds appendPayload's buffers.
type sliceEncoder struct {
	syms    []ansSymbol
	words   []uint16
	bits    bitWriter
	streams []byte
	lens    []int
}

// encodeSlices appends the coefficient slices of one sample, whose nb
// blocks' symbols are sym (one per plan entry and block): every slice's
// rANS and raw-bit stream lengths (uvarints), then the streams, slice by
// slice. Slice j codes the blocks [j*nb/spp, (j+1)*nb/spp); pb is the
// model's first plain bucket.
func (e *sliceEncoder) encodeSlices(dst []byte, pl []planEntry, pb int, sym []int32, idx [][]int32, nb, spp, lanes int, tabs []*ansEncTable) []byte {
	e.streams = e.streams[:0]
	e.lens = e.lens[:0]
	flush := func() {
		p := len(e.streams)
		e.streams, e.words = encodeANS(e.streams, tabs, e.syms, lanes, e.words)
		e.lens = append(e.lens, len(e.streams)-p)
		raw := e.bits.flush()
		e.streams = append(e.streams, raw...)
		e.lens = append(e.lens, len(raw))
		e.syms = e.syms[:0]
		e.bits = bitWriter{out: raw[:0]}
	}
	last := 0
	walkSymbols(pl, pb, sym, idx, nb, 1, spp, lanes, func(j, _ int, pe *planEntry, q uint32, v int32) {
		for ; last < j; last++ {
			flush()
		}
		b := int(pe.bucket)
		sym := ansSym(v, b, pb)
		e.syms = append(e.syms, ansSymbol{tab: pe.bucket*2 + uint8(q), sym: uint8(sym)})
		m := uint32(abs32i(v))
		switch {
		case ansPlain(b, pb):
			r := uint(pe.shift)
			t := m >> r
			if sym == ansEscPlain {
				writeEscape(&e.bits, t-ansEscPlain)
			}
			if r > 0 {
				e.bits.write(uint64(m&(1<<r-1)), r)
			}
			if t != 0 || r != 0 {
				e.bits.write(uint64(uint32(v)>>31), 1)
			}
		case sym == ansEsc:
			writeEscape(&e.bits, m-ansEsc)
			e.bits.write(uint64(uint32(v)>>31), 1)
		}
	})
	for ; last < spp; last++ {
		flush()
	}
	for _, n := range e.lens {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	return append(dst, e.streams...)
}

// histogram adds the rANS symbols of n samples to h, by bucket and
// quantizer.
func (c *ntcCodec) histogram(h *[ntcBuckets][2][ansSyms]float64, pl []planEntry, sym []int32, idx [][]int32, n int) {
	spp := c.slicesPerSample()
	pb := c.plainFrom()
	walkSymbols(pl, pb, sym, idx, len(c.blocks), n, spp, c.lanesFor(pl, spp), func(_, _ int, e *planEntry, q uint32, v int32) {
		h[e.bucket][q][ansSym(v, int(e.bucket), pb)]++
	})
}

// lanesFor returns the rANS lanes of the slices of a plan: sixteen for
// slices of at least 32768 symbols, eight from 16384, else one (the
// lanes' final states cost 4 bytes each: 28 bytes more than one lane,
// under 1% of a slice of 16384 symbols at 16x, and 32 more for sixteen
// lanes, half that share of a slice twice as long). knobs.ANSLanes, when
// set (tests), overrides the choice.
func (c *ntcCodec) lanesFor(pl []planEntry, spp int) int {
	if knobs.ANSLanes != 0 {
		return knobs.ANSLanes
	}
	if spp == 0 {
		return 1
	}
	switch syms := c.planSymbols(pl) / spp; {
	case syms >= 32768:
		return ansMaxLanes
	case syms >= 16384:
		return ansLanes
	}
	return 1
}

// planSymbols returns the number of symbols a sample codes with a plan.
func (c *ntcCodec) planSymbols(pl []planEntry) int {
	n := 0
	for _, idx := range c.shapeIndex(pl) {
		n += len(idx)
	}
	return n
}

// quantize quantizes the coefficients for a plan and step code with the
// trellis, with the codec's rate weight and rate estimates.
func (c *ntcCodec) quantize(cs *coefSet, pl []planEntry, stepCode int32, cost *ansCost) ([]int32, *dqCentroids) {
	return c.quantizeOn(cs, pl, stepCode, cost, 1)
}

// quantizeOn is quantize with the trellis on workers goroutines (the same
// result for any number).
func (c *ntcCodec) quantizeOn(cs *coefSet, pl []planEntry, stepCode int32, cost *ansCost, workers int) ([]int32, *dqCentroids) {
	spp := c.slicesPerSample()
	return c.dqQuantize(cs, pl, stepCode, float32(c.lambda)/256, cost, spp, c.lanesFor(pl, spp), workers)
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
	sym, _ := c.quantize(cs, pl, stepCode, c.acost)
	return c.appendPayload(dst, src, n, pl, sym, stepCode, c.encTables())
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

// appendPrefix appends the prefix tokens idx (s*Tokens+t, t < Prefix) of
// src as int8 rows of their difference from the model's prefix means
// (the tokens themselves before model version 6).
func (c *ntcCodec) appendPrefix(dst []byte, src []float32, idx []int32) []byte {
	if c.pmean == nil {
		return appendRows(dst, src, c.layout.Dim, idx)
	}
	D, T := c.layout.Dim, int32(c.layout.Tokens)
	d := make([]float32, D)
	for _, t := range idx {
		pm := c.pmean[(t%T)*int32(D):][:D]
		for i, v := range src[int(t)*D:][:D] {
			d[i] = v - pm[i]
		}
		dst = appendRows(dst, d, D, []int32{0})
	}
	return dst
}

// unpackPrefix writes the prefix rows of n samples (appendPrefix's) into
// dst: each row's values plus its token's prefix mean, the product
// rounded first.
func (c *ntcCodec) unpackPrefix(dst []float32, n int, rows []byte) {
	l := c.layout
	idx := c.prefixIndex(n)
	unpackRows(dst, l.Dim, idx, rows)
	if c.pmean == nil {
		return
	}
	for _, t := range idx {
		row := dst[int(t)*l.Dim:][:l.Dim]
		pm := c.pmean[(int(t)%l.Tokens)*l.Dim:][:l.Dim]
		for i := range row {
			row[i] += pm[i]
		}
	}
}

// unpackRows writes the rows appendRows made for idx into dst.
func unpackRows(dst []float32, dim int, idx []int32, rows []byte) {
	for i, t := range idx {
		r := rows[i*(2+dim):][:2+dim]
		int8Format.unpack(dst[int(t)*dim:][:dim], r[2:], f16.ToFloat32(uint16(r[0])|uint16(r[1])<<8))
	}
}

// appendHead6 appends a version 6 payload's head.
func appendHead6(dst []byte, stepCode int32, spp, lanes int) []byte {
	dst = append(dst, ntcPayloadVersion, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(stepCode))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(spp))
	return append(dst, byte(lanes))
}

// appendTokenRows appends sample s's prefix rows (of the prefix tokens
// pidx) and its outliers, the leading indices of outl (s*Tokens+t, in
// order), and returns outl without them.
func (c *ntcCodec) appendTokenRows(dst []byte, src []float32, s int, pidx, outl []int32) ([]byte, []int32) {
	l := c.layout
	dst = c.appendPrefix(dst, src, pidx)
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
	return appendRows(dst, src, l.Dim, mine), outl
}

// appendPayload appends the payload of n samples given their symbols:
// the head, then each sample's part.
func (c *ntcCodec) appendPayload(dst []byte, src []float32, n int, pl []planEntry, sym []int32, stepCode int32, tabs []*ansEncTable) []byte {
	l := c.layout
	spp := c.slicesPerSample()
	lanes := c.lanesFor(pl, spp)
	dst = appendHead6(dst, stepCode, spp, lanes)
	outl := c.outliers(src, n)
	idx := c.shapeIndex(pl)
	nb := len(c.blocks)
	var e sliceEncoder
	pidx := c.prefixIndex(n)
	for s := range n {
		dst, outl = c.appendTokenRows(dst, src, s, pidx[s*l.Prefix:(s+1)*l.Prefix], outl)
		if spp > 0 {
			dst = e.encodeSlices(dst, pl, c.plainFrom(), sym[s*nb*len(pl):(s+1)*nb*len(pl)], idx, nb, spp, lanes, tabs)
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
	if c.mver < 5 {
		// Model version 4 has no trellis tables: it decodes the files
		// written with it, and no encoder writes its payloads any more.
		// A version-5 model encodes (without prefix means), so that a
		// dataset keeps its model when shards are appended.
		return nil, fmt.Errorf("%w: an ntc model of version %d decodes but does not encode; fit a new model (ntc fit)", ErrOption, c.mver)
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
	c.unpackPrefix(recon, n, c.appendPrefix(nil, src, pidx))
	outl := c.outliers(src, n)
	outRows := appendRows(nil, src, l.Dim, outl)
	s := c.scratch()
	defer c.bufs.Put(s)
	meets := func(code int32) bool {
		pl := c.plan(code)
		sym, _ := c.quantize(cs, pl, code, c.acost)
		c.reconstruct(recon, s, cs.n, pl, sym, code)
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
func (c *ntcCodec) reconstruct(dst []float32, s *ntcScratch, n int, pl []planEntry, sym []int32, code int32) {
	l := c.layout
	step := stepOf(code)
	recon := c.recon6
	nb := len(c.blocks)
	per := blockSize * c.k
	idx := c.shapeIndex(pl)
	spp := c.slicesPerSample()
	lanes := c.lanesFor(pl, spp)
	pb := c.plainFrom()
	for smp := range n {
		out := dst[smp*l.Tokens*l.Dim:][:l.Tokens*l.Dim]
		clear(s.coef)
		q := sym[smp*nb*len(pl):][:nb*len(pl)]
		walkSymbols(pl, pb, q, idx, nb, 1, spp, lanes, func(_, bi int, e *planEntry, qz uint32, v int32) {
			if v != 0 {
				s.coef[bi*per+int(e.u)*c.k+int(e.k)] = dequant6(v, qz, recon, e.bucket, step, pb)
			}
		})
		c.synthesize(out, s)
	}
}

// dequant6 returns the reconstruction of signed magnitude v coded with
// quantizer q in bucket b (pb the model's first plain bucket), as the
// version 6 decoder computes it.
func dequant6(v int32, q uint32, recon *[ansReconSize]float32, b uint8, step float32, pb int) float32 {
	m := uint32(abs32i(v))
	lev := 2*m - q
	if ansPlain(int(b), pb) {
		lev = m
	}
	r := float32(float32(int32(lev))+recon[(uint32(b)*8+q<<2+min(m, 3))&(ansReconSize-1)]) * step
	if v < 0 {
		r = -r
	}
	return r
}

// reconTable turns the centroid offsets of payload versions 4 and 5 into
// reconstruction corrections, indexed by bucket and min(|q|, 3).
func reconTable(off *[ntcBuckets][3]int8) (r [ntcBuckets][4]float32) {
	for b := range off {
		for j := range off[b] {
			r[b][j+1] = -float32(off[b][j]) / 256
		}
	}
	return r
}
