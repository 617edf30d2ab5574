package codec

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// coherentFields returns nf gradient fields [nf, grid, D] that are nearly
// constant across a sample's grid tokens (a random direction per field,
// plus 10% noise): a tail that reads the tokens' mean, whose cost of an
// error e is (a . sum_t e_t)^2, so that the DC classes matter most.
func coherentFields(l Layout, nf int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 11))
	tg := l.GridH * l.GridW
	f := make([]float32, nf*tg*l.Dim)
	a := make([]float64, l.Dim)
	for i := range nf {
		for d := range a {
			a[d] = r.NormFloat64()
		}
		for t := range tg {
			for d := range l.Dim {
				f[(i*tg+t)*l.Dim+d] = float32(a[d] + 0.1*r.NormFloat64())
			}
		}
	}
	return f
}

// coherentCost returns the cost the coherent fields measure: the sum over
// samples and fields of (g . (x - y))^2 over the grid tokens.
func coherentCost(l Layout, x, y []float32, n int, fields []float32, nf int) float64 {
	tg := l.GridH * l.GridW
	var cost float64
	for s := range n {
		for f := range nf {
			var dot float64
			for t := range tg {
				o := (s*l.Tokens + l.Prefix + t) * l.Dim
				g := fields[(f*tg+t)*l.Dim:][:l.Dim]
				for d := range l.Dim {
					dot += float64(g[d]) * float64(x[o+d]-y[o+d])
				}
			}
			cost += dot * dot
		}
	}
	return cost
}

func fieldsMetric(t *testing.T, l Layout, nf int, seed uint64) *TaskMetric {
	t.Helper()
	tm, err := FieldsTaskMetric(coherentFields(l, nf, seed), nf, l.GridH*l.GridW, l.Dim)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestClassSteps checks that a fit with gradient fields writes model
// version 9 with class step codes (its flag set, int8 rows), finer where the fields' energy is (the DC classes
// of coherent fields), that the model reloads to the same decoder, and
// that the fields' cost falls against a fit in the same matrix without
// them at about the same size.
func TestClassSteps(t *testing.T) {
	l := Layout{Tokens: 1 + 8*8, Dim: 24, Prefix: 1, GridH: 8, GridW: 8}
	const n, chunk, nf = 48, 16, 24
	src := synthTokens(l, n, 5)
	tm := fieldsMetric(t, l, nf, 9)
	c, ps, got := fitEncode(t, l, src, n, Options{Ratio: 8, ChunkSamples: chunk, TaskMetric: tm})
	nc := c.(*ntcCodec)
	if nc.mver != ntcModelVersion || nc.Model()[0] != ntcModelVersion || nc.Model()[1] != ntcFlagClassSteps || len(nc.csc) != ntcClasses*nc.k {
		t.Fatalf("model version %d with %d class step codes for %d components", nc.mver, len(nc.csc), nc.k)
	}
	// Component 0: the DC of the DC group against the highest AC frequency.
	if dc, ac := nc.csc[blockSize], nc.csc[blockSize-1]; dc >= ac || dc >= 0 {
		t.Errorf("class step codes of component 0: DC %d, highest AC %d; want DC finer, below 0", dc, ac)
	}
	if p := nc.Params(); p["class_steps"] == nil || p["task_metric"].(map[string]any)["fields"] != nf {
		t.Errorf("params %v", p)
	}
	lc, err := loadNTC(l, c.Model())
	if err != nil {
		t.Fatal(err)
	}
	if again := decodeChunks(t, lc, ps, n, chunk); !sameFloats(again, got) {
		t.Error("the reloaded model decodes differently")
	}
	if !sameCodings(encodeChunks(t, lc, src, n, chunk), ps) {
		t.Error("the reloaded model encodes differently")
	}

	// The same matrix without the fields: a model of the current version
	// without flags (a metric's basis is stored as rows).
	plain, err := NewTaskMetric(tm.Normalized(), l.Dim, MetricMatrix)
	if err != nil {
		t.Fatal(err)
	}
	c6, ps6, got6 := fitEncode(t, l, src, n, Options{Ratio: 8, ChunkSamples: chunk, TaskMetric: plain})
	if m := c6.Model(); m[0] != ntcModelVersion || m[1] != 0 {
		t.Fatalf("model version %d, flags %d without fields", m[0], m[1])
	}
	size := func(c Codec, ps [][]byte) int {
		s := len(c.Model())
		for _, p := range ps {
			s += len(p)
		}
		return s
	}
	fields := tm.fields.(*sliceFields).f
	with, without := coherentCost(l, src, got, n, fields, nf), coherentCost(l, src, got6, n, fields, nf)
	t.Logf("fields' cost %.4g with class steps, %.4g without; %d and %d bytes", with, without, size(c, ps), size(c6, ps6))
	if r := float64(size(c, ps)) / float64(size(c6, ps6)); r > 1.03 || r < 0.97 {
		t.Errorf("sizes %d and %d differ by more than 3%%", size(c, ps), size(c6, ps6))
	}
	if with > 0.8*without {
		t.Errorf("fields' cost %.4g with class steps, %.4g without: want at least 20%% less", with, without)
	}
}

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestClassStepsRejects checks the loader's checks of the class step
// codes and the fit's checks of the fields.
func TestClassStepsRejects(t *testing.T) {
	l := ntcTestLayouts[0]
	const n, nf = 8, 6
	src := synthTokens(l, n, 2)
	c, err := newNTC(l, src, n, Options{Ratio: 5, TaskMetric: fieldsMetric(t, l, nf, 3)})
	if err != nil {
		t.Fatal(err)
	}
	m := c.Model()
	codes := len(m) - ntcClasses*c.(*ntcCodec).k
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"code too large", func(b []byte) []byte { b[codes+1] = 33; return b }, "class step code 33"},
		{"code too small", func(b []byte) []byte { b[codes+2] = 0xdf; return b }, "class step code -33"},
		{"class 0", func(b []byte) []byte { b[codes+ntcClasses] = 1; return b }, "component 1, class 0"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, "want"},
		{"version 6 with codes", func(b []byte) []byte { b[0], b[1] = 6, 0; return b }, "want"},
		{"version 6 with the flag", func(b []byte) []byte { b[0] = 6; return b }, "version 6 flags 1"},
		{"flag cleared", func(b []byte) []byte { b[1] = 0; return b }, "want"},
		{"unknown flag", func(b []byte) []byte { b[1] = 5; return b }, "version 9 flags 5"},
		{"version 8 with flag 2", func(b []byte) []byte { b[0], b[1] = 8, 3; return b }, "version 8 flags 3"},
	} {
		_, err := loadNTC(l, tc.edit(append([]byte(nil), m...)))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	tg := l.GridH * l.GridW
	f := coherentFields(l, nf, 1)
	if _, err := FieldsTaskMetric(f, nf, tg+1, l.Dim); !errors.Is(err, ErrMetric) {
		t.Errorf("wrong count: %v", err)
	}
	f[5] = float32(math.NaN())
	if _, err := FieldsTaskMetric(f, nf, tg, l.Dim); !errors.Is(err, ErrMetric) || !strings.Contains(err.Error(), "field 0, token 0, value 5") {
		t.Errorf("NaN: %v", err)
	}
	if _, err := FieldsTaskMetric(make([]float32, nf*tg*l.Dim), nf, tg, l.Dim); !errors.Is(err, ErrMetric) {
		t.Errorf("zero fields: %v", err)
	}
	// Fields of another grid than the layout's.
	other := Layout{Tokens: 16, Dim: l.Dim, GridH: 4, GridW: 4}
	tm, err := FieldsTaskMetric(coherentFields(other, 2, 1), 2, 16, l.Dim)
	if err != nil {
		t.Fatal(err)
	}
	tm.Source = "f.npy"
	if _, err := newNTC(l, src, n, Options{TaskMetric: tm}); !errors.Is(err, ErrMetric) || !strings.Contains(err.Error(), "f.npy: gradient fields of 16 tokens for a 6x6 grid") {
		t.Errorf("other grid: %v", err)
	}
}

// TestFieldsTaskMetric checks M against its definition and that the hash
// covers the fields.
func TestFieldsTaskMetric(t *testing.T) {
	l := Layout{Tokens: 4, Dim: 3, GridH: 2, GridW: 2}
	const nf = 5
	f := coherentFields(l, nf, 4)
	tm, err := FieldsTaskMetric(f, nf, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	m := make([]float64, 9)
	for i := range nf * 4 {
		g := f[i*3:][:3]
		for a := range 3 {
			for b := range 3 {
				m[a*3+b] += float64(g[a]) * float64(g[b]) / nf
			}
		}
	}
	want, err := NewTaskMetric(m, 3, MetricMatrix)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range tm.Normalized() {
		if math.Abs(v-want.norm[i]) > 1e-12 {
			t.Fatalf("M[%d] = %g, want %g", i, v, want.norm[i])
		}
	}
	if tm.Kind != MetricFields || tm.Fields() != nf || tm.SHA256() == want.SHA256() {
		t.Errorf("kind %s, %d fields, hash equal to the matrix's: %v", tm.Kind, tm.Fields(), tm.SHA256() == want.SHA256())
	}
	before := want.SHA256()
	again, _ := NewTaskMetric(m, 3, MetricMatrix)
	if err := want.SetFields(f, nf, 4); err != nil || want.SHA256() == before {
		t.Errorf("SetFields: %v, hash unchanged", err)
	}
	if err := again.SetFields(f, nf, 4); err != nil || again.SHA256() != want.SHA256() {
		t.Errorf("SetFields twice: %v, hashes %x and %x", err, again.SHA256(), want.SHA256())
	}
}

// TestStageClassSteps checks that a model with class steps stages its
// chunks for the device programs like any other (both modes), with the
// multipliers in the device model, and that the reference device program
// decodes them as Decode does: on grids of several blocks per group side,
// whose DC classes differ by the block's position in its group.
func TestStageClassSteps(t *testing.T) {
	for _, l := range stageLayouts[:3] {
		const n, chunk = 12, 5
		src := synthTokens(l, n, 8)
		c, err := newNTC(l, src, n, Options{Ratio: 6, ChunkSamples: chunk, TaskMetric: fieldsMetric(t, l, 4, 2)})
		if err != nil {
			t.Fatal(err)
		}
		nc := c.(*ntcCodec)
		m := nc.DeviceModel()
		if m.Version != ntcModelVersion || len(m.ClassMul) != len(nc.blocks)*blockSize*nc.k {
			t.Fatalf("%+v: device model version %d with %d class multipliers for %d components", l, m.Version, len(m.ClassMul), nc.k)
		}
		distinct := map[float32]bool{}
		for _, v := range m.ClassMul {
			distinct[v] = true
		}
		if len(distinct) < 4 {
			t.Fatalf("%+v: %d distinct class multipliers; the test needs steps that differ", l, len(distinct))
		}
		ps := encodeChunks(t, c, src, n, chunk)
		want := decodeChunks(t, c, ps, n, chunk)
		for _, mode := range []StageMode{StageAuto, StageHostEntropy} {
			sz, err := nc.StageSize(ps[0], chunk, mode)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, sz)
			st, err := nc.Stage(buf, ps[0], chunk, mode)
			if err != nil || (st.Kind != DeviceNTC && st.Kind != DeviceNTCStreams) || st.NTC.Model != m {
				t.Fatalf("%+v mode %d: staged as kind %d: %v", l, mode, st.Kind, err)
			}
			got, _ := stageAndFinish(t, c, ps, n, chunk, mode)
			if e := relErr(got, want); e > 1e-3 {
				t.Errorf("%+v mode %d: staged decode differs from Decode by %.2g (relative)", l, mode, e)
			}
		}
	}
}

// countingFields is a FieldSource over fields in memory that records its
// reads and fails the read of pass fail (0 never; a pass reads field 0).
type countingFields struct {
	sliceFields
	reads, most, passes, fail int
}

func (c *countingFields) ReadFields(first int, dst []float32) error {
	if first == 0 {
		c.passes++
	}
	if c.passes == c.fail {
		return fmt.Errorf("read of pass %d failed", c.passes)
	}
	c.reads++
	c.most = max(c.most, len(dst))
	return c.sliceFields.ReadFields(first, dst)
}

// TestFieldSource checks that fields read from a source, a few at a time,
// give the metric and the fit that the same fields in memory give, bit for
// bit; that a fit reads them at most fieldBatch at a time; and that a
// failed read fails the metric or the fit with the source's error.
func TestFieldSource(t *testing.T) {
	l := Layout{Tokens: 1 + 6*6, Dim: 16, Prefix: 1, GridH: 6, GridW: 6}
	const n, nf = 24, 150
	tg := l.GridH * l.GridW
	f := coherentFields(l, nf, 3)
	src := synthTokens(l, n, 4)
	want, err := FieldsTaskMetric(f, nf, tg, l.Dim)
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFields{sliceFields: sliceFields{f, nf, tg, l.Dim}}
	got, err := FieldsTaskMetricFrom(cf, l.Dim)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256() != want.SHA256() || got.Fields() != nf || cf.passes != 2 {
		t.Errorf("hash %x, want %x; %d fields; %d passes, want 2", got.SHA256(), want.SHA256(), got.Fields(), cf.passes)
	}
	cw, err := newNTC(l, src, n, Options{Ratio: 6, ChunkSamples: 8, TaskMetric: want})
	if err != nil {
		t.Fatal(err)
	}
	cf.reads, cf.most = 0, 0
	cg, err := newNTC(l, src, n, Options{Ratio: 6, ChunkSamples: 8, TaskMetric: got})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cg.Model(), cw.Model()) {
		t.Error("the fit with fields from a source made another model than with the same fields in memory")
	}
	if want := (nf + fieldBatch - 1) / fieldBatch; cf.reads != want || cf.most != fieldBatch*tg*l.Dim {
		t.Errorf("the fit read the fields in %d reads of at most %d values, want %d of %d", cf.reads, cf.most, want, fieldBatch*tg*l.Dim)
	}

	// Batches never pass fieldBuffer values: fields of more than half of
	// it go one at a time.
	big := &countingFields{sliceFields: sliceFields{make([]float32, 3*(fieldBuffer/2+1)), 3, 1, fieldBuffer/2 + 1}}
	if err := eachFields(big, big.dm, 64, func(int, []float32) error { return nil }); err != nil || big.reads != 3 || big.most != fieldBuffer/2+1 {
		t.Errorf("fields over half the buffer: %v, %d reads of at most %d values", err, big.reads, big.most)
	}

	for pass, where := range map[int]string{1: "matrix", 2: "hash"} {
		if _, err := FieldsTaskMetricFrom(&countingFields{sliceFields: sliceFields{f, nf, tg, l.Dim}, fail: pass}, l.Dim); err == nil || !strings.Contains(err.Error(), "failed") {
			t.Errorf("failed read in the %s pass: %v", where, err)
		}
	}
	bad := &countingFields{sliceFields: sliceFields{f, nf, tg, l.Dim}, fail: 3}
	tm, err := FieldsTaskMetricFrom(bad, l.Dim)
	if err != nil {
		t.Fatal(err)
	}
	tm.Source = "g.npy"
	if _, err := newNTC(l, src, n, Options{Ratio: 6, TaskMetric: tm}); err == nil || !strings.Contains(err.Error(), "task fields g.npy: read of pass 3 failed") {
		t.Errorf("failed read in the fit: %v", err)
	}
	if _, err := FieldsTaskMetricFrom(&sliceFields{nil, 1, 1, maxFieldsDim + 1}, maxFieldsDim+1); !errors.Is(err, ErrMetric) {
		t.Errorf("fields of %d dims: %v", maxFieldsDim+1, err)
	}
}
