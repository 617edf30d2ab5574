package codec

import (
	"context"
	"math"
	"math/bits"

	"github.com/ntc-project/ntc/internal/pipeline"
)

// ansCost holds the trellis' rate estimates: the bits of rANS symbol t in
// bucket b with quantizer q.
type ansCost [ntcBuckets][2][ansSyms]float32

// ansCostOf returns the rate estimates of a model's tables.
func ansCostOf(tabs *[ntcBuckets][2]ansTable) *ansCost {
	var c ansCost
	for b := range tabs {
		for q := range tabs[b] {
			for t, f := range tabs[b][q].freq {
				c[b][q][t] = float32(ansBits - math.Log2(float64(f)))
			}
		}
	}
	return &c
}

// egBits returns the length of the Exp-Golomb code of e.
func egBits(e uint32) uint32 { return 2*uint32(31-bits.LeadingZeros32(e+1)) + 1 }

// dqBits returns the bits of magnitude m in bucket b with quantizer q (pb
// the model's first plain bucket): its rANS symbol (of a positive value:
// the tables are symmetric) and its raw bits.
func dqBits(cost *ansCost, b, q int, m uint32, r uint8, pb int) float32 {
	var raw uint32
	var s uint32
	switch {
	case ansPlain(b, pb):
		t := m >> r
		s = min(t, ansEscPlain)
		if s == ansEscPlain {
			raw = egBits(t - ansEscPlain)
		}
		raw += uint32(r)
		if t != 0 || r != 0 {
			raw++
		}
	case m >= ansEsc:
		s = ansEsc
		raw = egBits(m-ansEsc) + 1
	default:
		s = m
	}
	return float32(cost[b][q][s] + float32(raw))
}

// dqScratch holds a trellis search's buffers.
type dqScratch struct {
	a   []float32 // |x| / step of the slice's coefficients, in coding order
	neg []bool
	bk  []uint8
	at  []int32 // where the symbol goes in sym
	qz  []uint8 // the quantizer the trellis chose each symbol with
	// way[p][ns] is the best way into state ns at symbol p: the state
	// before times 3 plus the candidate (zero, m0, m0+1).
	way [][4]uint8
	// lb holds lambda times the bits of the magnitudes below the escape
	// of trellis entries.
	lb [ntcBuckets][2][ansEsc]float32
	// pb is the model's first plain bucket (ansPlainFrom).
	pb int
}

// trellisBits returns lambda times the bits of the magnitudes below the
// escape of trellis entries (dqScratch.lb), pb the first plain bucket.
func trellisBits(lambda float32, cost *ansCost, pb int) (lb [ntcBuckets][2][ansEsc]float32) {
	for b := range pb {
		for q := range 2 {
			for m := range uint32(ansEsc) {
				lb[b][q][m] = float32(lambda * dqBits(cost, b, q, m, 0, pb))
			}
		}
	}
	return lb
}

// reset empties the slice in s.
func (s *dqScratch) reset() {
	s.a, s.neg, s.bk, s.at, s.qz = s.a[:0], s.neg[:0], s.bk[:0], s.at[:0], s.qz[:0]
}

// push appends a coefficient to the slice in s: v, its value in steps,
// coded in bucket b, its symbol going to sym[at].
func (s *dqScratch) push(v float32, b uint8, at int32) {
	s.a = append(s.a, min(abs32(v), 1<<22))
	s.neg = append(s.neg, v < 0)
	s.bk = append(s.bk, b)
	s.at = append(s.at, at)
	s.qz = append(s.qz, 0)
}

// dqQuantize quantizes the coefficients of cs for a plan and step code
// with the trellis: slice by slice and lane by lane as the decoder reads
// them (lanes per slice, spp slices per sample), minimizing squared error
// (in steps squared) plus lambda times the bits that cost estimates. It
// returns the signed magnitudes (per block, one per plan entry; absent
// entries 0) and the chunk's centroid offsets, in 1/128 of a step.
//
// With workers > 1 the slices' trellises run on that many goroutines; the
// centroid statistics are still summed slice by slice in order, so the
// result does not depend on workers.
func (c *ntcCodec) dqQuantize(cs *coefSet, pl []planEntry, stepCode int32, lambda float32, cost *ansCost, spp, lanes, workers int) ([]int32, *dqCentroids) {
	inv := 1 / stepOf(stepCode)
	nb := cs.blocks
	P := len(pl)
	sym := make([]int32, cs.n*nb*P)
	idx := c.shapeIndex(pl)
	var sum, cnt [ntcBuckets][2][3]float64
	pb := c.plainFrom()
	lb := trellisBits(lambda, cost, pb)
	// quantize runs slice k (sample k/spp, its (k%spp)-th slice).
	quantize := func(s *dqScratch, k int) {
		smp, j := k/spp, k%spp
		s.reset()
		for bi := j * nb / spp; bi < (j+1)*nb/spp; bi++ {
			coef := cs.block(smp, bi)
			base := int32((smp*nb + bi) * P)
			for _, i := range idx[bi] {
				e := &pl[i]
				s.push(coef[int(e.u)*cs.stride+int(e.k)]*inv, e.bucket, base+i)
			}
		}
		s.trellis(lanes, lambda, cost, sym)
	}
	// add adds slice's centroid statistics, with the quantizer each
	// symbol was coded with.
	add := func(s *dqScratch) {
		for p, at := range s.at {
			m := uint32(abs32i(sym[at]))
			if m == 0 {
				continue
			}
			q, lev := uint32(0), float64(m)
			if !ansPlain(int(s.bk[p]), pb) {
				q = uint32(s.qz[p])
				lev = float64(2*m - q)
			}
			k := min(m, 3) - 1
			sum[s.bk[p]][q][k] += float64(s.a[p]) - lev
			cnt[s.bk[p]][q][k]++
		}
	}
	nslices := cs.n * spp
	if workers = min(workers, nslices); workers <= 1 {
		s := &dqScratch{lb: lb, pb: pb}
		for k := range nslices {
			quantize(s, k)
			add(s)
		}
		return sym, &dqCentroids{sum, cnt}
	}
	// The slices in order through the workers, each with a scratch of
	// its own, and back in order to add.
	err := pipeline.Ordered(context.Background(), nslices, workers,
		func(_ int, s *dqScratch) error { s.lb, s.pb = lb, pb; return nil },
		func(k int, s *dqScratch) error { quantize(s, k); return nil },
		func(_ int, s *dqScratch) error { add(s); return nil })
	if err != nil {
		panic(err) // a worker's panic, on the caller's goroutine
	}
	return sym, &dqCentroids{sum, cnt}
}

// dqCentroids holds the statistics of the centroid offsets: the sum of
// (value - level) in steps and the count of the coefficients of each
// bucket, quantizer and magnitude 1, 2, >= 3.
type dqCentroids struct {
	sum, cnt [ntcBuckets][2][3]float64
}

// add adds o's statistics to d.
func (d *dqCentroids) add(o *dqCentroids) {
	for b := range d.sum {
		for q := range d.sum[b] {
			for k := range d.sum[b][q] {
				d.sum[b][q][k] += o.sum[b][q][k]
				d.cnt[b][q][k] += o.cnt[b][q][k]
			}
		}
	}
}

// offsets returns the centroid offsets, in 1/128 of a step.
func (d *dqCentroids) offsets() (off [ntcBuckets][2][3]int8) {
	for b := range d.sum {
		for q := range d.sum[b] {
			for k := range d.sum[b][q] {
				if d.cnt[b][q][k] > 0 {
					o := math.Round(-d.sum[b][q][k] / d.cnt[b][q][k] * 128)
					off[b][q][k] = int8(max(-128, min(127, o)))
				}
			}
		}
	}
	return off
}

// dqLevel returns the lower of the two levels around a (|x| / step) that
// a symbol of bucket b can take with quantizer q: the magnitude m0 of the
// candidates m0 and m0+1 (a plain entry has one quantizer, levels m; the
// trellis' quantizer q has levels 2m - q).
func dqLevel(a float32, plain bool, q uint32) uint32 {
	if plain {
		return uint32(a)
	}
	return uint32((a + float32(q)) / 2)
}

// candidates sets, for symbol p of the slice, each quantizer's
// candidates (zero and the two levels around |x|/step) and their costs
// (squared error plus lambda times the bits). A plain entry has one
// quantizer and no trellis state: then it reports plain and the index of
// its cheapest candidate (the first on ties).
func (s *dqScratch) candidates(p int, lambda float32, cost *ansCost, cm *[2][3]uint32, cj *[2][3]float32) (best int, plain bool) {
	inf := float32(math.Inf(1))
	a := s.a[p]
	b := int(s.bk[p])
	r := ansLowBits(b, s.pb)
	if ansPlain(b, s.pb) {
		m0 := dqLevel(a, true, 0)
		cm[0] = [3]uint32{0, m0, m0 + 1}
		for ci, m := range cm[0] {
			d := a - float32(m)
			cj[0][ci] = float32(d*d) + float32(lambda*dqBits(cost, b, 0, m, r, s.pb))
		}
		if m0 == 0 {
			cj[0][1] = inf
		}
		for ci := 1; ci < 3; ci++ {
			if cj[0][ci] < cj[0][best] {
				best = ci
			}
		}
		return best, true
	}
	for q := range uint32(2) {
		m0 := dqLevel(a, false, q)
		cm[q] = [3]uint32{0, m0, m0 + 1}
		lbq := &s.lb[b][q]
		for ci, m := range cm[q] {
			d := a
			if m > 0 {
				d = a - float32(2*m-q)
			}
			if m < ansEsc {
				cj[q][ci] = float32(d*d) + lbq[m]
			} else {
				cj[q][ci] = float32(d*d) + float32(lambda*dqBits(cost, b, int(q), m, r, s.pb))
			}
		}
		if m0 == 0 {
			cj[q][1] = inf // the same as zero
		}
	}
	return 0, false
}

// trellis runs the Viterbi search of every lane of the slice in s (lane l
// takes the symbols l, l+lanes, ...) and writes the chosen signed
// magnitudes into sym. It walks the slice in coding order, so that
// consecutive steps belong to different lanes: their dependency chains
// are independent and a core overlaps them. Each step is free of
// data-dependent branches (which candidate wins is data a branch
// predictor cannot learn): the cheapest way into each state is the
// minimum of keys that order by cost and, on equal cost, by (state,
// candidate), as a scan with strict comparisons would keep them.
func (s *dqScratch) trellis(lanes int, lambda float32, cost *ansCost, sym []int32) {
	N := len(s.a)
	if N == 0 {
		return
	}
	if cap(s.way) < N {
		s.way = make([][4]uint8, N)
	}
	way := s.way[:N]
	inf := float32(math.Inf(1))
	curs := make([][4]float32, lanes)
	for l := range curs {
		curs[l] = [4]float32{0, inf, inf, inf}
	}
	for p, l := 0, 0; p < N; p++ {
		cur := &curs[l]
		if l++; l == lanes {
			l = 0
		}
		var cm [2][3]uint32
		var cj [2][3]float32
		if best, plain := s.candidates(p, lambda, cost, &cm, &cj); plain {
			// A plain entry: the state unchanged.
			b := uint8(best)
			way[p] = [4]uint8{b, 3 + b, 6 + b, 9 + b}
			for st := range 4 {
				cur[st] = float32(cur[st] + cj[0][best])
			}
			continue
		}
		// kp[st][parity]: the cheapest way out of st with a symbol of
		// that parity, as a key: the float bits of the cost (never
		// negative, so they order as the costs) above 4 bits of
		// st*3+ci. Candidate 0 is zero (even); 1 and 2 have the
		// parities of their magnitudes.
		var kp [4][2]uint64
		for st := range uint32(4) {
			q := st >> 1
			c0 := cur[st]
			k0 := uint64(math.Float32bits(float32(c0+cj[q][0])))<<4 | uint64(st*3)
			k1 := uint64(math.Float32bits(float32(c0+cj[q][1])))<<4 | uint64(st*3+1)
			k2 := uint64(math.Float32bits(float32(c0+cj[q][2])))<<4 | uint64(st*3+2)
			p1, p2 := uint64(dqParity(cm[q][1])), uint64(dqParity(cm[q][2]))
			kp[st][0] = min(k0, k1|-p1, k2|-p2)
			kp[st][1] = min(k1|(p1-1), k2|(p2-1))
		}
		// The ways into each state (ansNext; TestTrellisTransitions
		// checks them): 0 from 0 even or 1 odd, 1 from 2 even or 3 odd,
		// 2 from 0 odd or 1 even, 3 from 2 odd or 3 even.
		k := [4]uint64{
			min(kp[0][0], kp[1][1]),
			min(kp[2][0], kp[3][1]),
			min(kp[0][1], kp[1][0]),
			min(kp[2][1], kp[3][0]),
		}
		w := &way[p]
		for ns, key := range k {
			cur[ns] = math.Float32frombits(uint32(key >> 4))
			w[ns] = uint8(key & 15)
		}
	}
	// Back from each lane's last symbol.
	for l := range min(lanes, N) {
		cur := &curs[l]
		best := uint32(0)
		for st := uint32(1); st < 4; st++ {
			if cur[st] < cur[best] {
				best = st
			}
		}
		last := l + (N-1-l)/lanes*lanes
		for p := last; p >= 0; p -= lanes {
			// The way into best: the state before and the candidate,
			// whose magnitude follows from the value as in the search.
			o := uint32(way[p][best])
			st, ci := o/3, o%3
			m := int32(0)
			if ci > 0 {
				m = int32(dqLevel(s.a[p], ansPlain(int(s.bk[p]), s.pb), st>>1) + ci - 1)
			}
			if s.neg[p] {
				m = -m
			}
			sym[s.at[p]] = m
			best = st
			s.qz[p] = uint8(best >> 1) // the state before symbol p picks its quantizer
		}
	}
}

// dqParity returns the symbol parity of a trellis entry's magnitude m, as
// the trellis sees it: m's, or 0 for an escape (whose sign is raw).
func dqParity(m uint32) uint32 {
	if m >= ansEsc {
		return 0
	}
	return m & 1
}
