package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// Three test codecs, registered under free ids: "benchrate" takes a target
// ratio (it stores float32 and ignores the ratio, so it is exact),
// "benchfail" fails to encode, and "benchfit" is a learned codec whose
// fitting takes fitDelay.
const (
	rateCodec = "benchrate"
	failCodec = "benchfail"
	fitCodec  = "benchfit"
)

// fitDelay is how long fitting fitCodec takes, on the bench's clock.
var fitDelay time.Duration

func init() {
	id := uint8(255)
	free := func() uint8 {
		for ; ; id-- {
			if _, err := codec.LookupID(id); err != nil {
				return id
			}
		}
	}
	codec.Register(codec.Spec{
		Name: rateCodec, ID: free(), Lossless: true, Summary: "test: float32 with a target ratio",
		New: func(l codec.Layout, _ []float32, _ int, o codec.Options) (codec.Codec, error) {
			return &testCodec{name: rateCodec, l: l}, nil
		},
		Load: func(l codec.Layout, _ []byte) (codec.Codec, error) { return &testCodec{name: rateCodec, l: l}, nil },
	})
	codec.Register(codec.Spec{
		Name: failCodec, ID: free(), Summary: "test: fails",
		New: func(l codec.Layout, _ []float32, _ int, o codec.Options) (codec.Codec, error) {
			if o.Ratio != 0 {
				return nil, fmt.Errorf("%w: fixed", codec.ErrOption)
			}
			return &testCodec{name: failCodec, l: l, fail: true}, nil
		},
		Load: func(l codec.Layout, _ []byte) (codec.Codec, error) { return &testCodec{name: failCodec, l: l}, nil },
	})
	codec.Register(codec.Spec{
		Name: fitCodec, ID: free(), Learned: true, Summary: "test: float32, slow to fit",
		New: func(l codec.Layout, _ []float32, _ int, o codec.Options) (codec.Codec, error) {
			clock.advance(fitDelay)
			return &testCodec{name: fitCodec, l: l}, nil
		},
		Load: func(l codec.Layout, _ []byte) (codec.Codec, error) { return &testCodec{name: fitCodec, l: l}, nil },
	})
}

type testCodec struct {
	name string
	l    codec.Layout
	fail bool
}

func (c *testCodec) Name() string           { return c.name }
func (c *testCodec) Layout() codec.Layout   { return c.l }
func (c *testCodec) Model() []byte          { return nil }
func (c *testCodec) Params() map[string]any { return nil }
func (c *testCodec) Encode(dst []byte, src []float32, n int) ([]byte, error) {
	if c.fail {
		return nil, errors.New("test codec refuses")
	}
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst, nil
}
func (c *testCodec) Decode(dst []float32, p []byte, n int) error {
	if len(p) != 4*len(dst) {
		return codec.ErrCorrupt
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return nil
}

// tokens returns n samples of t x d float16 values with per-channel
// offsets, as real tokens have.
func tokens(seed uint64, n, t, d int) []float32 {
	r := rand.New(rand.NewPCG(seed, 3))
	v := make([]float32, n*t*d)
	for i := range v {
		v[i] = f16.Round(float32(r.NormFloat64()) + float32(i%d)*0.05)
	}
	return v
}

// fixedCodecs returns the fixed-rate baselines that are registered.
func fixedCodecs() []string {
	var out []string
	for _, n := range []string{"fp16", "int8", "fp8", "int4"} {
		if _, err := codec.Lookup(n); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func TestRun(t *testing.T) {
	const n, tk, d = 7, 17, 16 // 1 CLS + 4x4 grid
	src := &ntcb.Memory{Data: tokens(1, n, tk, d), N: n, Tokens: tk, Dim: d, KeyPrefix: "s"}
	names := append(fixedCodecs(), rateCodec, failCodec)
	rep, err := Run(context.Background(), src, Options{
		Codecs: names, Ratios: []float64{2, 4}, Qualities: []string{"cos=0.9"}, Repeat: 2, SampleReads: 5, Prefix: -1,
		ChunkBytes: 3 * 2 * tk * d, Files: []string{"mem"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Input.Shape; !slices.Equal(got, []int{n, tk, d}) || rep.Input.ChunkSamples != 3 || rep.Input.Layout.Prefix != 1 {
		t.Fatalf("input %+v", rep.Input)
	}
	var labels []string
	for _, r := range rep.Rows {
		labels = append(labels, r.Label())
	}
	want := append([]string{RawCodec}, fixedCodecs()...)
	want = append(want, rateCodec+"@2x", rateCodec+"@4x", rateCodec+"@cos=0.9")
	if !slices.Equal(labels, want) {
		t.Fatalf("rows %v, want %v", labels, want)
	}
	if q := rep.Rows[len(rep.Rows)-1]; q.TargetQuality != "cos=0.9" || q.TargetRatio != 0 {
		t.Errorf("quality row %+v", q)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Codec != failCodec || !strings.Contains(rep.Skipped[0].Err, "refuses") {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
	values := float64(n * tk * d)
	for _, r := range rep.Rows {
		q := r.Quality
		if r.DecodeMBps <= 0 || r.EncodeMBps <= 0 || r.DecodeP50ms > r.DecodeP99ms || r.SampleP50ms > r.SampleP99ms || r.SampleP99ms <= 0 {
			t.Errorf("%s: timings %+v", r.Label(), r)
		}
		if q.Values != int64(values) || q.Tokens != int64(n*tk) {
			t.Errorf("%s: compared %d values, %d tokens", r.Label(), q.Values, q.Tokens)
		}
		if math.Abs(r.Ratio-2*values/float64(r.FileBytes)) > 1e-9 || math.Abs(r.BitsPerValue-8*float64(r.FileBytes)/values) > 1e-9 {
			t.Errorf("%s: ratio %g, bits %g for %d bytes", r.Label(), r.Ratio, r.BitsPerValue, r.FileBytes)
		}
		if r.Codec != RawCodec && r.Chunks != 3 {
			t.Errorf("%s: %d chunks", r.Label(), r.Chunks)
		}
		if r.Lossless {
			if !math.IsInf(q.SNR, 1) || q.CosMin != 1 || q.MaxAbsErr != 0 || r.NNTop1 != 1 || r.NNTop5 != 1 {
				t.Errorf("%s: lossless row with %+v nn %g %g", r.Label(), q, r.NNTop1, r.NNTop5)
			}
		} else if !(q.SNR > 10) || !(q.CosMean > 0.9) || !(r.NNTop5 > 0) {
			t.Errorf("%s: quality %+v nn %g %g", r.Label(), q, r.NNTop1, r.NNTop5)
		}
	}
	if raw := rep.Rows[0]; raw.Ratio != 1 || raw.BitsPerValue != 16 || raw.FileBytes != int64(2*values) {
		t.Errorf("raw row %+v", raw)
	}
}

// fakeClock is a clock that moves 1 µs at every reading, and further when
// told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

var clock fakeClock

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestFitTimedApart checks that a learned codec's fit is timed on its own
// and not counted in its encode speed: on a fake clock the fit takes an
// hour, everything else microseconds.
func TestFitTimedApart(t *testing.T) {
	fitDelay, now = time.Hour, clock.now
	defer func() { fitDelay, now = 0, time.Now }()
	src := &ntcb.Memory{Data: tokens(1, 4, 5, 4), N: 4, Tokens: 5, Dim: 4}
	rep, err := Run(context.Background(), src, Options{Codecs: []string{fitCodec, "int8"}, Ratios: []float64{2}, Repeat: 1, SampleReads: 1, Prefix: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 3 {
		t.Fatalf("rows %+v, skipped %+v", rep.Rows, rep.Skipped)
	}
	fit, fixed := rep.Rows[1], rep.Rows[2]
	encode := float64(rep.Input.FP16Bytes) / fit.EncodeMBps / 1e6
	if fit.FitSeconds < fitDelay.Seconds() || encode >= 1 {
		t.Errorf("%s: fit %.3f s, encode %.3f s; want the fit's %v apart from the encode", fit.Label(), fit.FitSeconds, encode, fitDelay)
	}
	if fixed.FitSeconds != 0 {
		t.Errorf("%s: fit %.3f s", fixed.Label(), fixed.FitSeconds)
	}
}

func TestRunOptions(t *testing.T) {
	src := &ntcb.Memory{Data: tokens(1, 2, 5, 4), N: 2, Tokens: 5, Dim: 4}
	for _, tc := range []struct {
		opts Options
		want error
	}{
		{Options{Device: DeviceCUDA, Prefix: -1}, ErrNoCUDA},
		{Options{Device: "tpu", Prefix: -1}, ErrDevice},
		{Options{Codecs: []string{"nope"}, Prefix: -1}, codec.ErrUnknownCodec},
		{Options{Ratios: []float64{0.5}, Prefix: -1}, ErrOptions},
		{Options{Repeat: -1, Prefix: -1}, ErrOptions},
	} {
		if _, err := Run(context.Background(), src, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.opts, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, src, Options{Codecs: fixedCodecs(), Prefix: -1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// unit returns the 2-D unit vector at deg degrees.
func unit(deg float64) []float64 {
	r := deg * math.Pi / 180
	return []float64{math.Cos(r), math.Sin(r)}
}

func angles(degs ...float64) [][]float64 {
	var vs [][]float64
	for _, d := range degs {
		vs = append(vs, unit(d))
	}
	return vs
}

func TestNNAgreement(t *testing.T) {
	orig := angles(0, 10, 45, 100, 150)
	if t1, t5 := NNAgreement(orig, orig); t1 != 1 || t5 != 1 {
		t.Errorf("identical: %g %g", t1, t5)
	}
	// Sample 2 moves from 45 to 95 degrees: its own neighbour (10) and that
	// of sample 3 (150 -> 95) change; 0, 1 and 4 keep theirs. With five
	// samples every other sample is in the top five.
	if t1, t5 := NNAgreement(orig, angles(0, 10, 95, 100, 150)); t1 != 0.6 || t5 != 1 {
		t.Errorf("moved: %g %g, want 0.6 1", t1, t5)
	}
	// Sample 5 (orig nearest of sample 6 at 200) moves to 20 degrees, the
	// farthest from 200: sample 6 misses in the top five too.
	orig = angles(0, 30, 62, 95, 129, 164, 200)
	recon := angles(0, 30, 62, 95, 129, 20, 200)
	if got := nearest(normalize(recon), 6, 5); !slices.Equal(got, []int{4, 3, 2, 0, 1}) {
		t.Errorf("top five of sample 6: %v", got)
	}
	_, t5 := NNAgreement(orig, recon)
	if t5 == 1 {
		t.Errorf("top5 %g, want a miss", t5)
	}
	// Scaling does not matter (cosine); a single sample has no neighbour.
	scaled := slices.Clone(orig)
	scaled[3] = []float64{10 * orig[3][0], 10 * orig[3][1]}
	if t1, t5 := NNAgreement(orig, scaled); t1 != 1 || t5 != 1 {
		t.Errorf("scaled: %g %g", t1, t5)
	}
	if t1, _ := NNAgreement(orig[:1], orig[:1]); !math.IsNaN(t1) {
		t.Errorf("one sample: %g", t1)
	}
	// Against a brute-force reference on random data.
	r := rand.New(rand.NewPCG(5, 5))
	o, p := make([][]float64, 40), make([][]float64, 40)
	for i := range o {
		o[i], p[i] = make([]float64, 6), make([]float64, 6)
		for j := range o[i] {
			o[i][j] = r.NormFloat64()
			p[i][j] = o[i][j] + 0.4*r.NormFloat64()
		}
	}
	t1, t5 := NNAgreement(o, p)
	w1, w5 := nnReference(o, p)
	if t1 != w1 || t5 != w5 || t1 == 1 || t5 == 0 {
		t.Errorf("random: %g %g, reference %g %g", t1, t5, w1, w5)
	}
}

// nnReference computes the agreement by sorting full rankings.
func nnReference(orig, recon [][]float64) (float64, float64) {
	rank := func(vs [][]float64, i int) []int {
		cos := func(a, b []float64) float64 {
			var d, na, nb float64
			for k := range a {
				d, na, nb = d+a[k]*b[k], na+a[k]*a[k], nb+b[k]*b[k]
			}
			return d / math.Sqrt(na*nb)
		}
		var idx []int
		for j := range vs {
			if j != i {
				idx = append(idx, j)
			}
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			ca, cb := cos(vs[i], vs[a]), cos(vs[i], vs[b])
			return cmpFloat(cb, ca)
		})
		return idx
	}
	var h1, h5 float64
	for i := range orig {
		want := rank(orig, i)[0]
		got := rank(recon, i)
		if got[0] == want {
			h1++
		}
		if slices.Contains(got[:5], want) {
			h5++
		}
	}
	return h1 / float64(len(orig)), h5 / float64(len(orig))
}

func TestRecommend(t *testing.T) {
	row := func(name string, target, ratio, cos, p99 float64) Row {
		r := Row{Codec: name, TargetRatio: target, Ratio: ratio, DecodeP99ms: p99}
		r.Quality.CosMean = cos
		return r
	}
	rows := []Row{
		row(RawCodec, 0, 1, 1, 0.1),
		row("fp16", 0, 1.2, 1, 2),
		row("int8", 0, 2, 0.9999, 1),
		row("int4", 0, 3.5, 0.993, 1),
		row("ntc", 4, 4.1, 0.999, 5),
		row("ntc", 8, 8.2, 0.996, 4),
		row("ntc", 16, 16.3, 0.98, 3),
	}
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{MinCos: 0.995}, "ntc@8x"},
		{Target{MinCos: 0.9995}, "int8"},
		{Target{MinCos: 1}, "fp16"},
		{Target{MaxDecodeMs: 3.5}, "ntc@16x"},
		{Target{MaxDecodeMs: 1.5}, "int4"},
		{Target{MinCos: 0.995, MaxDecodeMs: 4.5}, "ntc@8x"},
		{Target{MinCos: 0.999, MaxDecodeMs: 4.5}, "int8"},
		{Target{}, "ntc@16x"},
		{Target{MaxDecodeMs: 0.5}, ""},
	} {
		got, ok := Recommend(rows, tc.t)
		if (tc.want == "") == ok || (ok && got.Label() != tc.want) {
			t.Errorf("%+v: got %s %v, want %q", tc.t, got.Label(), ok, tc.want)
		}
	}
}

// requiredKeys are the JSON keys every row must carry.
var requiredKeys = []string{"codec", "target_ratio", "target_quality", "ratio", "bits_per_value", "encode_mbps", "fit_s", "decode_mbps",
	"decode_p50_ms", "decode_p99_ms", "sample_p50_ms", "sample_p99_ms", "snr_db", "nmse", "cos_mean", "cos_p1",
	"cos_min", "max_abs_err", "nn_top1", "nn_top5"}

func TestRowJSONAndCSV(t *testing.T) {
	r := Row{Codec: "fp16", Ratio: 1.17, BitsPerValue: 13.7, NNTop1: 1, NNTop5: math.NaN()}
	r.Quality.SNR = math.Inf(1)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range requiredKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if m["snr_db"] != nil || m["target_ratio"] != nil || m["target_quality"] != nil || m["fit_s"] != nil || m["nn_top5"] != nil || m["ratio"] != 1.17 {
		t.Errorf("JSON %s", b)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, []Row{r, {Codec: "ntc", TargetRatio: 8}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || lines[0] != strings.Join(Columns(), ",") {
		t.Fatalf("CSV:\n%s", buf.String())
	}
	for _, k := range requiredKeys {
		if !slices.Contains(Columns(), k) {
			t.Errorf("CSV lacks %q", k)
		}
	}
	if !strings.Contains(lines[1], ",inf,") || !strings.HasPrefix(lines[1], "fp16,,") || !strings.HasPrefix(lines[2], "ntc,8,") {
		t.Errorf("CSV rows:\n%s", buf.String())
	}
}

func TestWritePlot(t *testing.T) {
	rep := &Report{Input: Input{Files: []string{"x.npy"}, Shape: []int{8, 197, 192}}}
	add := func(name string, target, bits, snr, cos float64) {
		r := Row{Codec: name, TargetRatio: target, BitsPerValue: bits, Ratio: 16 / bits}
		r.Quality.SNR, r.Quality.CosMean = snr, cos
		rep.Rows = append(rep.Rows, r)
	}
	add(RawCodec, 0, 16, math.Inf(1), 1)
	add("int8", 0, 8.1, 38, 0.99994)
	add("ntc", 4, 4, 25, 0.998)
	add("ntc", 8, 2, 19, 0.99)
	add("ntc", 0, 2.5, 21, 0.995)
	rep.Rows[len(rep.Rows)-1].TargetQuality = "cos=0.995"
	for _, f := range []string{"svg", "png"} {
		var buf bytes.Buffer
		if err := WritePlot(&buf, rep, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch f {
		case "svg":
			if s := buf.String(); !strings.Contains(s, "<svg") || !strings.Contains(s, "ntc@8x") || !strings.Contains(s, "ntc@cos=0.995") || !strings.Contains(s, "Not drawn") {
				t.Errorf("svg lacks labels")
			}
		case "png":
			if _, err := png.Decode(&buf); err != nil {
				t.Errorf("png: %v", err)
			}
		}
	}
	if _, err := PlotFormat("x.pdf"); !errors.Is(err, ErrPlotFormat) {
		t.Errorf("pdf: %v", err)
	}
}
