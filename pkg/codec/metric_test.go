package codec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomMetric returns a random PSD [d, d] matrix W^T W of rank r with
// float32-representable entries (so that 5 M is exact in float64).
func randomMetric(d, r int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	w := make([]float64, r*d)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	m := make([]float64, d*d)
	for i := range d {
		for j := range d {
			var s float64
			for k := range r {
				s += w[k*d+i] * w[k*d+j]
			}
			m[i*d+j] = float64(float32(s))
		}
	}
	for i := range d {
		for j := range i {
			m[i*d+j] = m[j*d+i]
		}
	}
	return m
}

// weightedError returns the sum over grid tokens of e^T diag(w) e, e = x - y.
func weightedError(l Layout, x, y []float32, diag []float64) float64 {
	var s float64
	for i := range x {
		t := i / l.Dim % l.Tokens
		if t < l.Prefix {
			continue
		}
		e := float64(x[i] - y[i])
		s += diag[i%l.Dim] * e * e
	}
	return s
}

func fitEncode(t *testing.T, l Layout, src []float32, n int, opts Options) (Codec, [][]byte, []float32) {
	t.Helper()
	c, err := newNTC(l, src, n, opts)
	if err != nil {
		t.Fatal(err)
	}
	ps := encodeChunks(t, c, src, n, opts.ChunkSamples)
	return c, ps, decodeChunks(t, c, ps, n, opts.ChunkSamples)
}

func sameCodings(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestTaskMetricScaleAndDeterminism(t *testing.T) {
	l := Layout{Tokens: 1 + 8*8, Dim: 24, Prefix: 1, GridH: 8, GridW: 8}
	const n, chunk = 24, 8
	src := synthTokens(l, n, 5)
	m := randomMetric(l.Dim, 6, 1)
	m5 := make([]float64, len(m))
	for i, v := range m {
		m5[i] = 5 * v
	}
	tm, err := NewTaskMetric(m, l.Dim, MetricMatrix)
	if err != nil {
		t.Fatal(err)
	}
	tm5, err := NewTaskMetric(m5, l.Dim, MetricMatrix)
	if err != nil {
		t.Fatal(err)
	}
	if tm.SHA256() != tm5.SHA256() {
		t.Fatal("M and 5M hash differently")
	}
	opts := Options{Ratio: 6, ChunkSamples: chunk, TaskMetric: tm}
	c1, p1, _ := fitEncode(t, l, src, n, opts)
	c2, p2, _ := fitEncode(t, l, src, n, opts)
	opts.TaskMetric = tm5
	c5, p5, _ := fitEncode(t, l, src, n, opts)
	if !bytes.Equal(c1.Model(), c2.Model()) || !sameCodings(p1, p2) {
		t.Fatal("two fits in the same metric differ")
	}
	if !bytes.Equal(c1.Model(), c5.Model()) || !sameCodings(p1, p5) {
		t.Fatal("M and 5M give different models or payloads")
	}
	// A loaded model encodes the same bytes as the fitted one (its forward
	// projection comes from the stored basis alone).
	cl, err := loadNTC(l, c1.Model())
	if err != nil {
		t.Fatal(err)
	}
	if !sameCodings(p1, encodeChunks(t, cl, src, n, chunk)) {
		t.Fatal("the loaded model encodes differently from the fitted one")
	}
	tp := c1.Params()["task_metric"].(map[string]any)
	if tp["kind"] != MetricMatrix || tp["blend"] != DefaultTaskBlend || len(tp["sha256"].(string)) != 64 {
		t.Fatalf("params: %v", tp)
	}
	// Blend 0 is the plain fit.
	plain, pp, _ := fitEncode(t, l, src, n, Options{Ratio: 6, ChunkSamples: chunk})
	tm0 := *tm
	tm0.Blend = 0
	c0, p0, _ := fitEncode(t, l, src, n, Options{Ratio: 6, ChunkSamples: chunk, TaskMetric: &tm0})
	if !bytes.Equal(plain.Model(), c0.Model()) || !sameCodings(pp, p0) {
		t.Fatal("blend 0 differs from the plain fit")
	}
	if _, ok := c0.Params()["task_metric"]; ok {
		t.Fatal("blend 0 records a task metric")
	}
}

// TestTaskMetricWeights checks that the fit spends its bits where the
// metric looks, and that the directions it ignores are still coded.
func TestTaskMetricWeights(t *testing.T) {
	l := Layout{Tokens: 1 + 8*8, Dim: 24, Prefix: 1, GridH: 8, GridW: 8}
	const n, chunk = 32, 16
	// The second half of the channels independent of the first.
	src := synthTokens(l, n, 9)
	other := synthTokens(l, n, 10)
	for i := range src {
		if i%l.Dim >= l.Dim/2 {
			src[i] = other[i-l.Dim/2]
		}
	}
	// M looks at the first half of the channels only.
	m := make([]float64, l.Dim*l.Dim)
	look := make([]float64, l.Dim)
	ignored := make([]float64, l.Dim)
	for d := range l.Dim {
		if d < l.Dim/2 {
			m[d*l.Dim+d], look[d] = 1, 1
		} else {
			ignored[d] = 1
		}
	}
	tm, err := NewTaskMetric(m, l.Dim, MetricMatrix)
	if err != nil {
		t.Fatal(err)
	}
	signal := func(w []float64) float64 {
		zero := make([]float32, len(src))
		// Energy around each channel's mean, over grid tokens.
		mu := make([]float64, l.Dim)
		cnt := 0
		for s := range n {
			for tk := l.Prefix; tk < l.Tokens; tk++ {
				for d := range l.Dim {
					mu[d] += float64(src[(s*l.Tokens+tk)*l.Dim+d])
				}
				cnt++
			}
		}
		for i := range zero {
			zero[i] = float32(mu[i%l.Dim] / float64(cnt))
		}
		return weightedError(l, src, zero, w)
	}
	for _, ratio := range []float64{6, 12} {
		_, _, plain := fitEncode(t, l, src, n, Options{Ratio: ratio, ChunkSamples: chunk})
		_, _, task := fitEncode(t, l, src, n, Options{Ratio: ratio, ChunkSamples: chunk, TaskMetric: tm})
		pl, tl := weightedError(l, src, plain, look), weightedError(l, src, task, look)
		ign := 10 * math.Log10(signal(ignored)/weightedError(l, src, task, ignored))
		t.Logf("ratio %g: error where M looks: plain %.4g, task %.4g; SNR of the ignored channels %.1f dB", ratio, pl, tl, ign)
		if !(tl < 0.8*pl) {
			t.Errorf("ratio %g: the task fit's error where M looks (%.4g) is not below the plain fit's (%.4g)", ratio, tl, pl)
		}
		if !(ign > 3) {
			t.Errorf("ratio %g: channels M ignores are abandoned (SNR %.1f dB)", ratio, ign)
		}
		// The blend is what keeps them: nearly without it they go.
		near := *tm
		near.Blend = 0.999
		_, _, bare := fitEncode(t, l, src, n, Options{Ratio: ratio, ChunkSamples: chunk, TaskMetric: &near})
		if ign999 := 10 * math.Log10(signal(ignored)/weightedError(l, src, bare, ignored)); !(ign999 < ign-3) {
			t.Errorf("ratio %g: blend 0.999 codes the ignored channels at %.1f dB, the default at %.1f", ratio, ign999, ign)
		}
	}
}

func TestTaskMetricRejects(t *testing.T) {
	good := randomMetric(4, 4, 2)
	mod := func(f func(m []float64)) []float64 {
		m := append([]float64(nil), good...)
		f(m)
		return m
	}
	for _, tc := range []struct {
		name string
		m    []float64
		dim  int
		want string
	}{
		{"short", good[:15], 4, "15 values for a [4, 4] matrix"},
		{"nan", mod(func(m []float64) { m[5] = math.NaN() }), 4, "M[1][1] = NaN is not finite"},
		{"inf", mod(func(m []float64) { m[2] = math.Inf(1) }), 4, "not finite"},
		{"asymmetric", mod(func(m []float64) { m[1] += 1 }), 4, "not symmetric: M[0][1]"},
		{"negative", mod(func(m []float64) {
			for i := range 4 {
				m[i*4+i] -= 100
			}
		}), 4, "trace"},
		{"indefinite", []float64{1, 0, 0, -0.5}, 2, "not positive semi-definite"},
		{"zero", make([]float64, 9), 3, "trace 0"},
		{"dim", good, 0, "dimension 0"},
	} {
		_, err := NewTaskMetric(tc.m, tc.dim, MetricMatrix)
		if !errors.Is(err, ErrMetric) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrMetric with %q", tc.name, err, tc.want)
		}
	}
	if _, err := LinearTaskMetric([]float64{1, math.NaN()}, 1, 2); !errors.Is(err, ErrMetric) {
		t.Errorf("NaN weight: %v", err)
	}
	// A metric for other tokens, or a blend outside [0, 1), is refused by
	// the fit.
	l := Layout{Tokens: 1 + 4*4, Dim: 8, Prefix: 1, GridH: 4, GridW: 4}
	src := synthTokens(l, 4, 1)
	tm, _ := NewTaskMetric(good, 4, MetricMatrix)
	tm.Source = "m.npy"
	if _, err := newNTC(l, src, 4, Options{TaskMetric: tm}); !errors.Is(err, ErrMetric) || !strings.Contains(err.Error(), "m.npy: [4, 4] matrix for tokens of 8 dims") {
		t.Errorf("dim mismatch: %v", err)
	}
	tm8, _ := NewTaskMetric(randomMetric(8, 8, 1), 8, MetricMatrix)
	for _, b := range []float64{-0.1, 1, math.NaN()} {
		tm8.Blend = b
		if _, err := newNTC(l, src, 4, Options{TaskMetric: tm8}); !errors.Is(err, ErrOption) {
			t.Errorf("blend %g: %v", b, err)
		}
	}
}

func TestLinearTaskMetric(t *testing.T) {
	const out, d = 5, 3
	rng := rand.New(rand.NewPCG(4, 4))
	w := make([]float64, out*d)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	lin, err := LinearTaskMetric(w, out, d)
	if err != nil {
		t.Fatal(err)
	}
	m := make([]float64, d*d)
	for i := range d {
		for j := range d {
			for o := range out {
				m[i*d+j] += w[o*d+i] * w[o*d+j]
			}
		}
	}
	want, err := NewTaskMetric(m, d, MetricMatrix)
	if err != nil {
		t.Fatal(err)
	}
	a, b := lin.Normalized(), want.Normalized()
	var tr float64
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12 {
			t.Fatalf("W^T W: %v, want %v", a, b)
		}
		if i%(d+1) == 0 {
			tr += a[i]
		}
	}
	if math.Abs(tr-d) > 1e-12 || lin.Kind != MetricLinear {
		t.Fatalf("trace %g kind %s", tr, lin.Kind)
	}
}
