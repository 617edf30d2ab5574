package codec

import (
	"fmt"
	"math"
	"sync"

	"github.com/ntc-project/ntc/internal/f16"
)

// IDFP16 is the on-disk id of the fp16 codec.
const IDFP16 uint8 = 1

func init() {
	Register(Spec{
		Name:     "fp16",
		ID:       IDFP16,
		Lossless: true,
		Summary:  "float16, byte-shuffled and zstd-compressed; lossless for float16 input",
		New: func(l Layout, _ []float32, _ int, opts Options) (Codec, error) {
			if opts.Ratio != 0 || opts.Quality != "" {
				return nil, fmt.Errorf("%w: fp16 is lossless and takes no ratio or quality target", ErrOption)
			}
			return newFP16(l)
		},
		Load: func(l Layout, model []byte) (Codec, error) {
			if len(model) != 0 {
				return nil, fmt.Errorf("%w: fp16 takes no model, got %d bytes", ErrCorrupt, len(model))
			}
			return newFP16(l)
		},
	})
}

// fp16Codec stores values as float16 with the low bytes of all values first,
// then the high bytes (a byte shuffle: exponents and signs cluster in the
// high bytes, which zstd then compresses), in one zstd frame.
type fp16Codec struct {
	layout Layout
	bufs   sync.Pool // *[]byte scratch for the shuffled bytes
}

func newFP16(l Layout) (*fp16Codec, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &fp16Codec{layout: l}, nil
}

func (c *fp16Codec) Name() string   { return "fp16" }
func (c *fp16Codec) Layout() Layout { return c.layout }
func (c *fp16Codec) Model() []byte  { return nil }
func (c *fp16Codec) Params() map[string]any {
	return map[string]any{"shuffle": "byte", "entropy": "zstd"}
}

func (c *fp16Codec) scratch(n int) *[]byte {
	p, _ := c.bufs.Get().(*[]byte)
	if p == nil || cap(*p) < n {
		b := make([]byte, n)
		return &b
	}
	*p = (*p)[:n]
	return p
}

func (c *fp16Codec) Encode(dst []byte, src []float32, n int) ([]byte, error) {
	nv, err := c.layout.CheckCount(n)
	if err != nil {
		return nil, err
	}
	if len(src) != nv {
		return nil, fmt.Errorf("%w: %d values for %d samples, want %d", ErrBadLayout, len(src), n, nv)
	}
	p := c.scratch(2 * nv)
	defer c.bufs.Put(p)
	lo, hi := (*p)[:nv], (*p)[nv:]
	for i, v := range src {
		h := f16.FromFloat32(v)
		if !f16.IsFinite16(h) && !math.IsInf(float64(v), 0) && !math.IsNaN(float64(v)) {
			return nil, &RangeError{Index: i, Value: v, Why: fmt.Sprintf("exceeds the float16 range (±%d)", MaxFloat16)}
		}
		lo[i], hi[i] = byte(h), byte(h>>8)
	}
	return zstdCompress(dst, *p)
}

func (c *fp16Codec) Decode(dst []float32, payload []byte, n int) error {
	nv, err := c.layout.CheckCount(n)
	if err != nil {
		return err
	}
	if len(dst) != nv {
		return fmt.Errorf("%w: output holds %d values, want %d", ErrBadLayout, len(dst), nv)
	}
	p := c.scratch(2 * nv)
	defer c.bufs.Put(p)
	raw, err := zstdDecompress((*p)[:0], payload, 2*nv)
	if err != nil {
		return err
	}
	lo, hi := raw[:nv], raw[nv:]
	for i := range dst {
		dst[i] = f16.ToFloat32(uint16(lo[i]) | uint16(hi[i])<<8)
	}
	*p = raw
	return nil
}
