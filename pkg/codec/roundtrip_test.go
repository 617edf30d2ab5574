package codec

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ntc-project/ntc/pkg/metrics"
)

// synthTokens makes n samples of correlated, token-like data for layout l:
// a few shared directions with spatially smooth weights, a couple of
// large-magnitude channels, and noise.
func synthTokens(l Layout, n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	const dirs = 8
	basis := make([]float32, dirs*l.Dim)
	for i := range basis {
		basis[i] = float32(r.NormFloat64())
	}
	out := make([]float32, n*l.Values())
	for s := range n {
		phase := r.Float64() * 6
		for t := range l.Tokens {
			row := out[(s*l.Tokens+t)*l.Dim:][:l.Dim]
			var y, x float64
			if t >= l.Prefix && l.GridW > 0 {
				g := t - l.Prefix
				y, x = float64(g/l.GridW), float64(g%l.GridW)
			}
			for k := range dirs {
				w := float32(math.Sin(phase+0.4*y*float64(k+1)/3+0.3*x) * 2 / float64(k+1))
				for d := range row {
					row[d] += w * basis[k*l.Dim+d]
				}
			}
			for d := range row {
				row[d] += float32(0.3 * r.NormFloat64())
			}
			row[0] += 12
			if l.Dim > 5 {
				row[5] -= 8
			}
		}
	}
	return out
}

var testLayouts = []Layout{
	{Tokens: 197, Dim: 192, Prefix: 1, GridH: 14, GridW: 14},
	{Tokens: 2 + 5*7, Dim: 40, Prefix: 2, GridH: 5, GridW: 7},
	{Tokens: 9, Dim: 33, Prefix: 0, GridH: 3, GridW: 3},
	{Tokens: 4, Dim: 8, Prefix: 4},
}

func TestBaselinesRoundTrip(t *testing.T) {
	for _, name := range []string{"int8", "fp8", "int4"} {
		spec, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		minSNR := map[string]float64{"int8": 30, "fp8": 25, "int4": 12}[name]
		for _, l := range testLayouts {
			const n = 3
			src := synthTokens(l, n, 1)
			c, err := spec.New(l, nil, 0, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Encode([]byte{0xaa}, src, n)
			if err != nil {
				t.Fatal(err)
			}
			if p[0] != 0xaa {
				t.Fatal("Encode did not append")
			}
			p = p[1:]
			c2, err := spec.Load(l, c.Model())
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(src))
			if err := c2.Decode(got, p, n); err != nil {
				t.Fatal(err)
			}
			q := metrics.Compare(src, got, l.Dim)
			if q.SNR < minSNR {
				t.Errorf("%s %+v: SNR %.1f < %.1f", name, l, q.SNR, minSNR)
			}
			p2, _ := c.Encode(nil, src, n)
			if string(p2) != string(p) {
				t.Errorf("%s: encoding is not deterministic", name)
			}
			// Hostile payloads: truncated, extended, bad version.
			for _, bad := range [][]byte{p[:len(p)-1], append(append([]byte{}, p...), 0), {}, append([]byte{9}, p[1:]...)} {
				if err := c2.Decode(got, bad, n); !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: bad payload gave %v", name, err)
				}
			}
		}
		c, _ := spec.New(deitLayout, nil, 0, Options{})
		bad := synthTokens(deitLayout, 1, 2)
		bad[7] = float32(math.NaN())
		if _, err := c.Encode(nil, bad, 1); !errors.Is(err, ErrRange) {
			t.Errorf("%s: NaN gave %v", name, err)
		}
	}
}

func TestFP8Exhaustive(t *testing.T) {
	for i := range 256 {
		if i&0x7f == 0x7f {
			continue
		}
		v := e4m3ToF32[i]
		if got := e4m3FromF32(v); got != byte(i) && !(v == 0 && got&0x7f == 0) {
			t.Errorf("e4m3 %#02x -> %g -> %#02x", i, v, got)
		}
	}
	// Midpoints round to even.
	if got := e4m3FromF32(1 + 1.0/16); got != 0x38 {
		t.Errorf("1+1/16 -> %#02x, want 0x38", got)
	}
	if got := e4m3FromF32(1000); got != 0x7e {
		t.Errorf("1000 -> %#02x", got)
	}
}
