package codec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// trellisRef runs the Viterbi search of lane l (the symbols l, l+lanes, ...
// of the slice in s) and writes the chosen signed magnitudes into sym:
// the trellis as first written, one lane at a time with branches, which
// trellis must match symbol for symbol.
func (s *dqScratch) trellisRef(l, lanes int, lambda float32, cost *ansCost, sym []int32) {
	n := (len(s.a) - l + lanes - 1) / lanes
	if n <= 0 {
		return
	}
	prev, mag := make([][4]uint8, n), make([][4]uint32, n)
	inf := float32(math.Inf(1))
	cur := [4]float32{0, inf, inf, inf}
	for t := range n {
		p := l + t*lanes
		var cm [2][3]uint32
		var cj [2][3]float32
		if best, plain := s.candidates(p, lambda, cost, &cm, &cj); plain {
			for st := range uint32(4) {
				prev[t][st] = uint8(st)
				mag[t][st] = cm[0][best]
				cur[st] = float32(cur[st] + cj[0][best])
			}
			continue
		}
		nxt := [4]float32{inf, inf, inf, inf}
		for st := range uint32(4) {
			c0 := cur[st]
			if c0 == inf {
				continue
			}
			q := st >> 1
			for ci, m := range cm[q] {
				j := float32(c0 + cj[q][ci])
				ns := ansNext(st, dqParity(m))
				if j < nxt[ns] {
					nxt[ns] = j
					prev[t][ns] = uint8(st)
					mag[t][ns] = m
				}
			}
		}
		cur = nxt
	}
	best := uint32(0)
	for st := uint32(1); st < 4; st++ {
		if cur[st] < cur[best] {
			best = st
		}
	}
	for t := n - 1; t >= 0; t-- {
		p := l + t*lanes
		m := int32(mag[t][best])
		if s.neg[p] {
			m = -m
		}
		sym[s.at[p]] = m
		best = uint32(prev[t][best])
		s.qz[p] = uint8(best >> 1) // the state before symbol t picks its quantizer
	}
}

// TestTrellisMatchesReference checks the trellis against trellisRef on
// random slices: plain and trellis buckets, escapes, zeros, ties (values
// on half steps), several rate weights, and 1, 8 and 16 lanes with
// slices that do not divide into them, with the first plain bucket of
// model version 8 and of the versions before.
func TestTrellisMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		pb := []int{ansPlainBucket8, ansPlainBucket}[trial%2]
		tabs := priorANSTables(pb)
		cost := ansCostOf(&tabs)
		n := 1 + r.IntN(700)
		lanes := []int{1, 8, 16}[trial%3]
		lambda := []float32{0, 0.05, 0.115, 0.3, 1}[trial%5]
		a, b := dqScratch{pb: pb}, dqScratch{pb: pb}
		for i := range n {
			var v float32
			switch r.IntN(6) {
			case 0:
				v = 0
			case 1:
				v = float32(r.IntN(40)) / 2
			case 2:
				v = float32(r.ExpFloat64() * 40)
			default:
				v = float32(r.ExpFloat64() * 1.5)
			}
			bk, neg := uint8(r.IntN(ntcBuckets)), r.IntN(2) == 0
			for _, d := range []*dqScratch{&a, &b} {
				d.a = append(d.a, v)
				d.neg = append(d.neg, neg)
				d.bk = append(d.bk, bk)
				d.at = append(d.at, int32(i))
				d.qz = append(d.qz, 0)
			}
		}
		for _, d := range []*dqScratch{&a, &b} {
			for bk := range pb {
				for q := range 2 {
					for m := range uint32(ansEsc) {
						d.lb[bk][q][m] = float32(lambda * dqBits(cost, bk, q, m, 0, pb))
					}
				}
			}
		}
		got, want := make([]int32, n), make([]int32, n)
		a.trellis(lanes, lambda, cost, got)
		for l := range lanes {
			b.trellisRef(l, lanes, lambda, cost, want)
		}
		if !slices.Equal(got, want) || !slices.Equal(a.qz, b.qz) {
			for i := range got {
				if got[i] != want[i] || a.qz[i] != b.qz[i] {
					t.Fatalf("trial %d (n %d, lanes %d, lambda %g, plain from %d): symbol %d (%g in bucket %d) is %d, quantizer %d; reference %d, %d", trial, n, lanes, lambda, pb, i, a.a[i], a.bk[i], got[i], a.qz[i], want[i], b.qz[i])
				}
			}
		}
	}
}

// dqInto lists, for each state, the two (state, parity) pairs whose
// transition (ansNext) leads to it, the lower state first: what the
// trellis' step spells out.
var dqInto = [4][2][2]uint8{{{0, 0}, {1, 1}}, {{2, 0}, {3, 1}}, {{0, 1}, {1, 0}}, {{2, 1}, {3, 0}}}

// TestTrellisTransitions checks the transitions the trellis' step spells
// out (dqInto) against ansNext, the decoder's.
func TestTrellisTransitions(t *testing.T) {
	var in [4][2][2]uint8
	var n [4]int
	for st := range uint32(4) {
		for p := range uint32(2) {
			ns := ansNext(st, p)
			in[ns][n[ns]] = [2]uint8{uint8(st), uint8(p)}
			n[ns]++
		}
	}
	if in != dqInto {
		t.Fatalf("ansNext gives the ways into each state %v, the trellis assumes %v", in, dqInto)
	}
}

// TestQuantizeWorkers checks that the trellis gives the same symbols and
// centroid statistics on any number of goroutines.
func TestQuantizeWorkers(t *testing.T) {
	const n = 7
	_, src, nc := smallNTC(t, n, 5)
	cs := nc.transform(nc.fillOutliers(src, n, nc.outliers(src, n)), n)
	pl := nc.plan(nc.stepCode)
	want, wantC := nc.quantizeOn(cs, pl, nc.stepCode, nc.acost, 1)
	for _, w := range []int{2, 3, 7, 64} {
		got, gotC := nc.quantizeOn(cs, pl, nc.stepCode, nc.acost, w)
		if !slices.Equal(got, want) {
			t.Fatalf("%d workers: other symbols than one", w)
		}
		if *gotC != *wantC {
			t.Fatalf("%d workers: other centroid statistics than one", w)
		}
	}
}
