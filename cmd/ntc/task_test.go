package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// writeNPY64 writes a [rows, cols] float64 .npy file.
func writeNPY64(t *testing.T, path string, v []float64, rows, cols int) {
	t.Helper()
	h := fmt.Sprintf("{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols)
	h += strings.Repeat(" ", 63-(10+len(h))%64) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(b, h...)
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// psd returns W^T W for a random [r, d] W, rounded to float32 values (so
// that 5 M is exact).
func psd(d, r int, scale float64) []float64 {
	rng := rand.New(rand.NewPCG(uint64(d), uint64(r)))
	w := make([]float64, r*d)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	m := make([]float64, d*d)
	for i := range d {
		for j := i; j < d; j++ {
			var s float64
			for k := range r {
				s += w[k*d+i] * w[k*d+j]
			}
			m[i*d+j] = float64(float32(s))
			m[j*d+i] = m[i*d+j]
		}
	}
	for i := range m {
		m[i] *= scale
	}
	return m
}

func taskMetricParams(t *testing.T, path string) map[string]any {
	t.Helper()
	code, out, errs := ntc(t, "inspect", path, "--json")
	var info struct {
		Meta struct {
			Params map[string]any `json:"codec_params"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil {
		t.Fatalf("inspect: %d %v %s", code, err, errs)
	}
	tm, _ := info.Meta.Params["task_metric"].(map[string]any)
	return tm
}

func TestTaskMetricFlag(t *testing.T) {
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	const d = 192
	m1, m5 := filepath.Join(dir, "m1.npy"), filepath.Join(dir, "m5.npy")
	writeNPY64(t, m1, psd(d, 20, 1), d, d)
	writeNPY64(t, m5, psd(d, 20, 5), d, d)
	var files [][]byte
	for i, m := range []string{m1, m5} {
		out := filepath.Join(dir, fmt.Sprintf("x%d.ntcb", i))
		if code, _, errs := ntc(t, "encode", in, "-o", out, "--ratio", "6", "--task-metric", m, "-q"); code != 0 {
			t.Fatalf("encode --task-metric %s: %d %s", m, code, errs)
		}
		b, _ := os.ReadFile(out)
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Fatal("M and 5M give different files")
	}
	tm := taskMetricParams(t, filepath.Join(dir, "x0.ntcb"))
	if tm["kind"] != "matrix" || len(fmt.Sprint(tm["sha256"])) != 64 || tm["blend"] != 0.7 {
		t.Fatalf("task_metric metadata: %v", tm)
	}
	// Fit in a linear layer's metric, then encode with the model: the file
	// records the metric the model was fitted in.
	w := filepath.Join(dir, "proj.safetensors")
	wr, err := tensorio.Create(w, tensorio.Float32, 1, 16, d, tensorio.WithTensorName("proj"))
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]float32, 16*d)
	for i := range rows {
		rows[i] = float32(math.Sin(float64(i)))
	}
	if err := wr.WriteSample(rows); err != nil {
		t.Fatal(err)
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	// A [1, 16, D] file: the layer is [out, D] = [16, D].
	raw, _ := os.ReadFile(w)
	raw = bytes.Replace(raw, []byte(fmt.Sprintf("[1,16,%d]", d)), []byte(fmt.Sprintf("[16,%d]  ", d)), 1)
	if err := os.WriteFile(w, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "m.ntcm")
	if code, _, errs := ntc(t, "fit", in, "-o", model, "--task-metric", w+":proj", "--task-blend", "0.5", "-q"); code != 0 {
		t.Fatalf("fit: %d %s", code, errs)
	}
	y := filepath.Join(dir, "y.ntcb")
	if code, _, errs := ntc(t, "encode", in, "-o", y, "--model", model, "-q"); code != 0 {
		t.Fatalf("encode --model: %d %s", code, errs)
	}
	if tm := taskMetricParams(t, y); tm["kind"] != "linear" || tm["blend"] != 0.5 {
		t.Fatalf("task_metric metadata of a model's file: %v", tm)
	}
}

func TestTaskMetricErrors(t *testing.T) {
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	const d = 192
	bad := func(name string, f func(m []float64), rows, cols int) string {
		m := psd(d, 4, 1)
		f(m)
		p := filepath.Join(dir, name)
		writeNPY64(t, p, m[:rows*cols], rows, cols)
		return p
	}
	small := filepath.Join(dir, "small.npy")
	writeNPY64(t, small, psd(8, 8, 1), 8, 8)
	for _, tc := range []struct {
		metric string
		code   int
		want   string
	}{
		{bad("nan.npy", func(m []float64) { m[d+3] = math.NaN() }, d, d), 1, "nan.npy: bad task metric: M[1][3] = NaN"},
		{bad("asym.npy", func(m []float64) { m[5] += 3 }, d, d), 1, "asym.npy: bad task metric: not symmetric: M[0][5]"},
		{bad("neg.npy", func(m []float64) { m[0] = -50 }, d, d), 1, "neg.npy: bad task metric: not positive semi-definite"},
		{bad("rect.npy", func([]float64) {}, 8, d), 1, "rect.npy: bad task metric: shape [8 192] is not square"},
		{small, 1, "small.npy: [8, 8] matrix for tokens of 192 dims"},
		{filepath.Join(dir, "none.npy"), 1, "none.npy"},
	} {
		code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "x.ntcb"), "--task-metric", tc.metric)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d %q, want %d with %q", filepath.Base(tc.metric), code, errs, tc.code, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "x.ntcb")); err == nil {
			t.Fatalf("%s: output left behind", tc.metric)
		}
	}
	good := filepath.Join(dir, "good.npy")
	writeNPY64(t, good, psd(d, 4, 1), d, d)
	for _, args := range [][]string{
		{"--task-metric", good, "--task-blend", "1"},
		{"--task-metric", good, "--model", filepath.Join(dir, "m.ntcm")},
	} {
		if code, _, errs := ntc(t, append([]string{"encode", in, "-o", filepath.Join(dir, "x.ntcb")}, args...)...); code != 2 {
			t.Errorf("%v: exit %d %s, want 2", args, code, errs)
		}
	}
	if code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "x.ntcb"), "--codec", "int8", "--task-metric", good); code != 2 || !strings.Contains(errs, "no fit") {
		t.Errorf("int8 with a task metric: exit %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "bench", "--task-fit"); code != 2 {
		t.Errorf("bench --task-fit without a metric: exit %d %s", code, errs)
	}
}

// writeFields writes nf gradient fields [nf, tokens, d] (float32) that
// vary slowly across the tokens.
func writeFields(t *testing.T, path string, nf, tokens, d int) {
	t.Helper()
	w, err := tensorio.Create(path, tensorio.Float32, nf, tokens, d)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]float32, tokens*d)
	for i := range nf {
		for p := range tokens {
			for c := range d {
				f[p*d+c] = float32(math.Sin(float64(c*(i+2))) + 0.01*float64(p))
			}
		}
		if err := w.WriteSample(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTaskFieldsFlag(t *testing.T) {
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	const d, grid = 192, 196
	fields := filepath.Join(dir, "g.npy")
	writeFields(t, fields, 3, grid, d)
	m := filepath.Join(dir, "m.npy")
	writeNPY64(t, m, psd(d, 20, 1), d, d)
	for _, tc := range []struct {
		args []string
		kind string
	}{
		{[]string{"--task-metric", fields}, "fields"},
		{[]string{"--task-metric", m, "--task-fields", fields}, "matrix"},
	} {
		out := filepath.Join(dir, "x.ntcb")
		if code, _, errs := ntc(t, append([]string{"encode", in, "-o", out, "--ratio", "8", "-q", "--force"}, tc.args...)...); code != 0 {
			t.Fatalf("%v: %d %s", tc.args, code, errs)
		}
		tm := taskMetricParams(t, out)
		if tm["kind"] != tc.kind || tm["fields"] != 3.0 {
			t.Errorf("%v: task_metric metadata %v", tc.args, tm)
		}
		code, js, errs := ntc(t, "inspect", out, "--json")
		if code != 0 || !strings.Contains(js, `"class_steps"`) {
			t.Errorf("%v: no class_steps in the codec's parameters: %d %s", tc.args, code, errs)
		}
		if code, _, errs := ntc(t, "verify", out); code != 0 {
			t.Errorf("%v: verify: %d %s", tc.args, code, errs)
		}
	}
	short := filepath.Join(dir, "short.npy")
	writeFields(t, short, 2, 100, d)
	code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "y.ntcb"), "--task-metric", short)
	if code != 1 || !strings.Contains(errs, "short.npy: gradient fields of 100 tokens for a 14x14 grid") {
		t.Errorf("fields of another grid: exit %d %q", code, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "y.ntcb"), "--task-fields", fields); code != 2 || !strings.Contains(errs, "--task-fields goes with --task-metric") {
		t.Errorf("--task-fields alone: exit %d %q", code, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "y.ntcb"), "--task-metric", fields, "--task-fields", fields); code != 2 {
		t.Errorf("fields twice: exit %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "y.ntcb")); err == nil {
		t.Fatal("output left behind")
	}
}
