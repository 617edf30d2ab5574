package codec

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/ntc-project/ntc/pkg/metrics"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// fieldWeights returns, for gradient fields [nf, Tg, D], the mean over
// fields and positions of class cl of the squared coefficient (cl, k) of
// the field projected on the synthesis rows (w[k*ntcClasses+cl], as
// classEnergy lays it out), the number of coefficients per class, and the
// mean squared norm of a field.
func (c *ntcCodec) fieldWeights(fields []float32, nf int) ([]float64, []float64, float64) {
	l := c.layout
	K, D := c.k, c.dim
	// A codec with a zero mean that projects on the rows themselves: the
	// coefficients of a field g are then those of the error whose cost is
	// (g . e)^2.
	pc := &ntcCodec{layout: l, dim: D, k: K, mean: make([]float32, D), blocks: c.blocks, groups: c.groups}
	pc.fwdOnce.Do(func() {
		pc.fwd = make([]float32, D*K)
		for k := range K {
			for d := range D {
				pc.fwd[d*K+k] = c.basis[k*D+d]
			}
		}
	})
	tg := l.GridH * l.GridW
	src := make([]float32, nf*l.Tokens*D)
	var tr float64
	for f := range nf {
		g := fields[f*tg*D:][:tg*D]
		copy(src[f*l.Tokens*D+l.Prefix*D:], g)
		for _, v := range g {
			tr += float64(v) * float64(v)
		}
	}
	w, cnt := c.classEnergy(pc.transform(src, nf))
	return w, cnt, tr / float64(nf)
}

// TestExpClassScale fits block10 with step multipliers per class from
// gradient fields (NTC_EXP_CS, from scripts/task_metric.py fisher
// --fields), encodes, decodes and writes the decoded tokens to
// NTC_EXP_OUT. NTC_EXP_RATIO is the ratio, NTC_EXP_M the task metric
// (none: a plain fit), NTC_EXP_MODE full (a multiplier per class and
// component), class (per class) or none, NTC_EXP_BLEND the blend with
// plain squared error and NTC_EXP_MAXOCT the multipliers' bound in
// octaves (4).
func TestExpClassScale(t *testing.T) {
	fpath := os.Getenv("NTC_EXP_CS")
	if fpath == "" {
		t.Skip("set NTC_EXP_CS=fields.npy")
	}
	ratio, _ := strconv.ParseFloat(os.Getenv("NTC_EXP_RATIO"), 64)
	mode := os.Getenv("NTC_EXP_MODE")
	blend, _ := strconv.ParseFloat(os.Getenv("NTC_EXP_BLEND"), 64)
	maxOct, _ := strconv.ParseFloat(os.Getenv("NTC_EXP_MAXOCT"), 64)
	if maxOct == 0 {
		maxOct = 4
	}
	data, n := loadShared(t, "deit_tiny_block10_dev.npy")
	fields, fshape, _, err := tensorio.ReadAll(fpath)
	if err != nil {
		t.Fatal(err)
	}
	nf := fshape[0]
	var opts = Options{Ratio: ratio}
	if mp := os.Getenv("NTC_EXP_M"); mp != "" {
		m, _, err := tensorio.ReadAllFloat64(mp)
		if err != nil {
			t.Fatal(err)
		}
		tm, err := NewTaskMetric(m, 192, MetricMatrix)
		if err != nil {
			t.Fatal(err)
		}
		opts.TaskMetric = tm
	}
	if mode != "" && mode != "none" {
		expClassScale = func(c *ntcCodec) []float32 {
			w, cnt, tr := c.fieldWeights(fields, nf)
			K, D := c.k, c.dim
			W := make([]float64, len(w)) // class-major, as cscale
			sc := make([]float32, len(w))
			for k := range K {
				var bn float64
				for d := range D {
					bn += float64(c.basis[k*D+d]) * float64(c.basis[k*D+d])
				}
				var tot, nc float64
				for cl := range ntcClasses {
					W[cl*K+k] = (1-blend)*bn + blend*float64(D*c.layout.GridH*c.layout.GridW)*w[k*ntcClasses+cl]/tr
					tot += cnt[cl] * W[cl*K+k]
					nc += cnt[cl]
				}
				for cl := range ntcClasses {
					W[cl*K+k] /= tot / nc
				}
			}
			if mode == "class" {
				for cl := range ntcClasses {
					var s float64
					for k := range K {
						s += W[cl*K+k]
					}
					for k := range K {
						W[cl*K+k] = s / float64(K)
					}
				}
			}
			hist := map[int]int{}
			for i, v := range W {
				o := -0.5 * math.Log2(v)
				o = math.Max(-maxOct, math.Min(maxOct, o))
				q := math.Round(8 * o)
				hist[int(math.Round(q/8))]++
				sc[i] = float32(math.Exp2(q / 8))
			}
			fmt.Printf("octave histogram %v\n", hist)
			for cl := range ntcClasses {
				fmt.Printf("cl %2d n %4.0f scale k0 %.3f k1 %.3f k10 %.3f k100 %.3f\n", cl, cnt[cl], sc[cl*K], sc[cl*K+1], sc[cl*K+10], sc[cl*K+100])
			}
			return sc
		}
		defer func() { expClassScale = nil }()
	}
	c, err := newNTC(deitLayout, data, n, opts)
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 55
	ps := encodeChunks(t, c, data, n, chunk)
	total := len(c.Model())
	for _, p := range ps {
		total += len(p)
	}
	got := decodeChunks(t, c, ps, n, chunk)
	v := deitLayout.Values()
	q := metrics.Compare(data, got, 192)
	fmt.Printf("mode %s ratio %.3f SNR %.3f cos %.5f model %d\n", mode, float64(2*len(data))/float64(total), q.SNR, q.CosMean, len(c.Model()))
	if out := os.Getenv("NTC_EXP_OUT"); out != "" {
		w, err := tensorio.Create(out, tensorio.Float32, n, 197, 192)
		if err != nil {
			t.Fatal(err)
		}
		for s := range n {
			if err := w.WriteSample(got[s*v : (s+1)*v]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
