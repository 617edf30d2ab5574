package codec

import (
	"fmt"
	"math"

	"github.com/ntc-project/ntc/internal/f16"
)

// The fixed-rate baseline codecs (int8, fp8, int4) share one shape: a
// payload is a version byte followed by a sequence of blocks of equal size,
// each a float16 scale and the block's quantized values. The payload size
// is a function of the layout and the sample count alone, which Decode
// checks before it reads anything.

// fixedVersion is the payload version of the fixed-rate codecs.
const fixedVersion = 1

// fixedFormat describes one fixed-rate block format.
type fixedFormat struct {
	name  string
	group func(dim int) int // values per scale; divides the token into groups
	// bytesFor returns the packed size of g quantized values.
	bytesFor func(g int) int
	// maxCode is the largest magnitude the code represents at scale 1.
	maxCode float32
	// pack quantizes src (already divided by the scale) into dst.
	pack func(dst []byte, src []float32, inv float32)
	// unpack writes scale*value for each packed code into dst.
	unpack func(dst []float32, src []byte, scale float32)
	params map[string]any
	// device names the codes for a device decoder.
	device FixedFormat
}

// fixedCodec is a configured fixed-rate codec.
type fixedCodec struct {
	f      *fixedFormat
	layout Layout
	group  int
}

func newFixed(f *fixedFormat, l Layout) (*fixedCodec, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &fixedCodec{f: f, layout: l, group: f.group(l.Dim)}, nil
}

func registerFixed(f *fixedFormat, id uint8, summary string) {
	Register(Spec{
		Name:    f.name,
		ID:      id,
		Summary: summary,
		New: func(l Layout, _ []float32, _ int, opts Options) (Codec, error) {
			if opts.Ratio != 0 || opts.Quality != "" {
				return nil, fmt.Errorf("%w: %s is a fixed-rate format and takes no ratio or quality target", ErrOption, f.name)
			}
			return newFixed(f, l)
		},
		Load: func(l Layout, model []byte) (Codec, error) {
			if len(model) != 0 {
				return nil, fmt.Errorf("%w: %s takes no model, got %d bytes", ErrCorrupt, f.name, len(model))
			}
			return newFixed(f, l)
		},
	})
}

func (c *fixedCodec) Name() string           { return c.f.name }
func (c *fixedCodec) Layout() Layout         { return c.layout }
func (c *fixedCodec) Model() []byte          { return nil }
func (c *fixedCodec) Params() map[string]any { return c.f.params }

// tokenBytes returns the packed size of one token: full groups, then a
// shorter tail group when the group size does not divide the dimension.
func (c *fixedCodec) tokenBytes() int {
	d, g := c.layout.Dim, c.group
	full, tail := d/g, d%g
	n := full * (2 + c.f.bytesFor(g))
	if tail > 0 {
		n += 2 + c.f.bytesFor(tail)
	}
	return n
}

func (c *fixedCodec) payloadSize(n int) int {
	return 1 + n*c.layout.Tokens*c.tokenBytes()
}

func (c *fixedCodec) Encode(dst []byte, src []float32, n int) ([]byte, error) {
	nv, err := c.layout.CheckCount(n)
	if err != nil {
		return nil, err
	}
	if len(src) != nv {
		return nil, fmt.Errorf("%w: %d values for %d samples, want %d", ErrBadLayout, len(src), n, nv)
	}
	size := c.payloadSize(n)
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	out := dst[start:]
	out[0] = fixedVersion
	p := 1
	d := c.layout.Dim
	for t := 0; t < nv; t += d {
		for off := 0; off < d; off += c.group {
			g := src[t+off : t+min(off+c.group, d)]
			var amax float32
			for _, v := range g {
				amax = max(amax, abs32(v))
			}
			// NaN and infinities fail this test too.
			if !(amax <= c.f.maxCode*MaxFloat16) {
				return nil, checkRange(g, t+off, c.f.maxCode*MaxFloat16, c.rangeWhy())
			}
			h := scaleFor(amax, c.f.maxCode)
			out[p], out[p+1] = byte(h), byte(h>>8)
			p += 2
			var inv float32
			if scale := f16.ToFloat32(h); scale > 0 {
				inv = 1 / scale
			}
			nb := c.f.bytesFor(len(g))
			c.f.pack(out[p:p+nb], g, inv)
			p += nb
		}
	}
	return dst, nil
}

// rangeWhy says what bounds the values the codec holds.
func (c *fixedCodec) rangeWhy() string {
	return fmt.Sprintf("the largest magnitude %s holds (%g times its float16 scale)", c.f.name, c.f.maxCode)
}

func (c *fixedCodec) Decode(dst []float32, payload []byte, n int) error {
	nv, err := c.layout.CheckCount(n)
	if err != nil {
		return err
	}
	if len(dst) != nv {
		return fmt.Errorf("%w: output holds %d values, want %d", ErrBadLayout, len(dst), nv)
	}
	if err := c.check(payload, n); err != nil {
		return err
	}
	p := 1
	d := c.layout.Dim
	for t := 0; t < nv; t += d {
		for off := 0; off < d; off += c.group {
			g := dst[t+off : t+min(off+c.group, d)]
			scale := f16.ToFloat32(uint16(payload[p]) | uint16(payload[p+1])<<8)
			nb := c.f.bytesFor(len(g))
			c.f.unpack(g, payload[p+2:p+2+nb], scale)
			p += 2 + nb
		}
	}
	return nil
}

// Split implements Splitter: the version byte is the head, and a sample's
// part its tokens' groups, the same number of bytes for every sample.
func (c *fixedCodec) Split(payload []byte, n int) (int, []int, error) {
	if _, err := c.layout.CheckCount(n); err != nil {
		return 0, nil, err
	}
	if want := c.payloadSize(n); len(payload) != want {
		return 0, nil, fmt.Errorf("%w: %s payload has %d bytes, want %d", ErrCorrupt, c.f.name, len(payload), want)
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = c.layout.Tokens * c.tokenBytes()
	}
	return 1, parts, nil
}

// check checks a payload of n samples: its size, version and scales (every
// one finite and not negative).
func (c *fixedCodec) check(payload []byte, n int) error {
	if want := c.payloadSize(n); len(payload) != want {
		return fmt.Errorf("%w: %s payload has %d bytes, want %d", ErrCorrupt, c.f.name, len(payload), want)
	}
	if payload[0] != fixedVersion {
		return fmt.Errorf("%w: %s payload version %d", ErrCorrupt, c.f.name, payload[0])
	}
	d := c.layout.Dim
	for p := 1; p < len(payload); {
		for off := 0; off < d; off += c.group {
			h := uint16(payload[p]) | uint16(payload[p+1])<<8
			if !f16.IsFinite16(h) || h&0x8000 != 0 {
				return fmt.Errorf("%w: %s scale %#04x at byte %d", ErrCorrupt, c.f.name, h, p)
			}
			p += 2 + c.f.bytesFor(min(c.group, d-off))
		}
	}
	return nil
}

// scaleFor returns the float16 scale for a group with largest magnitude
// amax so that amax/scale <= maxCode: rounded up, never to infinity.
func scaleFor(amax, maxCode float32) uint16 {
	if amax == 0 {
		return 0
	}
	h := f16.FromFloat32(amax / maxCode)
	if h == 0 {
		h = 1 // smallest subnormal
	}
	for f16.ToFloat32(h)*maxCode < amax && h < 0x7bff {
		h++
	}
	return h
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// roundClamp rounds v to the nearest integer (ties away from zero) and
// clamps it to [-m, m].
func roundClamp(v float32, m int32) int32 {
	var q int32
	if v >= 0 {
		q = int32(v + 0.5)
	} else {
		q = -int32(-v + 0.5)
	}
	return max(-m, min(m, q))
}

// scaleInt8 sets dst[i] = float32(int8(src[i])) * scale, src holding at
// least len(dst) bytes: int8's dequantization (AVX2 where the machine has
// it, bit for bit the Go loop).
func scaleInt8(dst []float32, src []byte, scale float32) {
	src = src[:len(dst)]
	for i := scaleInt8Asm(dst, src, scale); i < len(dst); i++ {
		dst[i] = float32(int8(src[i])) * scale
	}
}

// IDInt8 is the on-disk id of the int8 codec.
const IDInt8 uint8 = 2

var int8Format = &fixedFormat{
	name:     "int8",
	group:    func(dim int) int { return dim },
	bytesFor: func(g int) int { return g },
	maxCode:  127,
	pack: func(dst []byte, src []float32, inv float32) {
		for i, v := range src {
			dst[i] = byte(int8(roundClamp(v*inv, 127)))
		}
	},
	unpack: scaleInt8,
	params: map[string]any{"scale": "absmax per token, float16", "bits": 8},
	device: FixedInt8,
}

func init() {
	registerFixed(int8Format, IDInt8, "int8 with one absmax scale per token (about 2x)")
}
