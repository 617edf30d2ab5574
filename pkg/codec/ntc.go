package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/ntc-project/ntc/internal/f16"
)

// IDNTC is the on-disk id of the learned block codec.
const IDNTC uint8 = 5

// The learned codec ("ntc") codes a sample in four parts:
//
//   - Prefix tokens (CLS, registers) are kept at high precision: int8 with a
//     float16 absmax scale per token, stored raw, of the token minus its
//     position's fitted prefix mean (model version 6; the token itself
//     before). So are outlier tokens (without a mean):
//     grid tokens farther from the mean than a fitted threshold (64 times
//     the median squared distance), which are also left out of the fit.
//   - Grid tokens are centred on the fitted mean and projected on the first
//     K principal components (eigenvectors of the channel covariance; the
//     leading rows float16 when the rate needs it, the rest int8 with a
//     float16 scale per row). The large-magnitude channels become
//     components of their own with their own step-size classes, so they do
//     not spoil the quantizer of the rest.
//   - The grid is cut into 4x4 blocks (smaller at the right and bottom edges
//     when the grid is not divisible by 4). In each block every component
//     goes through a 2-D DCT across the block's tokens, and the DC
//     coefficients of each group of up to 4x4 blocks through a second 2-D
//     DCT: this moves the tokens' spatial correlation into few
//     coefficients.
//   - Every coefficient class (component k; one of 15 AC frequencies or 16
//     DC-group frequencies) has a fitted standard deviation sigma stored in
//     the model. With one step size per chunk, a class is coded only when
//     sigma/step >= 1/4 (reverse water-filling: the rest are set to zero),
//     and sigma/step, in quarter octaves, picks the bucket whose static
//     rANS frequency tables (fitted with the model) code its quantized
//     magnitudes. Quantization is dependent (trellis-coded: ans.go) for
//     buckets below the model's first plain bucket (ansPlainFrom: 28,
//     sigma/step >= 32, in model version 8; 20, sigma/step >= 8, before),
//     plain above; reconstruction uses per-chunk centroid offsets.
//
// Model layout (version 6, little-endian; versions 8 and 9 below):
//
//	0   version (ntcModelVersion)
//	1   flags (0; version 8: bit 0, ntcFlagClassSteps; version 9: bit 0
//	    and bit 1, ntcFlagHouseholder)
//	2   dim D (uint16)
//	4   components K (uint16), K <= D
//	6   default step code (int32): step = 2^(code/256)
//	10  quality kind (0 none, 1 snr, 2 cos)
//	11  quality target (float32)
//	15  the trellis' rate weight (uint8, in 1/256 of a squared step per
//	    bit; the encoder's, not read by a decoder)
//	16  H, the number of basis rows stored as float16 (uint16), H <= K
//	18  outlier threshold (float32): grid tokens whose squared distance
//	    from the mean exceeds it are coded like prefix tokens; 0 for none
//	22  mean: D float16
//	    prefix means: Prefix x D float16 (the layout's prefix tokens,
//	    token-major); a prefix row decodes as its int8 value (code times
//	    scale, rounded to float32) plus its token's mean, rounded
//	    basis: H rows of D float16, then K-H rows, each a float16 scale
//	    and D int8 values
//	    sigma codes: K*32 uint8 (component-major, 32 classes), sigma =
//	    2^((code-128)/8)
//	    table range lo, hi (uint8 each, lo <= hi <= ntcBuckets)
//	    the frequency tables of buckets lo..hi-1 (32 symbols, uint16
//	    frequencies, every one >= 1, summing to 2^12): a plain bucket's
//	    one table, 32 frequencies; a trellis bucket's two (quantizers 0
//	    and 1), 17 frequencies each: symbol 0, symbols 1..15 (which
//	    symbols 17..31 repeat), the escape 16. Other buckets use a
//	    uniform table.
//	    centroid offsets of buckets lo..hi-1: 6 int8 each, quantizer 0
//	    then 1, for magnitudes 1, 2 and >= 3, in 1/128 of a step; the
//	    other buckets' are 0
//
// Model version 9, what the encoder writes: version 8, except that when
// flags bit 1 (ntcFlagHouseholder) is set (a plain fit's orthonormal
// basis; H must be 0) the basis section holds Householder vectors instead
// of rows (householder.go): K code widths (uint8, 2 to 8 bits), then for
// each vector j a float16 scale (positive, finite) and its D-1-j codes,
// two's complement, packed LSB first into ceil((D-1-j)*width/8) bytes,
// each within +-(2^(width-1)-1). A fit with a task metric keeps int8 rows
// (its basis is not orthonormal) and clears bit 1.
//
// Model version 8 (still read and used to encode): the layout of version 6, then,
// when flags bit 0 (ntcFlagClassSteps) is set, version 7's K*32 class step
// codes; other flags are refused. Its classes of buckets 20 to 27 (sigma/step
// from 8 to 32) are coded with the trellis, like the buckets below, and
// only those from bucket 28 plainly (ans.go); in versions 5 to 7 every
// bucket from 20 is plain. The layout of a bucket's tables follows: 17
// frequencies per quantizer for a trellis bucket, 32 for a plain one.
//
// Model version 7 (still read and used to encode) is version 6 followed by
// K*32 int8 class step codes (see setClassSteps).
//
// Model version 5, still read and still used to encode (a dataset keeps
// its model when shards are appended), is version 6 without the prefix
// means: prefix rows hold the tokens themselves.
//
// Model version 4, still read for files of payload versions 4 and 5, has
// the quantizer's rounding offset (/256) at byte 15 and one table of 16
// symbols per bucket (16 uint16 frequencies summing to 2^11).
//
// Payload layout (version 6, little-endian; uvarint is Go's
// binary.Uvarint, LEB128): a head, then one part per sample, so that the
// head followed by the parts of any run of consecutive samples is itself a
// payload of those samples (Split):
//
//	head:
//	0   version (ntcPayloadVersion)
//	1   flags (0)
//	2   step code (int32)
//	6   slices per sample S (uint16): 1 <= S <= the grid's blocks, 0
//	    without blocks or components
//	8   lanes per slice L (uint8): 1, 8 or 16 (others are rejected);
//	    the encoder picks 16 for slices of at least 32768 symbols, 8
//	    from 16384, 1 below
//	part of a sample:
//	    prefix tokens: Prefix*(2+D) bytes (float16 scale, D int8; with a
//	    model of version 6, of the token minus its prefix mean)
//	    outlier count M (uvarint, at most the grid's tokens)
//	    M token indices within the sample, increasing, grid tokens only:
//	    each the gap (uvarint) after the previous one (the first after
//	    Prefix-1)
//	    M outlier tokens: (2+D) bytes each, as the prefix tokens
//	    S pairs of lengths (uvarint each): the slice's rANS stream (at
//	    least 4L bytes) and raw bit stream
//	    the streams, slice by slice: rANS then raw bits
//
// Slice j of a sample codes its blocks [j*NB/S, (j+1)*NB/S) in coding order
// (NB blocks per sample; a slice never crosses a sample) and is decoded by
// itself: its rANS stream starts with the L lanes' final states (uint32
// each), then uint16 words in decoding order; symbol i of the slice is
// lane i%L's. Symbols, the trellis, the tables and the raw bits are
// specified in ans.go. Independent slices let a GPU (or several CPU
// threads) decode one chunk's coefficients in parallel; a sample decodes
// without the others.
//
// Payload version 5, still read: after the head (version, flags, step
// code, centroid offsets: ntcBuckets*3 int8 in 1/256 of a step), the
// chunk's prefix tokens (n*Prefix rows), the outlier count (uint32), the
// outliers' indices s*Tokens+t (uint32 each) and rows, then the blocks per
// slice B (uint32) and the slice count ceil(n*blocks/B) (uint32), the
// slices' lengths (uint32 pairs) and streams; a slice codes B consecutive
// blocks of the chunk in coding order, across samples: its rANS stream
// starts with its two states (uint32 each), symbols alternating between
// them; its raw bits, LSB first, hold for each coded magnitude m with
// symbol t = m >> r (r = lowBits(bucket)) the Exp-Golomb code of t-15 when
// t >= 15 (symbol 15 is the escape), then the r low bits of m, then the
// sign when m != 0. Payload version 4, still read, is version 5 with one
// stream for all blocks: after the outliers, the rANS stream length
// (uint32), the rANS stream, and the raw bits (the rest).
const (
	ntcModelVersion = 9
	// ntcFlagClassSteps is the flag (model version 8 and later) for class
	// step codes.
	ntcFlagClassSteps = 1
	// ntcFlagHouseholder is model version 9's flag for a basis stored as
	// Householder vectors (householder.go).
	ntcFlagHouseholder = 2
	// ntcClassStepMax bounds a class step code: multipliers within 2^+-4.
	ntcClassStepMax   = 32
	ntcPayloadVersion = 6
	// ntcSliceBlocks is the most blocks the encoder puts in a slice.
	ntcSliceBlocks = 16
	ntcModelHeader = 22
	// ntcHeadV6 is the size of a version 6 payload's head.
	ntcHeadV6 = 9
	// ntcPayloadHeaderV5 is the size of the header of payload versions 4
	// and 5.
	ntcPayloadHeaderV5 = 6 + ntcBuckets*3

	// Step codes are in 1/256 octave; this bounds the step to 2^+-24.
	stepCodeMax = 24 * 256

	ntcBucketShift = 6                          // log2 of a bucket's width in 1/256 octave
	ntcBuckets     = 14 << (8 - ntcBucketShift) // classes of sigma/step, from 2^-2, 14 octaves
	ntcBase        = -2 * 256                   // sigma/step of bucket 0, in 1/256 octave
	ntcNbr         = 9                          // neighbour contexts
	ntcUnary       = 6                          // magnitudes coded in unary with contexts
	ntcEGMax       = 22                         // longest Exp-Golomb prefix
	blockSide      = 4
	blockSize      = blockSide * blockSide
	// ntcClasses is the number of coefficient classes per component: the
	// 15 AC frequencies of a block (class 0 is unused) and the 16
	// frequencies of the second-level DCT of the DC coefficients of a
	// group of 4x4 blocks (classes 16..31).
	ntcClasses = 2 * blockSize
)

// ntcSkip is the smallest sigma/step, in 1/256 octave, of a coded class:
// classes below it are set to zero, as reverse water-filling does. (Raising
// it to -1 octave changed nothing measurable; to -0.5 it cost 0.6 dB at 8x.)
const ntcSkip = -2 * 256

func init() {
	Register(Spec{
		Name:    "ntc",
		ID:      IDNTC,
		Learned: true,
		Summary: "learned block transform codec: PCA + 4x4 block DCT + rANS, fitted per dataset",
		New:     newNTC,
		Load:    loadNTC,
	})
}

// ntcCodec is a fitted learned codec. It is immutable once made.
type ntcCodec struct {
	layout Layout
	dim, k int
	mean   []float32 // D, float16 values
	basis  []float32 // K x D, the decoded rows
	bq     []int8    // K x D, the stored basis
	hi16   int       // rows below hi16 are stored as float16 (bq unused)
	bscale []uint16  // K float16 row scales
	// hh says the basis is stored as Householder vectors (model version
	// 9): row j of bq holds vector j's codes at entries j+1..D-1, bscale
	// their scales, hbits their codes' widths, and hi16 is 0.
	hh     bool
	hbits  []uint8
	packed *packedMat // basis packed for the inverse transform's product
	sig    []uint8    // K x ntcClasses sigma codes
	// csc holds the class step codes of a model of version 7 (K x
	// ntcClasses, component-major), nil before; cscale their multipliers
	// 2^(code/8) (ntcClasses x K, class-major): the encoder divides
	// coefficient (cl, k) by it before quantizing and the decoder
	// multiplies it back.
	csc    []int8
	cscale []float32
	// cmul holds the multipliers laid out as one sample's coefficients
	// (per block, class-major; 1 where a block has no such frequency), for
	// the decoder's one vector product.
	cmul []float32
	// mver is the model version: 7 (6 with class step codes), 6, 5 (the
	// same without prefix means), or 4 for the models of files with
	// payload versions 4 and 5, which only decode.
	mver uint8
	// pmean holds the prefix tokens' means (Prefix x D, float16 values;
	// model version 6, nil before): a prefix row codes the token minus
	// its mean.
	pmean []float32
	tlo   uint8 // tables of buckets [tlo, thi) are stored, the rest uniform
	thi   uint8
	// Model version 5: a table per bucket and quantizer, their decoding
	// table and the encoder's forms.
	atabs [ntcBuckets][2]ansTable
	adec  *ansDecTables
	// cent holds the centroid offsets of buckets [tlo, thi), quantizer,
	// magnitudes 1, 2 and >= 3, in 1/128 of a step; recon6 the
	// reconstruction table made of them.
	cent    [ntcBuckets][2][3]int8
	recon6  *[ansReconSize]float32
	aenc    []*ansEncTable // by table index, made on first use
	encOnce sync.Once
	acost   *ansCost
	// Model version 4: a table per bucket and its decoding table.
	tabs [ntcBuckets]ransTable
	lut  []uint32

	stepCode int32
	qkind    uint8
	qtarget  float32
	// lambda is the trellis' rate weight in 1/256 of a squared step per
	// bit (model version 5; a rounding offset in version 4).
	lambda uint8
	othr   float32 // outlier threshold on the squared distance from the mean; 0 for none

	blocks []blockGeom // grid blocks in coding order
	groups []groupGeom
	model  []byte
	bufs   sync.Pool
	fit    *fitInfo    // while fitting only
	task   *TaskMetric // the metric the model was fitted in, nil for none

	plansMu sync.Mutex
	plans   []decPlanEntry // recently used decoding plans, oldest first
	dev     ntcDevice      // tables for device decoders, made on first use

	fwdOnce sync.Once
	fwd     []float32 // D x K forward projection, made on first use (forward)
}

// blockGeom is one block of the grid.
type blockGeom struct {
	tok    [blockSize]int32 // token index (within the sample) per position py*4+px
	bh, bw uint8
	pos    uint8 // position i*4+j in its group of blocks
}

// class returns the coefficient class of frequency u of the block: u for
// an AC frequency, blockSize plus the block's position in its group for
// the DC, which the group's DCT turns into that DC-group frequency.
func (g *blockGeom) class(u int) int {
	if u == 0 {
		return blockSize + int(g.pos)
	}
	return u
}

// groupGeom is a group of up to 4x4 blocks whose DC coefficients go
// through a second-level DCT.
type groupGeom struct {
	blk    [blockSize]int32 // block index per position i*4+j
	gh, gw uint8
}

var dctMats = func() (m [blockSide + 1][blockSide][blockSide]float32) {
	for n := 1; n <= blockSide; n++ {
		for f := range n {
			s := math.Sqrt(2 / float64(n))
			if f == 0 {
				s = math.Sqrt(1 / float64(n))
			}
			for p := range n {
				m[n][f][p] = float32(s * math.Cos(math.Pi*float64(2*p+1)*float64(f)/float64(2*n)))
			}
		}
	}
	return m
}()

// classOrder lists the 16 frequencies by increasing fy+fx.
var classOrder = func() (o [blockSize]uint8) {
	i := 0
	for s := 0; s <= 2*(blockSide-1); s++ {
		for fy := range blockSide {
			fx := s - fy
			if fx >= 0 && fx < blockSide {
				o[i] = uint8(fy*blockSide + fx)
				i++
			}
		}
	}
	return o
}()

func gridBlocks(l Layout) ([]blockGeom, []groupGeom) {
	var bs []blockGeom
	nby := (l.GridH + blockSide - 1) / blockSide
	nbx := (l.GridW + blockSide - 1) / blockSide
	for by := range nby {
		for bx := range nbx {
			g := blockGeom{
				bh:  uint8(min(blockSide, l.GridH-by*blockSide)),
				bw:  uint8(min(blockSide, l.GridW-bx*blockSide)),
				pos: uint8(by%blockSide*blockSide + bx%blockSide),
			}
			for py := range int(g.bh) {
				for px := range int(g.bw) {
					g.tok[py*blockSide+px] = int32(l.Prefix + (by*blockSide+py)*l.GridW + bx*blockSide + px)
				}
			}
			bs = append(bs, g)
		}
	}
	var gs []groupGeom
	for gy := 0; gy < nby; gy += blockSide {
		for gx := 0; gx < nbx; gx += blockSide {
			g := groupGeom{gh: uint8(min(blockSide, nby-gy)), gw: uint8(min(blockSide, nbx-gx))}
			for i := range int(g.gh) {
				for j := range int(g.gw) {
					g.blk[i*blockSide+j] = int32((gy+i)*nbx + gx + j)
				}
			}
			gs = append(gs, g)
		}
	}
	return bs, gs
}

func (c *ntcCodec) Name() string   { return "ntc" }
func (c *ntcCodec) Layout() Layout { return c.layout }
func (c *ntcCodec) Model() []byte  { return c.model }
func (c *ntcCodec) Params() map[string]any {
	p := map[string]any{
		"components": c.k,
		"block":      "4x4 DCT, 4x4-block DCT of the DCs",
		"step":       stepOf(c.stepCode),
		"entropy":    "rANS, 8 or 16 lanes, static tables per sigma/step class and quantizer",
		"quantizer":  "dependent (4-state trellis), centroid reconstruction",
		"prefix":     "int8 per token",
		"outliers":   "int8 per token",
	}
	if c.csc != nil {
		p["class_steps"] = "per class and component, from the task metric's gradient fields"
	}
	// (Short: the parameters go into every file's metadata.)
	switch {
	case c.hh && c.k > 0:
		p["basis"] = fmt.Sprintf("householder, %d-%d bits", slices.Min(c.hbits), slices.Max(c.hbits))
	case c.hi16 > 0:
		p["basis"] = fmt.Sprintf("int8 rows, %d float16", c.hi16)
	default:
		p["basis"] = "int8 rows"
	}
	if c.task != nil {
		p["task_metric"] = c.task.params()
	}
	switch c.qkind {
	case qualitySNR:
		p["quality"] = fmt.Sprintf("snr=%g", c.qtarget)
	case qualityCos:
		p["quality"] = fmt.Sprintf("cos=%g", c.qtarget)
	}
	return p
}

// ModelVersion implements Versioned: 4 to 9 (see the format above).
func (c *ntcCodec) ModelVersion() int { return int(c.mver) }

const (
	qualityNone = 0
	qualitySNR  = 1
	qualityCos  = 2
)

func stepOf(code int32) float32 { return float32(math.Exp2(float64(code) / 256)) }

// plainFrom returns the first bucket the codec's model codes plainly.
func (c *ntcCodec) plainFrom() int { return ansPlainFrom(c.mver) }

// serialize builds the model blob from the codec's fields (model version
// 9, or the version of the model a codec was loaded from: 8, 7, 6 or 5).
func (c *ntcCodec) serialize() []byte {
	b := make([]byte, ntcModelHeader, modelSize(c.dim, c.k, c.basisBytes(c.k), len(c.pmean), tableBytes(c.mver, int(c.tlo), int(c.thi)))+classStepBytes(c.csc != nil, c.k))
	b[0] = c.mver
	if c.mver >= 8 && c.csc != nil {
		b[1] |= ntcFlagClassSteps
	}
	if c.hh {
		b[1] |= ntcFlagHouseholder
	}
	binary.LittleEndian.PutUint16(b[2:], uint16(c.dim))
	binary.LittleEndian.PutUint16(b[4:], uint16(c.k))
	binary.LittleEndian.PutUint32(b[6:], uint32(c.stepCode))
	b[10] = c.qkind
	binary.LittleEndian.PutUint32(b[11:], math.Float32bits(c.qtarget))
	b[15] = c.lambda
	binary.LittleEndian.PutUint16(b[16:], uint16(c.hi16))
	binary.LittleEndian.PutUint32(b[18:], math.Float32bits(c.othr))
	for _, v := range c.mean {
		b = binary.LittleEndian.AppendUint16(b, f16.FromFloat32(v))
	}
	for _, v := range c.pmean {
		b = binary.LittleEndian.AppendUint16(b, f16.FromFloat32(v))
	}
	for _, v := range c.basis[:c.hi16*c.dim] {
		b = binary.LittleEndian.AppendUint16(b, f16.FromFloat32(v))
	}
	if c.hh {
		b = appendHH(b, c.bq, c.bscale, c.hbits, c.dim)
	}
	for k := c.hi16; k < c.k && !c.hh; k++ {
		b = binary.LittleEndian.AppendUint16(b, c.bscale[k])
		for _, v := range c.bq[k*c.dim : (k+1)*c.dim] {
			b = append(b, byte(v))
		}
	}
	b = append(b, c.sig...)
	b = append(b, c.tlo, c.thi)
	pb := c.plainFrom()
	for i := int(c.tlo); i < int(c.thi); i++ {
		if ansPlain(i, pb) {
			for _, f := range c.atabs[i][0].freq {
				b = binary.LittleEndian.AppendUint16(b, f)
			}
			continue
		}
		for q := range 2 {
			f := &c.atabs[i][q].freq
			for _, v := range append(f[:ansEsc:ansEsc], f[ansEsc]) {
				b = binary.LittleEndian.AppendUint16(b, v)
			}
		}
	}
	for i := c.tlo; i < c.thi; i++ {
		for q := range 2 {
			for _, o := range c.cent[i][q] {
				b = append(b, byte(o))
			}
		}
	}
	for _, v := range c.csc {
		b = append(b, byte(v))
	}
	return b
}

// classStepBytes returns the size of the class step codes of a model with
// k components: none unless it has them (has).
func classStepBytes(has bool, k int) int {
	if has {
		return ntcClasses * k
	}
	return 0
}

// setClassSteps sets the class step codes (K x ntcClasses,
// component-major; nil for none) and their multipliers (per coefficient
// of the grid's blocks, c.blocks), and, for a model of version 6 or 7,
// the version that stores them (version 8 has a flag for them).
func (c *ntcCodec) setClassSteps(csc []int8) {
	c.csc, c.cscale, c.cmul = csc, nil, nil
	if csc == nil {
		if c.mver == 7 {
			c.mver = 6
		}
		return
	}
	if c.mver < 8 {
		c.mver = 7
	}
	K := c.k
	c.cscale = make([]float32, ntcClasses*K)
	for k := range K {
		for cl := range ntcClasses {
			c.cscale[cl*K+k] = float32(math.Exp2(float64(csc[k*ntcClasses+cl]) / 8))
		}
	}
	c.cmul = make([]float32, len(c.blocks)*blockSize*K)
	for i := range c.cmul {
		c.cmul[i] = 1
	}
	for bi := range c.blocks {
		g := &c.blocks[bi]
		for fy := range int(g.bh) {
			for fx := range int(g.bw) {
				u := fy*blockSide + fx
				copy(c.cmul[(bi*blockSize+u)*K:][:K], c.cscale[g.class(u)*K:][:K])
			}
		}
	}
}

// modelSize returns the size of a model of d dims, k components of which
// h are stored as float16, pm prefix mean values (P x D in version 6, 0
// before) and frequency tables of nt bytes.
func modelSize(d, k, basis, pm, nt int) int {
	return ntcModelHeader + 2*d + 2*pm + basis + ntcClasses*k + 2 + nt
}

// rowBytes returns the bytes of a basis of k rows in d dimensions, h of
// them float16 and the rest int8 with a float16 scale.
func rowBytes(d, k, h int) int { return h*2*d + (k-h)*(2+d) }

// basisBytes returns the bytes of the codec's first k basis rows as its
// model stores them.
func (c *ntcCodec) basisBytes(k int) int {
	if c.hh {
		return hhBytes(c.dim, c.hbits[:k])
	}
	return rowBytes(c.dim, k, min(k, c.hi16))
}

// tableBytes returns the size of the stored frequency tables of buckets
// [lo, hi): a plain bucket's 32 frequencies, a trellis bucket's 17 for
// each quantizer, and the bucket's 6 centroid offsets (model version 5);
// 16 frequencies per bucket in version 4.
func tableBytes(mver uint8, lo, hi int) int {
	if mver == 4 {
		return (hi - lo) * ransSyms * 2
	}
	n := 0
	pb := ansPlainFrom(mver)
	for b := lo; b < hi; b++ {
		if ansPlain(b, pb) {
			n += ansSyms * 2
		} else {
			n += 2 * ansSymTab * 2
		}
		n += 6 // the bucket's centroid offsets
	}
	return n
}

func loadNTC(l Layout, model []byte) (Codec, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if len(model) < ntcModelHeader {
		return nil, fmt.Errorf("%w: ntc model of %d bytes", ErrCorrupt, len(model))
	}
	mver, flags := model[0], model[1]
	if mver < 4 || mver > ntcModelVersion || flags&^ntcFlagsOf(mver) != 0 {
		return nil, fmt.Errorf("%w: ntc model version %d flags %d", ErrCorrupt, model[0], model[1])
	}
	hh := flags&ntcFlagHouseholder != 0
	// Model version 7 has class step codes, version 8 when its flag says.
	steps := mver == 7 || flags&ntcFlagClassSteps != 0

	d := int(binary.LittleEndian.Uint16(model[2:]))
	k := int(binary.LittleEndian.Uint16(model[4:]))
	h := int(binary.LittleEndian.Uint16(model[16:]))
	if d != l.Dim || k > d || h > k {
		return nil, fmt.Errorf("%w: ntc model for dim %d with %d components, layout dim %d", ErrCorrupt, d, k, l.Dim)
	}
	if hh && h != 0 {
		return nil, fmt.Errorf("%w: ntc model with a Householder basis and %d float16 rows", ErrCorrupt, h)
	}
	pm := 0
	if mver >= 6 {
		pm = l.Prefix * d
	}
	basis := rowBytes(d, k, h)
	if hh {
		// The vectors' code widths come first (K bytes).
		at := ntcModelHeader + 2*d + 2*pm
		if len(model) < at+k {
			return nil, fmt.Errorf("%w: ntc model has %d bytes, want at least %d", ErrCorrupt, len(model), at+k)
		}
		for j, w := range model[at : at+k] {
			if w < 2 || w > 8 {
				return nil, fmt.Errorf("%w: ntc Householder vector %d has %d-bit codes (model byte %d)", ErrCorrupt, j, w, at+j)
			}
		}
		basis = hhBytes(d, model[at:at+k])
	}
	fixed := modelSize(d, k, basis, pm, 0)
	if len(model) < fixed {
		return nil, fmt.Errorf("%w: ntc model has %d bytes, want at least %d", ErrCorrupt, len(model), fixed)
	}
	tlo, thi := model[fixed-2], model[fixed-1]
	if tlo > thi || thi > ntcBuckets {
		return nil, fmt.Errorf("%w: ntc rANS tables %d..%d", ErrCorrupt, tlo, thi)
	}
	if want := modelSize(d, k, basis, pm, tableBytes(mver, int(tlo), int(thi))) + classStepBytes(steps, k); len(model) != want {
		return nil, fmt.Errorf("%w: ntc model has %d bytes, want %d", ErrCorrupt, len(model), want)
	}
	c := &ntcCodec{
		layout:   l,
		dim:      d,
		k:        k,
		stepCode: int32(binary.LittleEndian.Uint32(model[6:])),
		qkind:    model[10],
		qtarget:  math.Float32frombits(binary.LittleEndian.Uint32(model[11:])),
		lambda:   model[15],
		mver:     mver,
		hh:       hh,
		othr:     math.Float32frombits(binary.LittleEndian.Uint32(model[18:])),
	}
	c.blocks, c.groups = gridBlocks(l)
	if !(c.othr >= 0 && c.othr <= math.MaxFloat32) {
		return nil, fmt.Errorf("%w: ntc outlier threshold %g", ErrCorrupt, c.othr)
	}
	if c.stepCode < -stepCodeMax || c.stepCode > stepCodeMax {
		return nil, fmt.Errorf("%w: ntc step code %d", ErrCorrupt, c.stepCode)
	}
	if c.qkind > qualityCos || !(c.qtarget >= -1000 && c.qtarget <= 1000) {
		return nil, fmt.Errorf("%w: ntc quality target %d %g", ErrCorrupt, c.qkind, c.qtarget)
	}
	p := ntcModelHeader
	read := func(n int) ([]float32, error) {
		v := make([]float32, n)
		for i := range v {
			h := binary.LittleEndian.Uint16(model[p:])
			if !f16.IsFinite16(h) {
				return nil, fmt.Errorf("%w: ntc model value %#04x at byte %d", ErrCorrupt, h, p)
			}
			v[i] = f16.ToFloat32(h)
			p += 2
		}
		return v, nil
	}
	var err error
	if c.mean, err = read(d); err != nil {
		return nil, err
	}
	if pm > 0 {
		if c.pmean, err = read(pm); err != nil {
			return nil, err
		}
	}
	c.hi16 = h
	if c.basis, err = read(h * d); err != nil {
		return nil, err
	}
	if hh {
		if c.bq, c.bscale, c.hbits, err = readHH(model[p:p+basis], k, d); err != nil {
			return nil, err
		}
		p += basis
	} else {
		c.bq = make([]int8, k*d)
		c.bscale = make([]uint16, k)
		for i := h; i < k; i++ {
			h := binary.LittleEndian.Uint16(model[p:])
			if !f16.IsFinite16(h) || h&0x8000 != 0 {
				return nil, fmt.Errorf("%w: ntc basis scale %#04x", ErrCorrupt, h)
			}
			c.bscale[i] = h
			for j := range d {
				c.bq[i*d+j] = int8(model[p+2+j])
			}
			p += 2 + d
		}
	}
	c.sig = append([]uint8(nil), model[p:p+ntcClasses*k]...)
	p += ntcClasses*k + 2
	c.tlo, c.thi = tlo, thi
	if mver == 4 {
		c.tabs = uniformTables()
		for i := tlo; i < thi; i++ {
			for j := range c.tabs[i].freq {
				c.tabs[i].freq[j] = binary.LittleEndian.Uint16(model[p:])
				p += 2
			}
			if !c.tabs[i].fill() {
				return nil, fmt.Errorf("%w: ntc rANS table %d", ErrCorrupt, i)
			}
		}
	} else {
		c.atabs = uniformANSTables()
		pb := ansPlainFrom(mver)
		for i := int(tlo); i < int(thi); i++ {
			for q := range 2 {
				t := &c.atabs[i][q].freq
				switch {
				case ansPlain(i, pb) && q == 1:
					continue // quantizer 0's table only
				case ansPlain(i, pb):
					for j := range t {
						t[j] = binary.LittleEndian.Uint16(model[p:])
						p += 2
					}
				default:
					for j := range ansSymTab {
						t[j] = binary.LittleEndian.Uint16(model[p:])
						p += 2
					}
					copy(t[ansEsc+1:], t[1:ansEsc])
				}
				sum := 0
				for _, f := range t {
					if f == 0 {
						sum = -1 << 20
					}
					sum += int(f)
				}
				if sum != ansM {
					return nil, fmt.Errorf("%w: ntc frequency table %d/%d", ErrCorrupt, i, q)
				}
			}
		}
		for i := int(tlo); i < int(thi); i++ {
			for j := range 6 {
				c.cent[i][j/3][j%3] = int8(model[p])
				p++
			}
		}
	}
	if steps {
		csc := make([]int8, ntcClasses*k)
		for i := range csc {
			v := int8(model[p+i])
			if v < -ntcClassStepMax || v > ntcClassStepMax || (i%ntcClasses == 0 && v != 0) {
				return nil, fmt.Errorf("%w: ntc class step code %d of component %d, class %d (byte %d)", ErrCorrupt, v, i/ntcClasses, i%ntcClasses, p+i)
			}
			csc[i] = v
		}
		c.setClassSteps(csc)
	}
	c.finish()
	c.model = append([]byte(nil), model...)
	return c, nil
}

// finish derives the codec's tables from its model fields.
func (c *ntcCodec) finish() {
	if c.hh {
		c.basis = hhBasis(c.bq, c.bscale, c.k, c.dim)
	} else {
		c.basis = append(c.basis[:c.hi16*c.dim:c.hi16*c.dim], make([]float32, (c.k-c.hi16)*c.dim)...)
		for k := c.hi16; k < c.k; k++ {
			sc := f16.ToFloat32(c.bscale[k])
			for d := range c.dim {
				c.basis[k*c.dim+d] = float32(c.bq[k*c.dim+d]) * sc
			}
		}
	}
	c.packed = packMat(c.basis, c.k, c.dim)
	c.fwdOnce, c.fwd = sync.Once{}, nil
	if c.mver == 4 {
		c.lut = ransLUT(c.tabs[:])
		return
	}
	c.adec = newANSDecTables(&c.atabs)
	c.recon6 = ansRecon(&c.cent)
	c.acost = ansCostOf(&c.atabs)
	c.encOnce = sync.Once{}
}

// encTables returns the encoder's tables by table index (bucket*2 +
// quantizer), made on first use.
func (c *ntcCodec) encTables() []*ansEncTable {
	c.encOnce.Do(func() { c.aenc = encTablesOf(&c.atabs) })
	return c.aenc
}

// plan is the list of coded coefficient classes for one step code, in
// coding order, with their context bucket.
type planEntry struct {
	u, k   uint16 // coefficient slot and component
	cls    uint8  // class: u for AC, 16 + group frequency for DC
	bucket uint8
	shift  uint8 // low bits of the magnitude sent raw: lowBits(bucket)
}

// lowBits returns how many low bits of a magnitude go to the raw bit
// stream in bucket b: about log2(sigma/step) - 3, so that the rANS symbol
// (the magnitude shifted right by that much) rarely escapes and the raw
// low bits are nearly uniform.
func lowBits(b int) uint8 { return uint8(max(0, b>>2-3)) }

func (c *ntcCodec) plan(stepCode int32) []planEntry {
	var pl []planEntry
	pb := c.plainFrom()
	// DC classes first (group frequencies in zigzag order), then the AC
	// frequencies of a block.
	var classes []uint8
	for _, u := range classOrder {
		classes = append(classes, blockSize+u)
	}
	classes = append(classes, classOrder[1:]...)
	for _, cl := range classes {
		u := uint16(cl)
		if cl >= blockSize {
			u = 0
		}
		for k := range c.k {
			lg := (int32(c.sig[k*ntcClasses+int(cl)])-128)*32 - stepCode
			if lg < ntcSkip {
				continue
			}
			b := int(min((lg-ntcBase)>>ntcBucketShift, ntcBuckets-1))
			sh := ansLowBits(b, pb)
			if c.mver == 4 {
				sh = lowBits(b)
			}
			pl = append(pl, planEntry{u: u, k: uint16(k), cls: cl, bucket: uint8(b), shift: sh})
		}
	}
	return pl
}

// shapeIndex returns, for every block, the indices of the plan entries
// present in the block: its one DC class (by its position in its group)
// and the AC frequencies of its shape (edge blocks lack high ones).
func (c *ntcCodec) shapeIndex(pl []planEntry) [][]int32 {
	byShape := map[[3]uint8][]int32{}
	out := make([][]int32, len(c.blocks))
	for bi := range c.blocks {
		g := &c.blocks[bi]
		key := [3]uint8{g.bh, g.bw, g.pos}
		idx, ok := byShape[key]
		if !ok {
			idx = make([]int32, 0, len(pl))
			for i := range pl {
				e := &pl[i]
				if e.cls >= blockSize && e.cls-blockSize == g.pos ||
					e.cls < blockSize && e.u/blockSide < uint16(g.bh) && e.u%blockSide < uint16(g.bw) {
					idx = append(idx, int32(i))
				}
			}
			byShape[key] = idx
		}
		out[bi] = idx
	}
	return out
}

// scratch holds per-call buffers.
type ntcScratch struct {
	coef []float32 // one sample's blocks, blockSize x K each
	tmp  []float32
	y    []float32 // one sample's grid tokens in PCA coordinates, K each (padded to whole kernel groups)
	ytmp []float32 // the product's last rows (packedMat.mulAdd's tmp)
	q    []int32   // one block's symbols
	rans []byte    // the rANS stream and ransPad zero bytes
	bits []byte    // the raw bit stream and ransPad zero bytes
	dec  sliceDecoder
}

func (c *ntcCodec) scratch() *ntcScratch {
	s, _ := c.bufs.Get().(*ntcScratch)
	if s == nil {
		l := c.layout
		s = &ntcScratch{
			coef: make([]float32, len(c.blocks)*blockSize*c.k),
			tmp:  make([]float32, blockSize*c.k),
			y:    make([]float32, gemmPadRows(l.GridH*l.GridW)*c.k),
			ytmp: make([]float32, gemmRows*c.dim),
		}
	}
	return s
}

// ntcChunk is a parsed payload: its header checked and its sections
// located, before any coefficient is decoded.
type ntcChunk struct {
	n        int
	stepCode int32
	step     float32
	recon    [ntcBuckets][4]float32
	prefix   []byte // n*Prefix rows of 2+D bytes: float16 scale, D int8
	nout     int
	outTok   []int32 // nout outlier token indices (s*Tokens+t)
	outRows  []byte  // nout rows as prefix
	version  uint8
	slices   []ntcSlice // the coefficient streams
	// Version 6: the lanes of a slice, and the reconstruction table
	// (ansRecon).
	lanes  int
	recon6 *[ansReconSize]float32
}

// ntcSlice is one slice's streams (unpadded) and the blocks [from, to) of
// the chunk, in coding order, that it codes.
type ntcSlice struct {
	rans, bits []byte
	from, to   int
}

// rowScale returns the float16 scale of an int8 row, checked.
func rowScale(row []byte, what string) (float32, error) {
	h := uint16(row[0]) | uint16(row[1])<<8
	if !f16.IsFinite16(h) || h&0x8000 != 0 {
		return 0, fmt.Errorf("%w: ntc %s scale %#04x", ErrCorrupt, what, h)
	}
	return f16.ToFloat32(h), nil
}

// checkRows checks the scale of every int8 row of rows.
func checkRows(rows []byte, dim int, what string) error {
	for r := 0; r < len(rows); r += 2 + dim {
		if _, err := rowScale(rows[r:], what); err != nil {
			return err
		}
	}
	return nil
}

// parseHeader reads the step code and the centroid offsets at the start of
// b (the payload after its version and flags bytes).
func (ch *ntcChunk) parseHeader(b []byte) error {
	ch.stepCode = int32(binary.LittleEndian.Uint32(b))
	if ch.stepCode < -stepCodeMax || ch.stepCode > stepCodeMax {
		return fmt.Errorf("%w: ntc step code %d", ErrCorrupt, ch.stepCode)
	}
	ch.step = stepOf(ch.stepCode)
	return nil
}

// parseOffsets reads the centroid offsets (ntcBuckets*3 int8).
func (ch *ntcChunk) parseOffsets(b []byte) {
	var off [ntcBuckets][3]int8
	for i := range off {
		for j := range off[i] {
			off[i][j] = int8(b[i*3+j])
		}
	}
	ch.recon = reconTable(&off)
}

// parse checks a payload of n samples and locates its sections. Every
// check a decoder needs before it touches the coefficient streams is made
// here, so that the CPU decoder and the staging for a device decoder
// accept and reject the same payloads.
func (c *ntcCodec) parse(payload []byte, n int) (ch ntcChunk, err error) {
	l := c.layout
	if _, err := l.CheckCount(n); err != nil {
		return ch, err
	}
	ch.n = n
	if len(payload) < 2 {
		return ch, fmt.Errorf("%w: ntc payload of %d bytes", ErrCorrupt, len(payload))
	}
	ch.version = payload[0]
	if payload[1] != 0 {
		return ch, fmt.Errorf("%w: ntc payload version %d flags %d", ErrCorrupt, payload[0], payload[1])
	}
	switch ch.version {
	case ntcPayloadVersion:
		return ch, c.parseV6(&ch, payload)
	case 4, 5:
		return ch, c.parseV5(&ch, payload)
	}
	return ch, fmt.Errorf("%w: ntc payload version %d flags %d", ErrCorrupt, payload[0], payload[1])
}

// parseV5 parses a payload of version 5 (or 4): the chunk's sections one
// after the other.
func (c *ntcCodec) parseV5(ch *ntcChunk, payload []byte) error {
	l := c.layout
	n := ch.n
	// Sizes in int64: on 32-bit platforms they could overflow int.
	prefixBytes := int64(n) * int64(l.Prefix) * int64(2+l.Dim)
	if int64(len(payload)) < ntcPayloadHeaderV5+prefixBytes+4+8 {
		return fmt.Errorf("%w: ntc payload of %d bytes for %d samples", ErrCorrupt, len(payload), n)
	}
	if err := ch.parseHeader(payload[2:]); err != nil {
		return err
	}
	ch.parseOffsets(payload[6:])
	p := ntcPayloadHeaderV5
	ch.prefix = payload[p : p+int(prefixBytes)]
	if err := checkRows(ch.prefix, l.Dim, "prefix"); err != nil {
		return err
	}
	p += int(prefixBytes)
	// Outlier tokens.
	nout := int(binary.LittleEndian.Uint32(payload[p:]))
	p += 4
	if int64(nout) > int64(n)*int64(l.Tokens-l.Prefix) || int64(nout)*int64(6+l.Dim) > int64(len(payload)-p) {
		return fmt.Errorf("%w: ntc payload claims %d outlier tokens", ErrCorrupt, nout)
	}
	ch.nout = nout
	ch.outTok = make([]int32, nout)
	ch.outRows = payload[p+4*nout : p+nout*(6+l.Dim)]
	prev := -1
	for i := range nout {
		t := int(binary.LittleEndian.Uint32(payload[p+4*i:]))
		if t <= prev || t >= n*l.Tokens || t%l.Tokens < l.Prefix {
			return fmt.Errorf("%w: ntc outlier token index %d", ErrCorrupt, t)
		}
		prev = t
		ch.outTok[i] = int32(t)
	}
	if err := checkRows(ch.outRows, l.Dim, "outlier"); err != nil {
		return err
	}
	p += nout * (6 + l.Dim)
	coded := len(c.blocks) > 0 && c.k > 0
	if ch.version == 4 {
		return c.parseV4(ch, payload[p:])
	}
	if len(payload)-p < 8 {
		return fmt.Errorf("%w: ntc payload of %d bytes for %d samples", ErrCorrupt, len(payload), n)
	}
	perSlice := int64(binary.LittleEndian.Uint32(payload[p:]))
	ns := int64(binary.LittleEndian.Uint32(payload[p+4:]))
	p += 8
	nb := int64(n) * int64(len(c.blocks))
	want := int64(0)
	if coded {
		if perSlice < 1 {
			return fmt.Errorf("%w: ntc slices of %d blocks", ErrCorrupt, perSlice)
		}
		want = (nb + perSlice - 1) / perSlice
	}
	if ns != want || 8*ns > int64(len(payload)-p) {
		return fmt.Errorf("%w: ntc payload has %d slices, want %d", ErrCorrupt, ns, want)
	}
	table := payload[p : p+8*int(ns)]
	p += 8 * int(ns)
	ch.slices = make([]ntcSlice, ns)
	for i := range ch.slices {
		rl := int64(binary.LittleEndian.Uint32(table[8*i:]))
		bl := int64(binary.LittleEndian.Uint32(table[8*i+4:]))
		if rl < 8 || rl+bl > int64(len(payload)-p) {
			return fmt.Errorf("%w: ntc slice %d of %d+%d bytes, %d left", ErrCorrupt, i, rl, bl, len(payload)-p)
		}
		from := int64(i) * perSlice
		ch.slices[i] = ntcSlice{rans: payload[p : p+int(rl)], bits: payload[p+int(rl) : p+int(rl+bl)], from: int(from), to: int(min(nb, from+perSlice))}
		p += int(rl + bl)
	}
	if p != len(payload) {
		return fmt.Errorf("%w: ntc payload has %d bytes after its slices", ErrCorrupt, len(payload)-p)
	}
	return nil
}

// parseV4 locates the single coefficient stream of a version 4 payload,
// whose rest is b.
func (c *ntcCodec) parseV4(ch *ntcChunk, b []byte) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: ntc payload too short for %d samples", ErrCorrupt, ch.n)
	}
	rlen := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if rlen < 8 || rlen > len(b) {
		return fmt.Errorf("%w: ntc rANS stream of %d bytes, %d left", ErrCorrupt, rlen, len(b))
	}
	if len(c.blocks) == 0 || c.k == 0 {
		if rlen != 8 || rlen != len(b) {
			return fmt.Errorf("%w: ntc payload has %d bytes of coefficients, want none", ErrCorrupt, len(b)-8)
		}
		return nil
	}
	ch.slices = []ntcSlice{{rans: b[:rlen], bits: b[rlen:], from: 0, to: ch.n * len(c.blocks)}}
	return nil
}

// parseV6 parses a sample-major payload (version 6): its head, then one
// part per sample.
func (c *ntcCodec) parseV6(ch *ntcChunk, payload []byte) error {
	l := c.layout
	n := ch.n
	if c.mver < 5 {
		return fmt.Errorf("%w: ntc payload version 6 with a model of version %d", ErrCorrupt, c.mver)
	}
	head, spp, err := c.parseHeadV6(payload, n)
	if err != nil {
		return err
	}
	if err := ch.parseHeader(payload[2:]); err != nil {
		return err
	}
	ch.lanes = int(payload[8])
	ch.recon6 = c.recon6
	ch.prefix = make([]byte, 0, n*l.Prefix*(2+l.Dim))
	ch.slices = make([]ntcSlice, 0, n*spp)
	p := head
	for s := range n {
		size, err := c.parsePart(payload[p:], s, spp, ch)
		if err != nil {
			return err
		}
		p += size
	}
	if p != len(payload) {
		return fmt.Errorf("%w: ntc payload has %d bytes after its %d samples", ErrCorrupt, len(payload)-p, n)
	}
	ch.nout = len(ch.outTok)
	return nil
}

// parseHeadV6 checks the head of a version 6 payload of n samples against
// the payload's size and returns its length and the slices per sample.
func (c *ntcCodec) parseHeadV6(payload []byte, n int) (int, int, error) {
	l := c.layout
	if len(payload) < ntcHeadV6 {
		return 0, 0, fmt.Errorf("%w: ntc payload of %d bytes", ErrCorrupt, len(payload))
	}
	spp := int(binary.LittleEndian.Uint16(payload[6:]))
	if coded := c.slicesPerSample() > 0; coded && (spp < 1 || spp > len(c.blocks)) || !coded && spp != 0 {
		return 0, 0, fmt.Errorf("%w: ntc payload has %d slices per sample of %d blocks", ErrCorrupt, spp, len(c.blocks))
	}
	if lanes := payload[8]; !ansLanesValid(int(lanes)) {
		return 0, 0, fmt.Errorf("%w: ntc payload has slices of %d lanes", ErrCorrupt, lanes)
	}
	head := ntcHeadV6
	// Every part holds at least its prefix rows, its outlier count and
	// two lengths per slice.
	if minPart := int64(l.Prefix)*int64(2+l.Dim) + 1 + 2*int64(spp); int64(n)*minPart > int64(len(payload)-head) {
		return 0, 0, fmt.Errorf("%w: ntc payload of %d bytes for %d samples", ErrCorrupt, len(payload), n)
	}
	return head, spp, nil
}

// uvarint reads an unsigned varint of at most max from the start of b and
// returns it with its length.
func uvarint(b []byte, max uint64, what string) (int, int, error) {
	v, k := binary.Uvarint(b)
	if k <= 0 || v > max {
		return 0, 0, fmt.Errorf("%w: ntc %s", ErrCorrupt, what)
	}
	return int(v), k, nil
}

// parsePart reads the part of sample s at the start of b and returns its
// size. With ch nil it only finds the part's end (Split); otherwise it
// checks the part and appends its rows and slices to ch.
func (c *ntcCodec) parsePart(b []byte, s, spp int, ch *ntcChunk) (int, error) {
	l := c.layout
	row := 2 + l.Dim
	bad := func(what string) error { return fmt.Errorf("%w: ntc sample %d: %s", ErrCorrupt, s, what) }
	p := l.Prefix * row
	if len(b) < p {
		return 0, bad("part truncated in its prefix tokens")
	}
	if ch != nil {
		if err := checkRows(b[:p], l.Dim, "prefix"); err != nil {
			return 0, err
		}
		ch.prefix = append(ch.prefix, b[:p]...)
	}
	grid := l.Tokens - l.Prefix
	m, k, err := uvarint(b[p:], uint64(grid), "outlier count")
	if err != nil {
		return 0, bad(err.Error())
	}
	p += k
	t := l.Prefix - 1
	for range m {
		gap, k, err := uvarint(b[p:], uint64(grid), "outlier token index")
		if err != nil || t+1+gap >= l.Tokens {
			return 0, bad("outlier token index out of range")
		}
		t += 1 + gap
		p += k
		if ch != nil {
			ch.outTok = append(ch.outTok, int32(s*l.Tokens+t))
		}
	}
	if len(b)-p < m*row {
		return 0, bad("part truncated in its outlier tokens")
	}
	if ch != nil {
		if err := checkRows(b[p:p+m*row], l.Dim, "outlier"); err != nil {
			return 0, err
		}
		ch.outRows = append(ch.outRows, b[p:p+m*row]...)
	}
	p += m * row
	// The slices' lengths, then their streams.
	q := p
	var total int
	for range 2 * spp {
		v, k, err := uvarint(b[q:], uint64(len(b)), "slice length")
		if err != nil {
			return 0, bad(err.Error())
		}
		q += k
		total += v
		if total > len(b) {
			return 0, bad("slices longer than the payload")
		}
	}
	if total > len(b)-q {
		return 0, bad(fmt.Sprintf("slices of %d bytes, %d left", total, len(b)-q))
	}
	if ch == nil {
		return q + total, nil
	}
	nb := len(c.blocks)
	for j := range spp {
		rl, k, _ := uvarint(b[p:], uint64(len(b)), "")
		p += k
		bl, k, _ := uvarint(b[p:], uint64(len(b)), "")
		p += k
		if rl < 4*ch.lanes {
			return 0, bad(fmt.Sprintf("slice %d: rANS stream of %d bytes", j, rl))
		}
		ch.slices = append(ch.slices, ntcSlice{rans: b[q : q+rl], bits: b[q+rl : q+rl+bl], from: s*nb + j*nb/spp, to: s*nb + (j+1)*nb/spp})
		q += rl + bl
	}
	return q, nil
}

// slicesPerSample returns how many slices the encoder cuts a sample's
// blocks into: slices of about ntcSliceTokens tokens, 0 when nothing is
// coded.
func (c *ntcCodec) slicesPerSample() int {
	nb := len(c.blocks)
	if nb == 0 || c.k == 0 {
		return 0
	}
	return min((nb+ntcSliceBlocks-1)/ntcSliceBlocks, math.MaxUint16)
}

// Split implements Splitter: the head of a version 6 payload holds the
// step code and the centroid offsets, and each sample's part its prefix
// and outlier tokens and its coefficient slices.
func (c *ntcCodec) Split(payload []byte, n int) (int, []int, error) {
	if _, err := c.layout.CheckCount(n); err != nil {
		return 0, nil, err
	}
	if len(payload) < 2 || payload[0] != ntcPayloadVersion || payload[1] != 0 {
		if len(payload) >= 2 && (payload[0] == 4 || payload[0] == 5) {
			return 0, nil, fmt.Errorf("%w: ntc payload version %d has no sample parts", ErrCorrupt, payload[0])
		}
		return 0, nil, fmt.Errorf("%w: not an ntc payload of version %d", ErrCorrupt, ntcPayloadVersion)
	}
	head, spp, err := c.parseHeadV6(payload, n)
	if err != nil {
		return 0, nil, err
	}
	parts := make([]int, n)
	p := head
	for s := range parts {
		size, err := c.parsePart(payload[p:], s, spp, nil)
		if err != nil {
			return 0, nil, err
		}
		parts[s] = size
		p += size
	}
	if p != len(payload) {
		return 0, nil, fmt.Errorf("%w: ntc payload has %d bytes after its %d samples", ErrCorrupt, len(payload)-p, n)
	}
	return head, parts, nil
}

// symbols decodes the chunk's quantized coefficients, block by block in
// coding order. For every sample and block, coef(smp, bi) returns where
// the block's dequantized coefficients go; when it returns nil, the
// block's signed symbols go to block(smp, bi, q) instead (q[j] for
// decPlan's entry j), in a buffer reused for the next block.
func (c *ntcCodec) symbols(ch *ntcChunk, s *ntcScratch, coef func(smp, bi int) []float32, block func(smp, bi int, q []int32)) error {
	if len(c.blocks) == 0 || c.k == 0 {
		return nil
	}
	ents, ents6 := c.decPlan(ch.stepCode)
	if cap(s.q) < blockSize*c.k {
		s.q = make([]int32, blockSize*c.k)
	}
	for si, sl := range ch.slices {
		var err error
		if ch.version == 6 {
			err = c.sliceSymbols6(ch, s, sl, ents6, coef, block)
		} else {
			err = c.sliceSymbols(ch, s, sl, ents, coef, block)
		}
		if err != nil {
			return fmt.Errorf("slice %d: %w", si, err)
		}
	}
	return nil
}

// sliceSymbols decodes one slice of a payload of version 5 or 4.
func (c *ntcCodec) sliceSymbols(ch *ntcChunk, s *ntcScratch, sl ntcSlice, ents [][]decEntry, coef func(smp, bi int) []float32, block func(smp, bi int, q []int32)) error {
	s.rans = append(append(s.rans[:0], sl.rans...), make([]byte, ransPad)...)
	s.bits = append(append(s.bits[:0], sl.bits...), make([]byte, ransPad)...)
	var rd ransDecoder
	if err := rd.init(s.rans, s.bits); err != nil {
		return err
	}
	nb := len(c.blocks)
	for gb := sl.from; gb < sl.to; gb++ {
		smp, bi := gb/nb, gb%nb
		dst := coef(smp, bi)
		if err := rd.decodeBlock(c.lut, ents[bi], s.q, dst, &ch.recon, ch.step); err != nil {
			return err
		}
		if dst == nil {
			block(smp, bi, s.q[:len(ents[bi])])
		}
	}
	// The encoder's final states are the decoder's initial ones; a stream
	// decoded to its end returns both states to ransL and consumes
	// every word and bit.
	if used := rd.bpos*8 - int(rd.nacc); rd.x0 != ransL || rd.x1 != ransL || rd.pos != rd.end || (used+7)/8 != rd.bend {
		return fmt.Errorf("%w: ntc coefficient streams do not end where they should", ErrCorrupt)
	}
	return nil
}

// sliceSymbols6 decodes one slice of a version 6 payload. With coef nil,
// block gets each block's signed reconstruction levels: 2m-q for a
// magnitude m > 0 coded with quantizer q, with its sign.
func (c *ntcCodec) sliceSymbols6(ch *ntcChunk, s *ntcScratch, sl ntcSlice, ents []blockEnts6, coef func(smp, bi int) []float32, block func(smp, bi int, q []int32)) error {
	s.rans = append(append(s.rans[:0], sl.rans...), make([]byte, ansPad)...)
	s.bits = append(append(s.bits[:0], sl.bits...), make([]byte, ansPad)...)
	d := &s.dec
	if err := d.init(s.rans, s.bits, ch.lanes); err != nil {
		return err
	}
	nb := len(c.blocks)
	for gb := sl.from; gb < sl.to; gb++ {
		smp, bi := gb/nb, gb%nb
		dst := coef(smp, bi)
		if err := d.decodeBlock6(c.adec, ch.recon6, &ents[bi], s.q, dst, ch.step); err != nil {
			return err
		}
		if dst == nil {
			block(smp, bi, s.q[:len(ents[bi].tab)])
		}
	}
	if !d.done() {
		return fmt.Errorf("%w: ntc coefficient streams do not end where they should", ErrCorrupt)
	}
	return nil
}

// Decode implements Codec.
func (c *ntcCodec) Decode(dst []float32, payload []byte, n int) error {
	l := c.layout
	ch, err := c.parse(payload, n)
	if err != nil {
		return err
	}
	if len(dst) != n*l.Values() {
		return fmt.Errorf("%w: output holds %d values, want %d", ErrBadLayout, len(dst), n*l.Values())
	}
	if len(c.blocks) == 0 || c.k == 0 {
		for smp := range n {
			out := dst[smp*l.Tokens*l.Dim:][:l.Tokens*l.Dim]
			for t := l.Prefix; t < l.Tokens; t++ {
				copy(out[t*l.Dim:], c.mean)
			}
		}
		c.unpackTokenRows(dst, &ch)
		return nil
	}
	s := c.scratch()
	defer c.bufs.Put(s)
	per := blockSize * c.k
	last := -1
	var ents6 []blockEnts6
	if ch.version == 6 {
		_, ents6 = c.decPlan(ch.stepCode)
	}
	err = c.symbols(&ch, s, func(smp, bi int) []float32 {
		if smp != last {
			if last >= 0 {
				c.synthesize(dst[last*l.Tokens*l.Dim:][:l.Tokens*l.Dim], s)
			}
			if ents6 == nil {
				clear(s.coef)
			}
			last = smp
		}
		coef := s.coef[bi*per : (bi+1)*per]
		if ents6 != nil {
			// The decoder writes every coded coefficient: zero the rest.
			for _, o := range ents6[bi].holes {
				coef[o] = 0
			}
		}
		return coef
	}, nil)
	if err != nil {
		return err
	}
	c.synthesize(dst[last*l.Tokens*l.Dim:][:l.Tokens*l.Dim], s)
	c.unpackTokenRows(dst, &ch)
	return nil
}

// unpackTokenRows writes the chunk's int8 rows, prefix tokens and then
// outliers over the grid, into dst.
func (c *ntcCodec) unpackTokenRows(dst []float32, ch *ntcChunk) {
	c.unpackPrefix(dst, ch.n, ch.prefix)
	unpackRows(dst, c.layout.Dim, ch.outTok, ch.outRows)
}

// synthesize turns one sample's coefficients (s.coef, per block
// class-major) into its grid tokens in out: the inverse DCT of each group's
// DC coefficients, then each block's inverse DCT and the inverse PCA.
func (c *ntcCodec) synthesize(out []float32, s *ntcScratch) {
	K := c.k
	per := blockSize * K
	if c.cmul != nil {
		mulVec(s.coef[:len(c.cmul)], c.cmul)
	}
	var a [blockSide]float32
	for gi := range c.groups {
		g := &c.groups[gi]
		gh, gw := int(g.gh), int(g.gw)
		cy, cx := &dctMats[gh], &dctMats[gw]
		// tmp[i][b] = sum_j cx[j][b] dc[i][j]; dc[a][b] = sum_i cy[i][a] tmp[i][b].
		tmp := s.tmp[:blockSize*K]
		clear(tmp)
		for i := range gh {
			for b := range gw {
				o := tmp[(i*blockSide+b)*K:][:K]
				for j := range gw {
					axpyRowsFast(o, []float32{cx[j][b]}, s.coef[int(g.blk[i*blockSide+j])*per:], K)
				}
			}
		}
		for ai := range gh {
			for i := range gh {
				a[i] = cy[i][ai]
			}
			for b := range gw {
				dc := s.coef[int(g.blk[ai*blockSide+b])*per:][:K]
				clear(dc)
				axpyRowsFast(dc, a[:gh], tmp[b*K:], blockSide*K)
			}
		}
	}
	for bi := range c.blocks {
		c.inverseBlock(s.y, &c.blocks[bi], s.coef[bi*per:(bi+1)*per], s)
	}
	// The inverse PCA of every grid token at once: one blocked product,
	// grid tokens x K by K x D, plus the mean.
	l := c.layout
	c.packed.mulAdd(out[l.Prefix*l.Dim:], s.y, K, l.GridH*l.GridW, c.mean, s.ytmp)
}

// divideClassSteps divides one sample's coefficients by their classes'
// step multipliers, as the encoder does before it quantizes.
func (c *ntcCodec) divideClassSteps(coef []float32) {
	for i, m := range c.cmul {
		coef[i] /= m
	}
}

// decPlanCache is how many step codes' decoding plans a codec keeps: a
// file coded at one ratio uses one step code, a quality-targeted one a few.
const decPlanCache = 8

// decPlan returns the decoder's entries of every block for a step code,
// from a small cache: as the decoder of payload versions 4 and 5 wants
// them, and as the version 6 decoder does.
func (c *ntcCodec) decPlan(stepCode int32) ([][]decEntry, []blockEnts6) {
	c.plansMu.Lock()
	for _, p := range c.plans {
		if p.code == stepCode {
			c.plansMu.Unlock()
			return p.ents, p.ents6
		}
	}
	c.plansMu.Unlock()
	pl := c.plan(stepCode)
	idx := c.shapeIndex(pl)
	ents := make([][]decEntry, len(idx))
	ents6 := make([]blockEnts6, len(idx))
	type both struct {
		e  []decEntry
		e6 blockEnts6
	}
	byShape := map[[3]uint8]both{}
	for bi := range idx {
		key := [3]uint8{c.blocks[bi].bh, c.blocks[bi].bw, c.blocks[bi].pos}
		e, ok := byShape[key]
		if !ok {
			e = both{decEntries(pl, idx[bi], c.k), decEntries6(pl, idx[bi], c.k, c.plainFrom())}
			byShape[key] = e
		}
		ents[bi], ents6[bi] = e.e, e.e6
	}
	c.plansMu.Lock()
	if len(c.plans) == decPlanCache {
		copy(c.plans, c.plans[1:])
		c.plans = c.plans[:decPlanCache-1]
	}
	c.plans = append(c.plans, decPlanEntry{stepCode, ents, ents6})
	c.plansMu.Unlock()
	return ents, ents6
}

type decPlanEntry struct {
	code  int32
	ents  [][]decEntry
	ents6 []blockEnts6
}

// inverseBlock turns the block's DCT coefficients (class-major) into its
// tokens' PCA coordinates: row t-Prefix of y (K floats) for token t.
func (c *ntcCodec) inverseBlock(y []float32, g *blockGeom, coef []float32, s *ntcScratch) {
	K, P := c.k, c.layout.Prefix
	bh, bw := int(g.bh), int(g.bw)
	cy, cx := &dctMats[bh], &dctMats[bw]
	// Along x: tmp[fy][px] = sum_fx cx[fx][px] coef[fy][fx].
	tmp := s.tmp
	clear(tmp)
	var a [blockSide]float32
	for fy := range bh {
		for px := range bw {
			for fx := range bw {
				a[fx] = cx[fx][px]
			}
			axpyRowsFast(tmp[(fy*blockSide+px)*K:][:K], a[:bw], coef[fy*blockSide*K:], K)
		}
	}
	// Along y, into the token's row.
	for py := range bh {
		for fy := range bh {
			a[fy] = cy[fy][py]
		}
		for px := range bw {
			row := y[(int(g.tok[py*blockSide+px])-P)*K:][:K]
			clear(row)
			axpyRowsFast(row, a[:bh], tmp[px*K:], blockSide*K)
		}
	}
}

// ntcFlagsOf returns the model flags a model version may set.
func ntcFlagsOf(mver uint8) uint8 {
	switch {
	case mver >= 9:
		return ntcFlagClassSteps | ntcFlagHouseholder
	case mver == 8:
		return ntcFlagClassSteps
	}
	return 0
}
