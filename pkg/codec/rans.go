package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The coefficient coder of payload versions 4 and 5, which are still
// decoded (ans.go has version 6's): two interleaved rANS states with
// static frequency tables, one per sigma/step bucket, fitted with the
// model and stored in it; signs and escape bits go to a separate raw bit
// stream. The bit writer and the Exp-Golomb escape code here serve
// version 6 too.
//
// The adaptive binary range coder with neighbour contexts that this
// replaced compressed no better on real tokens (the bucket, i.e. the
// class's expected sigma/step, carries what the contexts knew) and decoded
// at about 20 ns per symbol; rANS with table lookups has no data-dependent
// branches on the common path and decodes several times faster.
const (
	ransBits = 11 // probability precision
	ransM    = 1 << ransBits
	ransL    = 1 << 16 // lower bound of the state; 16-bit renormalization
	ransSyms = 16      // magnitudes 0..14 and the escape
	ransEsc  = ransSyms - 1
	// ransPad is the zero padding after the streams that the decoder may
	// read past the end between its bounds checks.
	ransPad = 32
)

// ransTable is the frequency table of one bucket. Every symbol has a
// nonzero frequency, so that any value can be coded; they sum to ransM.
type ransTable struct {
	freq [ransSyms]uint16
	cum  [ransSyms]uint16
}

// fill derives cum and reports whether the table is valid.
func (t *ransTable) fill() bool {
	var c uint32
	for s, f := range t.freq {
		if f == 0 {
			return false
		}
		t.cum[s] = uint16(c)
		c += uint32(f)
	}
	return c == ransM
}

// ransLUT maps each slot of a bucket's table to freq | bias<<12 | sym<<23,
// where bias = slot - cum[sym].
func ransLUT(tabs []ransTable) []uint32 {
	lut := make([]uint32, len(tabs)*ransM)
	for b := range tabs {
		t := &tabs[b]
		for s := range ransSyms {
			for j := range uint32(t.freq[s]) {
				lut[b*ransM+int(t.cum[s])+int(j)] = uint32(t.freq[s]) | j<<12 | uint32(s)<<23
			}
		}
	}
	return lut
}

// uniformTables returns tables giving every symbol the same frequency.
func uniformTables() (t [ntcBuckets]ransTable) {
	for b := range t {
		for s := range t[b].freq {
			t[b].freq[s] = ransM / ransSyms
		}
		t[b].fill()
	}
	return t
}

// bitWriter appends bits LSB first.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

// write appends the n <= 32 low bits of v (v has no higher bits set).
func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	if w.nacc >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.nacc -= 32
	}
}

func (w *bitWriter) flush() []byte {
	for w.nacc > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= min(w.nacc, 8)
	}
	return w.out
}

// ransDecoder holds the state of the two interleaved decoders and of the
// raw bit reader. Both streams are followed by ransPad zero bytes.
type ransDecoder struct {
	x0, x1 uint32
	in     []byte // rANS words, padded
	pos    int
	end    int // unpadded length of in
	bits   []byte
	bpos   int
	bend   int
	acc    uint64
	nacc   uint
}

func (d *ransDecoder) init(rans, bits []byte) error {
	if len(rans) < 8+ransPad {
		return fmt.Errorf("%w: ntc rANS stream of %d bytes", ErrCorrupt, len(rans)-ransPad)
	}
	*d = ransDecoder{
		x0: binary.LittleEndian.Uint32(rans), x1: binary.LittleEndian.Uint32(rans[4:]),
		in: rans, pos: 8, end: len(rans) - ransPad,
		bits: bits, bend: len(bits) - ransPad,
	}
	if d.x0 < ransL || d.x1 < ransL {
		return fmt.Errorf("%w: ntc rANS state", ErrCorrupt)
	}
	return nil
}

// refill tops the bit accumulator up to at least 32 bits.
func (d *ransDecoder) refill() {
	if d.nacc < 32 {
		d.acc |= uint64(binary.LittleEndian.Uint32(d.bits[d.bpos:])) << d.nacc
		d.bpos += 4
		d.nacc += 32
	}
}

// escape reads the Exp-Golomb code of an escaped magnitude's excess.
func (d *ransDecoder) escape() (int32, error) {
	nb := uint(0)
	for {
		d.refill()
		b := d.acc & 1
		d.acc >>= 1
		d.nacc--
		if b != 0 {
			break
		}
		nb++
		if nb > 24 {
			return 0, fmt.Errorf("%w: ntc coefficient escape too long", ErrCorrupt)
		}
	}
	d.refill()
	v := uint32(d.acc & (1<<nb - 1))
	d.acc >>= nb
	d.nacc -= nb
	return int32((1<<nb | v) - 1), nil
}

// writeEscape writes the Exp-Golomb code of e >= 0: nb zeros, a one, then
// the nb low bits of e+1.
func writeEscape(w *bitWriter, e uint32) {
	v := e + 1
	nb := uint(0)
	for v>>(nb+1) != 0 {
		nb++
	}
	w.write(1<<nb, nb+1)
	w.write(uint64(v)&(1<<nb-1), nb)
}

// decEntry is a plan entry as the decoder's hot loop wants it.
type decEntry struct {
	lut    uint32 // bucket << ransBits: the bucket's part of the LUT
	off    uint32 // index of the coefficient: u*K + k
	shift  uint8
	bucket uint8
}

// decEntries returns the decoder's entries for the plan entries in idx.
func decEntries(pl []planEntry, idx []int32, K int) []decEntry {
	ents := make([]decEntry, len(idx))
	for j, i := range idx {
		e := &pl[i]
		ents[j] = decEntry{lut: uint32(e.bucket) << ransBits, off: uint32(int(e.u)*K + int(e.k)), shift: e.shift, bucket: e.bucket}
	}
	return ents
}

// decodeBlock decodes the symbols of one block's entries: dequantized into
// coef (at each entry's offset) when coef is not nil, else as signed
// integers into q (q[j] for ents[j]). It is the decoder's hot loop: the two rANS states
// alternate symbol by symbol (x0 always decodes the next one), and apart
// from the rare escapes and the refills there is no data-dependent
// branch, since the symbols of a good code are unpredictable.
func (d *ransDecoder) decodeBlock(lut []uint32, ents []decEntry, q []int32, coef []float32, recon *[ntcBuckets][4]float32, step float32) error {
	x0, x1, pos, in := d.x0, d.x1, d.pos, d.in
	acc, nacc, bpos, bits := d.acc, d.nacc, d.bpos, d.bits
	// A valid stream never reads more than 8 bytes ahead of the bits it
	// has used; the padding covers one symbol's reads past that, and the
	// final check in Decode catches the rest.
	end, bend := d.end, d.bend+8
	if coef == nil {
		q = q[:len(ents)]
	}
	for j := range ents {
		if pos > end || bpos > bend {
			return fmt.Errorf("%w: ntc coefficient stream truncated", ErrCorrupt)
		}
		e := &ents[j]
		v := lut[e.lut|x0&(ransM-1)]
		x0 = (v&0xfff)*(x0>>ransBits) + (v>>12)&0x7ff
		nrm := uint32((uint64(x0) - ransL) >> 63)
		x0 = x0<<(nrm*16) | uint32(binary.LittleEndian.Uint16(in[pos:]))&-nrm
		pos += int(nrm) * 2
		if nacc < 32 {
			acc |= uint64(binary.LittleEndian.Uint32(bits[bpos:])) << nacc
			bpos += 4
			nacc += 32
		}
		t := v >> 23
		if t == ransEsc {
			d.acc, d.nacc, d.bpos = acc, nacc, bpos
			ex, err := d.escape()
			if err != nil {
				return err
			}
			t += uint32(ex)
			d.refill()
			acc, nacc, bpos = d.acc, d.nacc, d.bpos
		}
		r := uint(e.shift)
		mag := t<<r | uint32(acc)&(1<<r-1)
		acc >>= r
		nacc -= r
		nz := -mag >> 31 // 1 when mag > 0: a sign follows
		neg := uint32(acc) & nz
		acc >>= nz
		nacc -= uint(nz)
		if coef != nil { // the same branch for every symbol: predicted
			rv := float32(float32(mag)+recon[e.bucket][min(mag, 3)]) * step
			coef[e.off] = math.Float32frombits(math.Float32bits(rv) ^ neg<<31)
		} else {
			q[j] = int32((mag ^ -neg) + neg) // mag, negated when neg is 1
		}
		x0, x1 = x1, x0 // the states alternate symbol by symbol
	}
	d.x0, d.x1, d.pos = x0, x1, pos
	d.acc, d.nacc, d.bpos = acc, nacc, bpos
	return nil
}
