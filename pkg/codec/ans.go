package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// The coefficient coder of payload version 6: one, eight or sixteen
// interleaved rANS lanes per slice with static frequency tables of 32 symbols that a decoder reads through
// the alias method (32 entries of two uint32 per table, so that all the
// tables of a model stay in the L1 cache), each lane running its own
// trellis of dependent quantization (two scalar quantizers whose choice
// follows the parity of the previous symbols). A symbol carries the sign
// of its magnitude; only escapes and the classes of large sigma/step put
// bits in a raw bit stream. The rANS symbols and the trellis depend on
// nothing in the raw bits, so a decoder runs the lanes over a block first
// (eight at a time in a vector register where it can, sixteen as two
// independent chains of eight) and dequantizes after, reading raw bits only where a symbol asks for them.
//
// Dependent quantization (as in H.266/VVC): quantizer 0 reconstructs even
// multiples of the step, 2m*step, quantizer 1 odd ones, (2m-1)*step, and
// zero. A lane starts in state 0; after a symbol s the state becomes
// ansNext(state, s), which depends on the parity of s (the magnitude's,
// or 0 for an escape), and states 0 and 1 use quantizer 0, states 2 and 3
// quantizer 1. The encoder chooses the magnitudes with a Viterbi search
// over the four states (ntc_dq.go): the union of the two quantizers is a
// lattice twice as fine as either, and the trellis packs the coefficients
// into it more tightly than one scalar quantizer can. Each quantizer has
// its own frequency table per sigma/step bucket.
//
// Symbols of a trellis entry: 0 for m = 0, m for 1 <= m <= 15, 16+m for
// -15 <= -m <= -1, and the escape 16 for m >= 16, which the raw bits
// follow with the Exp-Golomb code of m-16 and the sign. Their tables are
// symmetric: a model stores the frequencies of 0, of each magnitude 1..15
// (each sign gets it) and of the escape.
//
// Classes of large sigma/step (buckets from the model's first plain
// bucket: ansPlainBucket8, sigma/step >= 32, in model version 8,
// ansPlainBucket, sigma/step >= 8, in versions 5 to 7) are coded plainly
// instead: level m*step, the lane's state unchanged,
// symbol min(m>>r, 31) (31 the escape) with quantizer 0's table, and in the
// raw bits the escape's Exp-Golomb code of (m>>r)-31, the r low bits of m
// and the sign when m>>r or r is not 0.
const (
	ansBits  = 12 // probability precision
	ansM     = 1 << ansBits
	ansL     = 1 << 16 // lower bound of a lane's state; 16-bit renormalization
	ansSyms  = 32
	ansWidth = ansM / ansSyms // slots per alias entry
	// ansLanes is the width of the vector loops: eight 32-bit lanes in a
	// YMM register, and the interleaved rANS lanes of a mid-sized slice.
	ansLanes = 8
	// ansMaxLanes is the most rANS lanes a slice has: two vector
	// registers' worth, whose dependency chains a core overlaps.
	ansMaxLanes = 2 * ansLanes
	// ansEsc is the escape symbol of a trellis entry, ansEscPlain of a
	// plain one.
	ansEsc      = 16
	ansEscPlain = 31
	// ansPlainBucket is the first bucket whose classes are coded plainly
	// in model versions 5 to 7 (sigma/step >= 8).
	ansPlainBucket = 20
	// ansPlainBucket8 is that bucket in model version 8 (sigma/step >=
	// 32): the trellis pays at high rates too (block10 at 4x, 27.28 to
	// 27.86 dB; docs/codec.md).
	ansPlainBucket8 = 28
	// ansTrans packs the trellis: the next state of state s after a
	// symbol of parity p is ansTrans >> (2*(2s+p)) & 3.
	ansTrans = 0<<0 | 2<<2 | 2<<4 | 0<<6 | 1<<8 | 3<<10 | 3<<12 | 1<<14
	// ansTables is the size of the decoding tables: two quantizers'
	// tables of 32 entries for each bucket, rounded up to a power of two
	// so that an index can be masked instead of checked.
	ansTables = 4096
	// ansReconSize is the size of a chunk's reconstruction table: 4
	// values for each bucket and quantizer, rounded up to a power of two.
	ansReconSize = 512
	// ansSymTab is the number of frequencies a model stores for a
	// trellis bucket's table: zero, the magnitudes 1..15, the escape.
	ansSymTab = 17
)

// ansLanesValid reports whether a slice may have l rANS lanes: 1, 8 or 16.
func ansLanesValid(l int) bool { return l == 1 || l == ansLanes || l == ansMaxLanes }

// ansNext returns the trellis state after symbol s in state st.
func ansNext(st, s uint32) uint32 { return ansTrans >> ((st<<2 | s&1<<1) & 15) & 3 }

// ansPlainFrom returns the first bucket that a model of version mver
// codes plainly.
func ansPlainFrom(mver uint8) int {
	if mver >= 8 {
		return ansPlainBucket8
	}
	return ansPlainBucket
}

// ansPlain reports whether bucket b's classes are coded plainly when pb
// is the first plain bucket (ansPlainFrom).
func ansPlain(b, pb int) bool { return b >= pb }

// ansLowBits returns how many low bits of a magnitude go to the raw bit
// stream in bucket b (pb the first plain bucket): none for the trellis'
// buckets, about log2(sigma/step) - 4 for plain ones.
func ansLowBits(b, pb int) uint8 {
	if !ansPlain(b, pb) {
		return 0
	}
	return uint8(b>>2 - 4)
}

// ansSym returns the rANS symbol of signed magnitude v in bucket b (pb
// the first plain bucket).
func ansSym(v int32, b, pb int) uint32 {
	m := uint32(abs32i(v))
	switch {
	case ansPlain(b, pb):
		return min(m>>ansLowBits(b, pb), ansEscPlain)
	case m >= ansEsc:
		return ansEsc
	case v < 0:
		return ansEsc + m
	}
	return m
}

// ansTable is the frequency table of one bucket and quantizer: every
// symbol has a nonzero frequency and they sum to ansM.
type ansTable struct {
	freq [ansSyms]uint16
}

// symmetric reports whether the table gives both signs of every
// magnitude the same frequency, as a trellis bucket's table must.
func (t *ansTable) symmetric() bool {
	for m := 1; m < ansEsc; m++ {
		if t.freq[m] != t.freq[ansEsc+m] {
			return false
		}
	}
	return true
}

// aliasEntries builds the decoder's alias table of freq: entry i covers
// the slots [i*ansWidth, (i+1)*ansWidth); its first div slots belong to
// symbol i, the rest to its alias symbol a. The entry is two uint32,
//
//	p[i] = freq[i] | (div-1)<<12 | i<<24
//	a[i] = freq[a] | ((offA-div) mod ansM)<<12 | a<<24
//
// where offA is the rank, among symbol a's slots, of the entry's first
// alias slot. A symbol's slots are ranked its own entry's first, then its
// alias parts by increasing entry. The construction is deterministic (the
// format depends on it): residuals start at the frequencies; the entries
// whose residual is below ansWidth ("small", in increasing order) and
// those above ("large") are queues; while both are non-empty, the first
// small entry s takes the first large entry l as its alias, div = its
// residual, and l's residual drops by ansWidth-div, moving l to the back
// of the small queue when it falls below ansWidth (or out of the large
// queue when it equals it). What remains has residual ansWidth: no alias
// (div = ansWidth, a = i).
func aliasEntries(freq *[ansSyms]uint16) (p, a [ansSyms]uint32, slots [ansM]uint16) {
	var res, div, alias [ansSyms]int
	var small, large []int
	for s, f := range freq {
		res[s], div[s], alias[s] = int(f), ansWidth, s
		switch {
		case res[s] < ansWidth:
			small = append(small, s)
		case res[s] > ansWidth:
			large = append(large, s)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[0], large[0]
		small = small[1:]
		div[s], alias[s] = res[s], l
		res[l] -= ansWidth - res[s]
		switch {
		case res[l] < ansWidth:
			large = large[1:]
			small = append(small, l)
		case res[l] == ansWidth:
			large = large[1:]
		}
	}
	// Ranks: a symbol's own part first, then its alias parts.
	var next, cum [ansSyms]int
	c := 0
	for s := range freq {
		cum[s] = c
		c += int(freq[s])
		next[s] = div[s]
		for j := range div[s] {
			slots[cum[s]+j] = uint16(s*ansWidth + j)
		}
	}
	for i := range freq {
		al := alias[i]
		offA := 0
		if div[i] < ansWidth {
			offA = next[al]
			for j := div[i]; j < ansWidth; j++ {
				slots[cum[al]+next[al]] = uint16(i*ansWidth + j)
				next[al]++
			}
		}
		p[i] = uint32(freq[i]) | uint32(div[i]-1)<<12 | uint32(i)<<24
		a[i] = uint32(freq[al]) | uint32((offA-div[i])&(ansM-1))<<12 | uint32(al)<<24
	}
	return p, a, slots
}

// ansDecTables holds a model's decoding tables: entry (b*2+q)*32+i of P
// and A is alias entry i of bucket b's table for quantizer q.
type ansDecTables struct {
	P, A [ansTables]uint32
}

func newANSDecTables(tabs *[ntcBuckets][2]ansTable) *ansDecTables {
	d := &ansDecTables{}
	for b := range tabs {
		for q := range tabs[b] {
			p, a, _ := aliasEntries(&tabs[b][q].freq)
			copy(d.P[(b*2+q)*ansSyms:], p[:])
			copy(d.A[(b*2+q)*ansSyms:], a[:])
		}
	}
	return d
}

// ansEncTable is a table as the encoder wants it.
type ansEncTable struct {
	freq  [ansSyms]uint32
	cum   [ansSyms]uint32 // where a symbol's slots start in slots
	rcp   [ansSyms]uint64 // ceil(2^64 / freq), 0 for freq 1
	slots [ansM]uint16    // the slot of each symbol's ranked slots
}

func newANSEncTable(t *ansTable) *ansEncTable {
	e := &ansEncTable{}
	_, _, e.slots = aliasEntries(&t.freq)
	c := uint32(0)
	for s, f := range t.freq {
		e.freq[s], e.cum[s] = uint32(f), c
		c += uint32(f)
		if f > 1 {
			e.rcp[s] = (1<<64-1)/uint64(f) + 1
		}
	}
	return e
}

// ansSymbol is one coded symbol: its table (bucket*2+quantizer) and value.
type ansSymbol struct {
	tab uint8
	sym uint8
}

// encodeANS appends the rANS stream of syms (decoded in order, symbol j by
// lane j%lanes) to dst: the lanes' final states, then the 16-bit words in
// decoding order.
func encodeANS(dst []byte, tabs []*ansEncTable, syms []ansSymbol, lanes int, words []uint16) ([]byte, []uint16) {
	var x [ansMaxLanes]uint32
	for l := range x {
		x[l] = ansL
	}
	words = words[:0]
	for i := len(syms) - 1; i >= 0; i-- {
		t := tabs[syms[i].tab]
		s := syms[i].sym
		f := t.freq[s]
		st := &x[i%lanes]
		if *st >= (ansL>>ansBits)<<16*f {
			words = append(words, uint16(*st))
			*st >>= 16
		}
		// x/f by multiplication: exact for 32-bit x and f <= 2^12 (see
		// TestRANSReciprocal); f == 1 has no reciprocal.
		q := *st
		if m := t.rcp[s]; m != 0 {
			hi, _ := bits.Mul64(uint64(*st), m)
			q = uint32(hi)
		}
		*st = q<<ansBits + uint32(t.slots[t.cum[s]+*st-q*f])
	}
	for l := range lanes {
		dst = binary.LittleEndian.AppendUint32(dst, x[l])
	}
	for i := len(words) - 1; i >= 0; i-- {
		dst = binary.LittleEndian.AppendUint16(dst, words[i])
	}
	return dst, words
}

// blockEnts6 is a block's plan entries as the version 6 decoder's loops
// want them, field by field (the vector loops load eight of a field at
// once).
type blockEnts6 struct {
	// tab is bucket*64 | 32 for a trellis entry: the bucket's tables in
	// the decoding tables, and the flag that the lane's quantizer
	// selects one.
	tab []uint16
	rec []uint16 // bucket*8: the bucket's rows of the chunk's reconstruction table
	// off is the coefficient's index u*K+k (the low 24 bits), its
	// low-bit count (the next 7) and 1 for a plain entry (the top bit).
	off []uint32
	// holes lists the block's coefficients (u*K+k) that no entry codes:
	// a decoder zeroes them instead of the whole block.
	holes []uint32
}

// decEntries6 returns the version 6 decoder's entries for the plan entries
// in idx (pb the model's first plain bucket).
func decEntries6(pl []planEntry, idx []int32, K, pb int) blockEnts6 {
	e := blockEnts6{tab: make([]uint16, len(idx)), rec: make([]uint16, len(idx)), off: make([]uint32, len(idx))}
	for j, i := range idx {
		pe := &pl[i]
		b := int(pe.bucket)
		off := uint32(int(pe.u)*K+int(pe.k)) | uint32(ansLowBits(b, pb))<<24
		tab := uint16(b) * 64
		if ansPlain(b, pb) {
			off |= 1 << 31
		} else {
			tab |= 32
		}
		e.tab[j], e.rec[j], e.off[j] = tab, uint16(b)*8, off
	}
	coded := make([]bool, blockSize*K)
	for _, o := range e.off {
		coded[o&(1<<24-1)] = true
	}
	for o, c := range coded {
		if !c {
			e.holes = append(e.holes, uint32(o))
		}
	}
	return e
}

// ansPad is the zero padding after a slice's streams. The vector lanes
// read at most 16 bytes of words per group of eight symbols (32 per group
// of sixteen) and check their position once per group; the raw bit reader reads 8 bytes at a time and
// checks its position once per symbol that reads.
const ansPad = 32

// sliceDecoder holds the state of a version 6 slice's lanes and of its raw
// bit reader. Both streams are followed by ansPad zero bytes.
type sliceDecoder struct {
	x      [ansMaxLanes]uint32 // the lanes' states, the next symbol's first
	st     [ansMaxLanes]uint32 // their trellis states
	lanes  int
	words  []byte // the rANS words after the states, padded
	wpos   int
	wend   int
	bits   []byte
	bpos   uint // bits consumed
	bend   int  // unpadded length of bits
	failed bool // the raw bits ran past their end
	tq     []uint8
}

func (d *sliceDecoder) init(rans, raw []byte, lanes int) error {
	if lanes < 1 || lanes > ansMaxLanes {
		return fmt.Errorf("%w: ntc slice of %d rANS lanes", ErrCorrupt, lanes)
	}
	if len(rans) < 4*lanes+ansPad || len(raw) < ansPad {
		return fmt.Errorf("%w: ntc slice rANS stream of %d bytes", ErrCorrupt, len(rans)-ansPad)
	}
	tq := d.tq
	*d = sliceDecoder{lanes: lanes, words: rans[4*lanes:], wend: len(rans) - ansPad - 4*lanes, bits: raw, bend: len(raw) - ansPad, tq: tq}
	for l := range lanes {
		d.x[l] = binary.LittleEndian.Uint32(rans[4*l:])
		if d.x[l] < ansL {
			return fmt.Errorf("%w: ntc rANS state", ErrCorrupt)
		}
	}
	return nil
}

// done reports whether the slice decoded to its exact end: every lane back
// at its initial state, every word and every raw bit used.
func (d *sliceDecoder) done() bool {
	for l := range d.lanes {
		if d.x[l] != ansL {
			return false
		}
	}
	return !d.failed && d.wpos == d.wend && (int(d.bpos)+7)/8 == d.bend
}

// read returns the next n <= 32 raw bits.
func (d *sliceDecoder) read(n uint) uint32 {
	if int(d.bpos>>3) > d.bend {
		d.failed = true
		return 0
	}
	v := binary.LittleEndian.Uint64(d.bits[d.bpos>>3:]) >> (d.bpos & 7)
	d.bpos += n
	return uint32(v) & (1<<n - 1)
}

// escape reads the Exp-Golomb code of an escaped symbol's excess.
func (d *sliceDecoder) escape() uint32 {
	nb := uint(0)
	for d.read(1) == 0 {
		if nb++; nb > 24 || d.failed {
			d.failed = true
			return 0
		}
	}
	return 1<<nb | d.read(nb) - 1
}

// ansRecon returns a chunk's reconstruction table: for bucket b, quantizer
// q and min(m, 3), entry b*8+q*4+min(m,3) is the correction to the level
// 2m-q (m for a plain bucket) in steps: q for m = 0, so that zero
// reconstructs to zero, and the centroid offset -off/128 otherwise.
func ansRecon(off *[ntcBuckets][2][3]int8) *[ansReconSize]float32 {
	var r [ansReconSize]float32
	for b := range off {
		for q := range off[b] {
			r[b*8+q*4] = float32(q)
			for j := range off[b][q] {
				r[b*8+q*4+j+1] = -float32(off[b][q][j]) / 128
			}
		}
	}
	return &r
}

// decodeBlock6 decodes one block's symbols, ents in order: dequantized
// into coef (at each entry's offset) when coef is not nil, else as signed
// reconstruction levels into q (q[j] for ents[j]): 2m-qz for a magnitude
// m > 0 coded with quantizer qz, m for a plain entry, 0 for m = 0. The
// lanes take the symbols in turn, continuing from the previous block.
func (d *sliceDecoder) decodeBlock6(tabs *ansDecTables, recon *[ansReconSize]float32, ents *blockEnts6, q []int32, coef []float32, step float32) error {
	n := len(ents.tab)
	if cap(d.tq) < n+ansLanes {
		d.tq = make([]uint8, n+ansLanes)
	}
	tq := d.tq[:n]
	if err := d.lanesBlock(tabs, ents.tab, tq); err != nil {
		return err
	}
	if coef == nil {
		return d.rawBlock(recon, ents.rec, ents.off, tq, q[:n], nil, step)
	}
	// Groups of eight trellis symbols without escapes and of consecutive
	// coefficients go to the vector loop; the others one by one.
	for j := 0; j < n; {
		j += d.rawVec(recon, ents.rec[j:], ents.off[j:], tq[j:], coef, step)
		k := min(n, j+ansLanes)
		if err := d.rawBlock(recon, ents.rec[j:k], ents.off[j:k], tq[j:k], nil, coef, step); err != nil {
			return err
		}
		j = k
	}
	return nil
}

// lanesBlock runs the lanes over a block: the symbol and quantizer of
// each entry, s | qz<<5, into tq. The vector decoder does whole groups of
// eight or sixteen symbols (one per lane); lanesGo does the rest.
func (d *sliceDecoder) lanesBlock(tabs *ansDecTables, etab []uint16, tq []uint8) error {
	j := d.lanesVec(tabs, etab, tq)
	if d.wpos > d.wend {
		return fmt.Errorf("%w: ntc coefficient stream truncated", ErrCorrupt)
	}
	return d.lanesGo(tabs, etab[j:], tq[j:])
}

// lanesGo is lanesBlock, one symbol at a time.
func (d *sliceDecoder) lanesGo(tabs *ansDecTables, etab []uint16, tq []uint8) error {
	le := binary.LittleEndian
	words, wpos, wend := d.words, d.wpos, d.wend
	lanes := d.lanes
	tq = tq[:len(etab)]
	for j, tab := range etab {
		if wpos > wend {
			return fmt.Errorf("%w: ntc coefficient stream truncated", ErrCorrupt)
		}
		x, st := d.x[0], d.st[0]
		dq := uint32(tab>>5) & 1
		qz := st >> 1 & dq
		slot := x & (ansM - 1)
		i := (uint32(tab)&^32 + qz<<5 + slot/ansWidth) & (ansTables - 1)
		lo := slot % ansWidth
		p := tabs.P[i]
		var bias uint32
		if lo > p>>12&(ansWidth-1) { // the alias part
			p = tabs.A[i]
			bias = p >> 12
		}
		x = p&(ansM-1)*(x>>ansBits) + (lo+bias)&(ansM-1)
		s := p >> 24 & 31
		if x < ansL {
			x = x<<16 | uint32(le.Uint16(words[wpos:]))
			wpos += 2
		}
		if dq != 0 {
			st = ansNext(st, s)
		}
		tq[j] = uint8(s | qz<<5)
		// The lanes take the symbols in turn.
		copy(d.x[:lanes-1], d.x[1:lanes])
		copy(d.st[:lanes-1], d.st[1:lanes])
		d.x[lanes-1], d.st[lanes-1] = x, st
	}
	d.wpos = wpos
	return nil
}

// rawBlock dequantizes symbols (tq, of the entries rec and off), reading
// the raw bits of those that have some: their values into coef at their
// offsets, or their signed levels into q when coef is nil.
func (d *sliceDecoder) rawBlock(recon *[ansReconSize]float32, rec []uint16, off []uint32, tq []uint8, q []int32, coef []float32, step float32) error {
	tq = tq[:len(off)]
	rec = rec[:len(off)]
	for j, o := range off {
		s, qz := uint32(tq[j]&31), uint32(tq[j]>>5)
		var m, neg uint32
		switch {
		case o>>31 != 0: // plain
			t := s
			if s == ansEscPlain {
				t += d.escape()
			}
			r := uint(o >> 24 & 127)
			m = t<<r | d.read(r)
			if t != 0 || r != 0 {
				neg = d.read(1)
			}
		case s == ansEsc:
			m = ansEsc + d.escape()
			neg = d.read(1)
		default:
			m, neg = s&(ansEsc-1), s>>4
		}
		// The level: 2m-qz, or m for a plain entry.
		lev := m<<(1-o>>31) - qz
		if coef != nil {
			rv := float32(float32(int32(lev))+recon[(uint32(rec[j])+qz<<2+min(m, 3))&(ansReconSize-1)]) * step
			coef[o&(1<<24-1)] = math.Float32frombits(math.Float32bits(rv) ^ neg<<31)
		} else {
			if m == 0 {
				lev = 0
			}
			q[j] = int32((lev ^ -neg) + neg)
		}
	}
	if d.failed {
		return fmt.Errorf("%w: ntc coefficient stream truncated", ErrCorrupt)
	}
	return nil
}

// uniformANSTables returns tables giving every symbol the same frequency.
func uniformANSTables() (t [ntcBuckets][2]ansTable) {
	for b := range t {
		for q := range t[b] {
			for s := range t[b][q].freq {
				t[b][q].freq[s] = ansM / ansSyms
			}
		}
	}
	return t
}

// fitANSTables normalizes symbol histograms (by bucket and quantizer) into
// tables. A small prior, a discretized Laplacian with the bucket's
// nominal sigma/step, fills the symbols the data never showed. It returns
// the tables and the range of buckets that hold data; the others are
// uniform. pb is the first plain bucket.
func fitANSTables(hist *[ntcBuckets][2][ansSyms]float64, pb int) ([ntcBuckets][2]ansTable, uint8, uint8) {
	tabs := uniformANSTables()
	lo, hi := ntcBuckets, 0
	for b := range hist {
		for q := range hist[b] {
			for _, v := range hist[b][q] {
				if v > 0 {
					lo, hi = min(lo, b), max(hi, b+1)
				}
			}
		}
	}
	if lo >= hi {
		return tabs, 0, 0
	}
	ansTablesFrom(&tabs, hist, lo, hi, pb)
	return tabs, uint8(lo), uint8(hi)
}

// priorANSTables returns the prior's tables for every bucket: the fit's
// first rate estimates (pb the first plain bucket).
func priorANSTables(pb int) [ntcBuckets][2]ansTable {
	var tabs [ntcBuckets][2]ansTable
	ansTablesFrom(&tabs, &[ntcBuckets][2][ansSyms]float64{}, 0, ntcBuckets, pb)
	return tabs
}

// encTablesOf returns the encoder's tables of tabs by table index.
func encTablesOf(tabs *[ntcBuckets][2]ansTable) []*ansEncTable {
	out := make([]*ansEncTable, 2*ntcBuckets)
	for b := range tabs {
		for q := range tabs[b] {
			out[2*b+q] = newANSEncTable(&tabs[b][q])
		}
	}
	return out
}

// laplace returns the probabilities of the magnitudes 0..n-2 and of n-1
// or more of a discretized Laplacian of scale ratio.
func laplace(ratio float64, n int) []float64 {
	p := make([]float64, n)
	for s := range n {
		lo, hi := float64(s)-0.5, float64(s)+0.5
		if s == 0 {
			lo = 0
		}
		p[s] = math.Exp(-lo/ratio) - math.Exp(-hi/ratio)
		if s == n-1 {
			p[s] = math.Exp(-lo / ratio)
		}
	}
	return p
}

// ansTablesFrom fits the tables of buckets [lo, hi) to hist and the prior.
// A trellis bucket's tables are made symmetric (the signs of a magnitude
// share its count). pb is the first plain bucket.
func ansTablesFrom(tabs *[ntcBuckets][2]ansTable, hist *[ntcBuckets][2][ansSyms]float64, lo, hi, pb int) {
	for b := lo; b < hi; b++ {
		// Nominal sigma/step of the bucket's centre, in units of the
		// symbol: two steps (one in a plain bucket), times 2^r for the
		// raw low bits.
		unit := 1.0
		if ansPlain(b, pb) {
			unit = 0
		}
		ratio := math.Exp2((float64(b<<ntcBucketShift)+float64(1<<ntcBucketShift)/2+ntcBase)/256-unit-float64(ansLowBits(b, pb))) * 0.7071
		for q := range 2 {
			var w [ansSyms]float64
			if ansPlain(b, pb) {
				prior := laplace(ratio, ansSyms)
				for s := range w {
					w[s] = hist[b][q][s] + 32*prior[s]
				}
			} else {
				// Magnitudes 0..15 and the escape; half of each nonzero
				// magnitude's weight to each sign.
				prior := laplace(ratio, ansEsc+1)
				w[0] = hist[b][q][0] + 32*prior[0]
				w[ansEsc] = hist[b][q][ansEsc] + 32*prior[ansEsc]
				for m := 1; m < ansEsc; m++ {
					v := (hist[b][q][m] + hist[b][q][ansEsc+m] + 32*prior[m]) / 2
					w[m], w[ansEsc+m] = v, v
				}
			}
			tabs[b][q] = normalizeANS(&w, !ansPlain(b, pb))
		}
	}
}

// normalizeANS turns weights into frequencies summing to ansM, each at
// least 1, deterministically; with sym, symmetric ones (w must be).
func normalizeANS(w *[ansSyms]float64, sym bool) ansTable {
	var t ansTable
	var sum float64
	for _, v := range w {
		sum += v
	}
	left := ansM - ansSyms
	used := 0
	best := 0
	for s, v := range w {
		f := int(math.Floor(v / sum * float64(left)))
		if sym && s > ansEsc {
			f = int(t.freq[s-ansEsc]) - 1
		}
		t.freq[s] = uint16(1 + f)
		used += f
		if v > w[best] {
			best = s
		}
	}
	// Hand the rounding remainder to the most frequent symbol: zero or
	// the escape in a symmetric table, whose remainder is then even or odd
	// as the other symbols leave it.
	if sym && best != 0 && best != ansEsc {
		best = 0
	}
	t.freq[best] += uint16(left - used)
	return t
}
