package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/ntc-project/ntc/internal/f16"
)

// Staged decoding splits a codec's Decode in two: a host part that checks
// the payload and does the serial work (entropy decoding), and a device
// part that is pure arithmetic over arrays (dequantization, the inverse
// transforms, the product with the basis), which a GPU does at memory
// speed. The host part writes the device's input, a Staged chunk, into a
// buffer the caller owns (page-locked memory, so that it can be copied to
// the device asynchronously); the device program that finishes it is named
// by its Kind and specified below, byte for byte, so that a device decoder
// needs nothing else from this package. A Go reference of every device
// program is in the tests (stage_test.go); it reproduces Decode.
//
// All integers and floats in staged data are little-endian.

// DeviceKind names the device program that finishes a staged chunk.
type DeviceKind uint8

const (
	// DeviceF16 chunks hold their V = N*Tokens*Dim float16 values byte
	// shuffled: the V low bytes, then the V high bytes.
	DeviceF16 DeviceKind = 1
	// DeviceFixed chunks hold the fixed-rate payload as stored: a version
	// byte, then for every token its groups (Fixed.Group values, the last
	// one shorter when Group does not divide Dim), each a float16 scale
	// and its codes (Fixed.Format).
	DeviceFixed DeviceKind = 2
	// DeviceNTC chunks hold the learned codec's symbols, entropy decoded
	// on the host; see NTCStaged.
	DeviceNTC DeviceKind = 3
	// DeviceNTCStreams chunks hold the learned codec's coefficient
	// streams, for the device to entropy-decode; see NTCStaged.
	DeviceNTCStreams DeviceKind = 4
)

// FixedFormat is the code of a fixed-rate format's values.
type FixedFormat uint8

const (
	// FixedInt8 codes are int8; value = code * scale.
	FixedInt8 FixedFormat = 0
	// FixedFP8 codes are OCP FP8 E4M3 bytes; value = e4m3(code) * scale,
	// where the NaN patterns 0x7f and 0xff decode to 0.
	FixedFP8 FixedFormat = 1
	// FixedInt4 codes are two's-complement nibbles, two per byte, the
	// first value in the low nibble; a group of odd size pads its last
	// high nibble. value = code * scale.
	FixedInt4 FixedFormat = 2
)

// FixedDevice describes a fixed-rate format for its device program.
type FixedDevice struct {
	Format FixedFormat
	// Group is the number of values per scale.
	Group int
	// TokenBytes is the size of one token's groups.
	TokenBytes int
}

// Staged describes one chunk after the host part of decoding.
type Staged struct {
	Kind DeviceKind
	// N is the number of samples in the chunk.
	N int
	// Size is the number of bytes of staged data written to the buffer
	// passed to Stage.
	Size int
	// Fixed describes the format of DeviceFixed chunks.
	Fixed FixedDevice
	// NTC describes DeviceNTC chunks.
	NTC NTCStaged
}

// Stager is implemented by codecs whose decoding can be finished on a
// device. Every registered codec implements it.
type Stager interface {
	Codec
	// StageSize returns the number of bytes Stage writes for a payload
	// of n samples. It reads only the payload's header; a payload that
	// is too short for one is reported with ErrCorrupt.
	StageSize(payload []byte, n int, mode StageMode) (int, error)
	// Stage does the host part of decoding a payload of n samples: it
	// makes every check that Decode makes and writes the device's input
	// into dst, which must hold at least StageSize bytes. When the data
	// needs more room than dst has (the learned codec's rare large
	// symbols), it returns an error wrapping ErrShortBuffer with
	// Staged.Size set to the size it needs.
	Stage(dst []byte, payload []byte, n int, mode StageMode) (Staged, error)
}

// StageMode chooses how much of the learned codec's decoding the host does.
type StageMode uint8

const (
	// StageAuto leaves the entropy decoding to the device when the
	// payload's coefficients come in independent slices (payload version
	// 5 and later), and does it on the host otherwise.
	StageAuto StageMode = iota
	// StageHostEntropy does the entropy decoding on the host.
	StageHostEntropy
)

func checkStageDst(dst []byte, size int) error {
	if len(dst) < size {
		return fmt.Errorf("%w: staging buffer of %d bytes, need %d", ErrBadLayout, len(dst), size)
	}
	return nil
}

// StageSize implements Stager.
func (c *fp16Codec) StageSize(_ []byte, n int, _ StageMode) (int, error) {
	nv, err := c.layout.CheckCount(n)
	return 2 * nv, err
}

// Stage implements Stager: it decompresses the payload into the chunk's
// low bytes followed by its high bytes (payload version 2 shuffles each
// sample by itself: its halves are gathered into the chunk's).
func (c *fp16Codec) Stage(dst []byte, payload []byte, n int, _ StageMode) (Staged, error) {
	size, err := c.StageSize(payload, n, 0)
	if err != nil {
		return Staged{}, err
	}
	if err := checkStageDst(dst, size); err != nil {
		return Staged{}, err
	}
	staged := Staged{Kind: DeviceF16, N: n, Size: size}
	if isFP16V1(payload) {
		raw, err := zstdDecompress(dst[:0:size], payload, size)
		if err != nil {
			return Staged{}, err
		}
		if &raw[0] != &dst[0] {
			copy(dst, raw)
		}
		return staged, nil
	}
	vs, nv := c.layout.Values(), size/2
	err = c.unpackHalves(payload, n, func(s int, lo, hi []byte) {
		copy(dst[s*vs:], lo)
		copy(dst[nv+s*vs:], hi)
	})
	if err != nil {
		return Staged{}, err
	}
	return staged, nil
}

// StageSize implements Stager.
func (c *fixedCodec) StageSize(_ []byte, n int, _ StageMode) (int, error) {
	if _, err := c.layout.CheckCount(n); err != nil {
		return 0, err
	}
	return c.payloadSize(n), nil
}

// Stage implements Stager: it checks the payload's version and scales and
// copies it.
func (c *fixedCodec) Stage(dst []byte, payload []byte, n int, _ StageMode) (Staged, error) {
	size, err := c.StageSize(payload, n, 0)
	if err != nil {
		return Staged{}, err
	}
	if err := checkStageDst(dst, size); err != nil {
		return Staged{}, err
	}
	if err := c.check(payload, n); err != nil {
		return Staged{}, err
	}
	copy(dst, payload)
	return Staged{Kind: DeviceFixed, N: n, Size: size, Fixed: FixedDevice{Format: c.f.device, Group: c.group, TokenBytes: c.tokenBytes()}}, nil
}

// NTCStaged describes a staged chunk of the learned codec. Its data holds,
// at the offsets given:
//
//	0       Step (float32), the number of exceptions (uint32), the
//	        number of int8 rows (uint32), then the coding (uint32): 0
//	        for a payload of version 4 or 5, L | 1<<8 | P<<16 for version
//	        6 with slices of L rANS lanes and a model whose first plain
//	        bucket is P (20, or 28 from model version 8: pkg/codec/ans.go);
//	        for DeviceNTCStreams the slice count replaces the number of
//	        exceptions
//	16      reconstruction table R: NTCBuckets x 8 float32
//	QOff    symbols: N * Plan.Entries int16, sample by sample, block by
//	        block, the entries of a block in the order Plan gives them;
//	        NTCEscape where the symbol does not fit in int16
//	RowOff  int8 rows: Rows token indices (uint32, s*Tokens+t), then
//	        Rows rows of 2+Dim bytes (a float16 scale and Dim int8 codes,
//	        value = code * scale); the prefix tokens first, then the
//	        outliers, which are written over the grid's tokens
//	ExcOff  exceptions: for every NTCEscape, in increasing order, the
//	        symbol's index in the symbol array (uint32) and its value
//	        (int32); the staged data ends here
//
// A symbol L of a coefficient in bucket b reconstructs to sign(L) *
// (|L| + R[b*8 + q*4 + min(M, 3)]) * Step, where q = |L| & 1 and M = (|L|
// + q) >> 1 for a version 6 chunk's trellis buckets (b < 20: L is the
// signed level 2M-q of a magnitude M coded with quantizer q), and q = 0,
// M = |L| otherwise; with a model of version 7 that value is then
// multiplied by its Model.ClassMul entry (the product rounded to float32,
// as the CPU decoder rounds it).
//
// A DeviceNTCStreams chunk holds instead, after the reconstruction table:
//
//	SliceOff   for every slice, six uint32: the offset (from the start
//	           of the staged data) and length of its rANS stream, then of
//	           its raw bit stream, then the index of its first block in
//	           the chunk's coding order (sample by sample, the blocks of a
//	           sample in order) and its number of blocks
//	StreamOff  the streams
//	RowOff     the int8 rows, as above; the staged data ends after them
//
// and its device program first decodes the symbols of every slice (its
// blocks in coding order, with Model.LUT, Plan.Order and Plan.Bucket,
// exactly as the payload format in pkg/codec/ntc.go and ans.go specifies:
// payload version 5's two lanes and low-bit count max(0, bucket/4-3), or
// version 6's lanes, trellis and plain buckets) into an int32 symbol array
// laid out as the int16 one above (version 6: the signed levels), then
// goes on as for DeviceNTC.
//
// The device program: for every sample and grid block, dequantize the
// block's symbols into a Dim-free coefficient array c[16][K] (position
// u = fy*4+fx, zero where no symbol is coded); for every group of blocks,
// replace the coefficients c[0][k] of its gh x gw blocks by their 2-D
// inverse DCT across the group; in every block, the 2-D inverse DCT over
// its bh x bw tokens; then every grid token's K values, followed by a 1,
// times Model.Weights; then the int8 rows over the result.
type NTCStaged struct {
	Model *NTCModel
	Plan  *NTCPlan
	// Exceptions is the number of symbols that do not fit in int16.
	Exceptions int
	// Rows is the number of int8 rows (prefix and outlier tokens).
	Rows int
	// QOff, RowOff and ExcOff are the byte offsets of the sections, each
	// a multiple of 16.
	QOff, RowOff, ExcOff int
	// Slices is the number of coefficient slices of a DeviceNTCStreams
	// chunk, and SliceOff and StreamOff the offsets of the slice table
	// and of the streams.
	Slices              int
	SliceOff, StreamOff int
}

// NTCEscape marks a symbol that is stored in the exception list.
const NTCEscape = math.MinInt16

// NTCBuckets is the number of rows of a staged chunk's reconstruction
// table.
const NTCBuckets = ntcBuckets

// NTCModel holds the learned codec's constant tables for a device decoder.
// It is made once per codec and shared by all its staged chunks.
type NTCModel struct {
	Layout Layout
	// K is the number of components; KPad = K+1 rounded up to a multiple
	// of 8, the width of the matrix of coefficients that multiplies
	// Weights.
	K, KPad int
	// Weights is the KPad x Dim float16 matrix: the K basis rows, the mean,
	// then zero rows.
	Weights []uint16
	// Blocks holds 20 int32 per grid block, in coding order: bh, bw, its
	// position in its group (i*4+j), its group, then the 16 grid-relative
	// token indices (row-major grid, prefix not counted) of its positions
	// py*4+px, -1 outside the block.
	Blocks []int32
	// Groups holds 18 int32 per group of blocks: gh, gw, then the 16
	// block indices of its positions i*4+j, -1 outside the group.
	Groups []int32
	// DCT holds the inverse DCT matrices: DCT[(n*4+f)*4+p] is the weight
	// of frequency f at position p for a transform of size n (1..4).
	DCT [5 * blockSize]float32
	// LUT is the rANS decoding table. Model version 4 (payload versions
	// 4 and 5): NTCBuckets x 2048 entries, entry (bucket, slot) = freq |
	// (slot - cum[sym]) << 12 | sym << 23. Model version 5 (payload
	// version 6): the alias tables, 4096 entries P then 4096 entries A,
	// entry (bucket*2+q)*32+i of each as pkg/codec's aliasEntries gives
	// it (ans.go).
	LUT []uint32
	// Version is the model version: 4 to 8 (from 5 the alias tables,
	// from 6 PrefixMean, in 7 and, when it has them, 8 ClassMul).
	Version int
	// PrefixMean is the prefix tokens' means, Prefix x Dim float16 (model
	// version 6; nil before): a prefix token decodes as its int8 row's
	// value (code times scale, rounded) plus its mean, rounded. Outlier
	// rows have no mean.
	PrefixMean []uint16
	// ClassMul is the step multiplier of every coefficient of a sample
	// (model version 7, and 8 with class steps; nil otherwise), laid out
	// as the coefficient array of the device program: coefficient u*K+k
	// of grid block b (u = fy*4+fx) dequantizes as its value times
	// ClassMul[(b*16+u)*K+k], rounded (len(Blocks)/20 * 16 * K values;
	// its class's multiplier, 1 outside the block).
	ClassMul []float32
}

// NTCPlan holds the tables of one step code: which coefficients a block
// codes, and in which order.
type NTCPlan struct {
	StepCode int32
	// Entries is the number of symbols per sample.
	Entries int
	// Start holds, for every grid block, the index of its first symbol
	// within a sample (len(Blocks)/20 + 1 values).
	Start []int32
	// Index maps a coefficient to its symbol within its block: for block
	// b and coefficient u*K+k, the symbol is Start[b] + Index[Shape[b]*16*K + u*K + k],
	// not coded when that is -1.
	Index []int32
	// Shape is the index of every block's shape in Index.
	Shape []int32
	// Bucket is the reconstruction bucket of every coefficient of a
	// shape, laid out as Index.
	Bucket []uint8
	// Order lists, for every shape, its coded coefficients (u*K+k) in
	// symbol order, from Order[OrderStart[shape]] to
	// Order[OrderStart[shape+1]-1].
	Order      []int32
	OrderStart []int32
}

// ntcDevice is the codec's lazily made device model and plans.
type ntcDevice struct {
	once  sync.Once
	model *NTCModel
	mu    sync.Mutex
	plans map[int32]*NTCPlan
}

// DeviceModel returns the codec's constant tables for a device decoder.
func (c *ntcCodec) DeviceModel() *NTCModel {
	c.dev.once.Do(func() {
		l := c.layout
		m := &NTCModel{Layout: l, K: c.k, KPad: (c.k + 1 + 7) &^ 7}
		m.Weights = make([]uint16, m.KPad*l.Dim)
		for i, v := range c.basis[:c.k*l.Dim] {
			m.Weights[i] = f16.FromFloat32(v)
		}
		for d, v := range c.mean {
			m.Weights[c.k*l.Dim+d] = f16.FromFloat32(v)
		}
		group := make([]int32, len(c.blocks))
		for gi := range c.groups {
			g := &c.groups[gi]
			for p := range blockSize {
				if p/blockSide < int(g.gh) && p%blockSide < int(g.gw) {
					group[g.blk[p]] = int32(gi)
				}
			}
		}
		for bi := range c.blocks {
			g := &c.blocks[bi]
			grp := group[bi]
			m.Blocks = append(m.Blocks, int32(g.bh), int32(g.bw), int32(g.pos), grp)
			for p := range blockSize {
				t := int32(-1)
				if p/blockSide < int(g.bh) && p%blockSide < int(g.bw) {
					t = g.tok[p] - int32(l.Prefix)
				}
				m.Blocks = append(m.Blocks, t)
			}
		}
		for gi := range c.groups {
			g := &c.groups[gi]
			m.Groups = append(m.Groups, int32(g.gh), int32(g.gw))
			for p := range blockSize {
				b := int32(-1)
				if p/blockSide < int(g.gh) && p%blockSide < int(g.gw) {
					b = g.blk[p]
				}
				m.Groups = append(m.Groups, b)
			}
		}
		for n := 1; n <= blockSide; n++ {
			for f := range blockSide {
				for p := range blockSide {
					m.DCT[(n*blockSide+f)*blockSide+p] = dctMats[n][f][p]
				}
			}
		}
		m.Version = int(c.mver)
		for _, v := range c.pmean {
			m.PrefixMean = append(m.PrefixMean, f16.FromFloat32(v))
		}
		m.ClassMul = c.cmul
		if c.mver == 4 {
			m.LUT = c.lut
		} else {
			m.LUT = append(append([]uint32(nil), c.adec.P[:]...), c.adec.A[:]...)
		}
		c.dev.model = m
	})
	return c.dev.model
}

// devicePlan returns the device tables of a step code, from a cache.
func (c *ntcCodec) devicePlan(stepCode int32) *NTCPlan {
	c.dev.mu.Lock()
	defer c.dev.mu.Unlock()
	if p, ok := c.dev.plans[stepCode]; ok {
		return p
	}
	ents, _ := c.decPlan(stepCode)
	K := c.k
	p := &NTCPlan{StepCode: stepCode, Start: make([]int32, len(c.blocks)+1), Shape: make([]int32, len(c.blocks)), OrderStart: []int32{0}}
	shapes := map[*decEntry]int32{}
	for bi, e := range ents {
		p.Start[bi+1] = p.Start[bi] + int32(len(e))
		if len(e) == 0 {
			p.Shape[bi] = -1
			continue
		}
		id, ok := shapes[&e[0]]
		if !ok {
			id = int32(len(shapes))
			shapes[&e[0]] = id
			idx := make([]int32, blockSize*K)
			for i := range idx {
				idx[i] = -1
			}
			bk := make([]uint8, blockSize*K)
			for j, d := range e {
				idx[d.off] = int32(j)
				bk[d.off] = d.bucket
				p.Order = append(p.Order, int32(d.off))
			}
			p.OrderStart = append(p.OrderStart, int32(len(p.Order)))
			p.Index = append(p.Index, idx...)
			p.Bucket = append(p.Bucket, bk...)
		}
		p.Shape[bi] = id
	}
	p.Entries = int(p.Start[len(c.blocks)])
	if c.dev.plans == nil || len(c.dev.plans) >= decPlanCache {
		c.dev.plans = map[int32]*NTCPlan{}
	}
	c.dev.plans[stepCode] = p
	return p
}

// align rounds a staged section's offset up to a multiple of 16.
func align(v int) int { return (v + 15) &^ 15 }

// ntcStageLayout returns the offsets of a staged chunk's sections and the
// size of all but the exceptions, which go last.
func ntcStageLayout(l Layout, n, entries, rows int) (qOff, rowOff, excOff int) {
	qOff = 16 + ntcBuckets*8*4
	rowOff = align(qOff + 2*n*entries)
	excOff = align(rowOff + rows*(4+2+l.Dim))
	return
}

// StageSize implements Stager. For symbols staged on the host it does not
// count the exceptions, symbols too large for int16, which are rare: Stage
// reports ErrShortBuffer when they do not fit in the buffer it is given.
func (c *ntcCodec) StageSize(payload []byte, n int, mode StageMode) (int, error) {
	ch, err := c.parse(payload, n)
	if err != nil {
		return 0, err
	}
	return c.stageSize(&ch, mode), nil
}

// deviceEntropy reports whether a chunk's entropy decoding goes to the
// device.
func (c *ntcCodec) deviceEntropy(ch *ntcChunk, mode StageMode) bool {
	return mode == StageAuto && ch.version >= 5 && len(ch.slices) > 0
}

func (c *ntcCodec) stageSize(ch *ntcChunk, mode StageMode) int {
	l := c.layout
	rows := ch.n*l.Prefix + ch.nout
	if c.deviceEntropy(ch, mode) {
		_, _, _, size := ntcStreamsLayout(l, ch)
		return size
	}
	entries := 0
	if len(c.blocks) > 0 && c.k > 0 {
		entries = c.devicePlan(ch.stepCode).Entries
	}
	_, _, size := ntcStageLayout(l, ch.n, entries, rows)
	return size
}

// ntcStreamsLayout returns the offsets of the sections of a chunk staged
// with its coefficient streams, and its size.
func ntcStreamsLayout(l Layout, ch *ntcChunk) (sliceOff, streamOff, rowOff, size int) {
	sliceOff = 16 + ntcBuckets*8*4
	streamOff = align(sliceOff + ntcSliceEntry*len(ch.slices))
	n := 0
	for _, sl := range ch.slices {
		n += len(sl.rans) + len(sl.bits)
	}
	rowOff = align(streamOff + n)
	size = rowOff + (ch.n*l.Prefix+ch.nout)*(4+2+l.Dim)
	return
}

// ntcSliceEntry is the size of an entry of a staged chunk's slice table.
const ntcSliceEntry = 24

// stageHeader writes the header and reconstruction table of a staged
// chunk.
func (c *ntcCodec) stageHeader(dst []byte, ch *ntcChunk, count, rows uint32) {
	le := binary.LittleEndian
	le.PutUint32(dst[0:], math.Float32bits(ch.step))
	le.PutUint32(dst[4:], count)
	le.PutUint32(dst[8:], rows)
	le.PutUint32(dst[12:], 0)
	if ch.version == 6 {
		le.PutUint32(dst[12:], uint32(ch.lanes)|1<<8|uint32(c.plainFrom())<<16)
		for i := range ntcBuckets * 8 {
			le.PutUint32(dst[16+4*i:], math.Float32bits(ch.recon6[i]))
		}
		return
	}
	for b := range ntcBuckets {
		for j := range 8 {
			v := float32(0)
			if j < 4 {
				v = ch.recon[b][j]
			}
			le.PutUint32(dst[16+(b*8+j)*4:], math.Float32bits(v))
		}
	}
}

// stageRows writes the chunk's int8 rows at off: token indices, then rows.
func (c *ntcCodec) stageRows(dst []byte, ch *ntcChunk, off int) {
	idx := dst[off:]
	for i, t := range append(c.prefixIndex(ch.n), ch.outTok...) {
		binary.LittleEndian.PutUint32(idx[4*i:], uint32(t))
	}
	r := dst[off+4*(ch.n*c.layout.Prefix+ch.nout):]
	copy(r, ch.prefix)
	copy(r[len(ch.prefix):], ch.outRows)
}

// stageStreams stages a chunk with its coefficient streams, for the
// device to entropy-decode.
func (c *ntcCodec) stageStreams(dst []byte, ch *ntcChunk) Staged {
	l := c.layout
	st := NTCStaged{Model: c.DeviceModel(), Plan: c.devicePlan(ch.stepCode), Rows: ch.n*l.Prefix + ch.nout, Slices: len(ch.slices)}
	var size int
	st.SliceOff, st.StreamOff, st.RowOff, size = ntcStreamsLayout(l, ch)
	clear(dst[:size])
	c.stageHeader(dst, ch, uint32(len(ch.slices)), uint32(st.Rows))
	p := st.StreamOff
	for i, sl := range ch.slices {
		e := dst[st.SliceOff+ntcSliceEntry*i:]
		binary.LittleEndian.PutUint32(e[16:], uint32(sl.from))
		binary.LittleEndian.PutUint32(e[20:], uint32(sl.to-sl.from))
		binary.LittleEndian.PutUint32(e[0:], uint32(p))
		binary.LittleEndian.PutUint32(e[4:], uint32(len(sl.rans)))
		p += copy(dst[p:], sl.rans)
		binary.LittleEndian.PutUint32(e[8:], uint32(p))
		binary.LittleEndian.PutUint32(e[12:], uint32(len(sl.bits)))
		p += copy(dst[p:], sl.bits)
	}
	c.stageRows(dst, ch, st.RowOff)
	return Staged{Kind: DeviceNTCStreams, N: ch.n, Size: size, NTC: st}
}

// Stage implements Stager: it copies the coefficient streams or decodes
// the symbols (see StageMode).
func (c *ntcCodec) Stage(dst []byte, payload []byte, n int, mode StageMode) (Staged, error) {
	l := c.layout
	ch, err := c.parse(payload, n)
	if err != nil {
		return Staged{}, err
	}
	if err := checkStageDst(dst, c.stageSize(&ch, mode)); err != nil {
		return Staged{}, err
	}
	if c.deviceEntropy(&ch, mode) {
		return c.stageStreams(dst, &ch), nil
	}
	st := NTCStaged{Model: c.DeviceModel(), Rows: n*l.Prefix + ch.nout}
	entries := 0
	if len(c.blocks) > 0 && c.k > 0 {
		st.Plan = c.devicePlan(ch.stepCode)
		entries = st.Plan.Entries
	}
	st.QOff, st.RowOff, st.ExcOff = ntcStageLayout(l, n, entries, st.Rows)
	q := dst[st.QOff : st.QOff+2*n*entries]
	exc := dst[st.ExcOff:]
	s := c.scratch()
	defer c.bufs.Put(s)
	noCoef := func(int, int) []float32 { return nil }
	err = c.symbols(&ch, s, noCoef, func(smp, bi int, sym []int32) {
		base := smp*entries + int(st.Plan.Start[bi])
		out := q[2*base:][:2*len(sym)]
		for j, v := range sym {
			w := v
			if w != int32(int16(w)) || w == NTCEscape {
				if e := 8 * st.Exceptions; e+8 <= len(exc) {
					binary.LittleEndian.PutUint32(exc[e:], uint32(base+j))
					binary.LittleEndian.PutUint32(exc[e+4:], uint32(v))
				}
				st.Exceptions++
				w = NTCEscape
			}
			binary.LittleEndian.PutUint16(out[2*j:], uint16(w))
		}
	})
	if err != nil {
		return Staged{}, err
	}
	staged := Staged{Kind: DeviceNTC, N: n, Size: st.ExcOff + 8*st.Exceptions, NTC: st}
	if staged.Size > len(dst) {
		return staged, fmt.Errorf("%w: %d symbols beyond int16 need %d bytes of staging, have %d", ErrShortBuffer, st.Exceptions, staged.Size, len(dst))
	}
	c.stageHeader(dst, &ch, uint32(st.Exceptions), uint32(st.Rows))
	clear(dst[st.QOff+2*n*entries : st.RowOff])
	clear(dst[st.RowOff:st.ExcOff])
	c.stageRows(dst, &ch, st.RowOff)
	return staged, nil
}
