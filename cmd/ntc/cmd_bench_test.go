package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/bench"
	"github.com/ntc-project/ntc/pkg/cuda"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

func TestBenchJSON(t *testing.T) {
	code, out, errs := ntc(t, "bench", "--codecs", "fp16", "--json", "--repeat", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Input struct {
			Files   []string       `json:"files"`
			Note    string         `json:"note"`
			Shape   []int          `json:"shape"`
			DType   string         `json:"dtype"`
			Layout  map[string]int `json:"layout"`
			Machine struct {
				OS         string `json:"os"`
				Arch       string `json:"arch"`
				GOMAXPROCS int    `json:"gomaxprocs"`
			} `json:"machine"`
		} `json:"input"`
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	in := rep.Input
	if !slices.Equal(in.Shape, []int{sample.Bench.Samples, 197, 192}) || in.DType != "float16" || in.Layout["prefix_tokens"] != 1 ||
		len(in.Files) != 1 || !strings.Contains(in.Note, "embedded") || in.Machine.OS == "" || in.Machine.GOMAXPROCS < 1 {
		t.Errorf("input %+v", in)
	}
	if len(rep.Rows) != 2 || rep.Rows[0]["codec"] != bench.RawCodec || rep.Rows[1]["codec"] != "fp16" {
		t.Fatalf("rows %v", rep.Rows)
	}
	keys := []string{"codec", "target_ratio", "ratio", "bits_per_value", "encode_mbps", "fit_s", "decode_mbps",
		"decode_p50_ms", "decode_p99_ms", "sample_p50_ms", "sample_p99_ms", "snr_db", "nmse", "cos_mean",
		"cos_p1", "cos_min", "max_abs_err", "nn_top1", "nn_top5"}
	for _, r := range rep.Rows {
		for _, k := range keys {
			if _, ok := r[k]; !ok {
				t.Errorf("row %v lacks %q", r["codec"], k)
			}
		}
		if r["cos_mean"] != 1.0 || r["nn_top1"] != 1.0 || r["snr_db"] != nil {
			t.Errorf("lossless row %v", r)
		}
	}
	if strings.Contains(errs, "skipped") {
		t.Errorf("stderr: %s", errs)
	}
}

func TestBenchTableCSVPlot(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "rd.svg")
	code, out, errs := ntc(t, "bench", "--codecs", "int8", "--repeat", "1", "--plot", plot)
	if code != 0 || !strings.Contains(out, embeddedNote) ||
		!strings.Contains(out, "cos mean") || !strings.Contains(out, "int8") || !strings.Contains(out, "chart: "+plot) {
		t.Fatalf("table: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = ntc(t, "bench", "--codecs", "int8", "--repeat", "1", "--csv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || lines[0] != strings.Join(bench.Columns(), ",") || !strings.HasPrefix(lines[2], "int8,") {
		t.Fatalf("csv: %d\n%s\n%s", code, out, errs)
	}
}

func TestBenchRecommend(t *testing.T) {
	code, out, errs := ntc(t, "bench", "--codecs", "fp16,int8", "--repeat", "1", "--recommend", "--min-cos", "0.999")
	if code != 0 || !strings.Contains(out, "ntc encode TOKENS.npy -o tokens.ntcb --codec int8") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
	// Nothing is faster than this: exit 1, and the JSON says so.
	code, out, errs = ntc(t, "bench", "--codecs", "fp16", "--repeat", "1", "--recommend", "--max-decode-ms", "1e-9", "--json")
	if code != exitError || !strings.Contains(errs, "no codec meets") || !strings.Contains(out, `"recommendation"`) {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--codecs", "nope"}, exitUsage, "known:"},
		{[]string{"--json", "--csv"}, exitUsage, "not both"},
		{[]string{"--recommend"}, exitUsage, "--min-cos"},
		{[]string{"--min-cos", "0.99"}, exitUsage, "--recommend"},
		{[]string{"--device", "tpu"}, exitUsage, "cpu or cuda"},
		{[]string{"--plot", "x.pdf"}, exitUsage, ".svg or .png"},
		{[]string{"--ratios", "0.5"}, exitUsage, "at least 1"},
		{[]string{"--repeat", "0"}, exitUsage, "--repeat"},
		{[]string{"--device", "cuda", "--codecs", "fp16"}, exitError, "without CUDA support"},
		{[]string{"--device", "cuda", "--csv"}, exitUsage, "not with --device cuda"},
		{[]string{"--device", "cuda", "--codecs", "int8,ntc"}, exitUsage, "one codec"},
		{[]string{"--device", "cuda", "a.npy", "b.npy"}, exitUsage, "one token file"},
		{[]string{"--device", "cuda", "--ntcb", "x.ntcb", "--ratios", "4"}, exitUsage, "--ntcb"},
		{[]string{"--device", "cuda", "--samples", "-1"}, exitUsage, "--samples"},
		{[]string{"--ntcb", "x.ntcb"}, exitUsage, "--device cuda"},
		{[]string{"--samples", "3"}, exitUsage, "--device cuda"},
		{[]string{"no-such-file.npy"}, exitError, "no-such-file"},
	} {
		code, _, errs := ntc(t, append([]string{"bench"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
}

func TestBenchParse(t *testing.T) {
	var got *benchOptions
	g := &globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cmd := newBenchCmd(g, func(_ context.Context, o *benchOptions, _ []string) error { got = o; return nil })
	cmd.SetArgs([]string{"--codecs", "int8,fp16", "--ratios", "2,32", "--chunk-size", "1MiB", "--grid", "14x14"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.codecs, []string{"int8", "fp16"}) || !slices.Equal(got.ratios, []float64{2, 32}) ||
		got.chunkBytes != 1<<20 || got.gridH != 14 || got.device != bench.DeviceCPU || got.repeat != bench.DefaultRepeat {
		t.Errorf("options %+v", got)
	}
	if !slices.Equal(got.extraFlags, []string{"--chunk-size", "1MiB", "--grid", "14x14"}) {
		t.Errorf("extra flags %v", got.extraFlags)
	}
}

func TestEncodeCommand(t *testing.T) {
	r := bench.Row{Codec: "ntc", TargetRatio: 8}
	for _, tc := range []struct {
		args  []string
		extra []string
		want  string
	}{
		{nil, nil, "ntc encode TOKENS.npy -o tokens.ntcb --codec ntc --ratio 8"},
		{[]string{"data/a b.npy"}, nil, "ntc encode 'data/a b.npy' -o 'data/a b.ntcb' --codec ntc --ratio 8"},
		{[]string{"x.npz:tokens"}, []string{"--grid", "14x14"}, "ntc encode x.npz:tokens -o x.ntcb --codec ntc --ratio 8 --grid 14x14"},
		{[]string{"shards/*.npy"}, nil, "ntc encode 'shards/*.npy' -o tokens.ntcb --codec ntc --ratio 8"},
	} {
		if got := encodeCommand(tc.args, r, tc.extra); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.args, got, tc.want)
		}
	}
	if got := encodeCommand([]string{"a.npy"}, bench.Row{Codec: "int8"}, nil); got != "ntc encode a.npy -o a.ntcb --codec int8" {
		t.Errorf("fixed: %s", got)
	}
}

// TestBenchCUDAPrepare checks the host side of bench --device cuda: the
// float16 .npy and the .ntcb it hands to cuda.Bench, and its report.
func TestBenchCUDAPrepare(t *testing.T) {
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The same tokens as float32 in a .safetensors file.
	data, shape, _, err := tensorio.ReadAll(in)
	if err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(dir, "tokens.safetensors")
	w, err := tensorio.Create(st, tensorio.Float32, shape[0], shape[1], shape[2])
	if err != nil {
		t.Fatal(err)
	}
	per := shape[1] * shape[2]
	for i := range shape[0] {
		if err := w.WriteSample(data[i*per : (i+1)*per]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	g := &globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, quiet: true}
	parse := func(args ...string) *benchOptions {
		t.Helper()
		var got *benchOptions
		cmd := newBenchCmd(g, func(_ context.Context, o *benchOptions, _ []string) error { got = o; return nil })
		cmd.SetArgs(append([]string{"--device", "cuda"}, args...))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	ctx := context.Background()

	// A float16 .npy is used as it is; the learned codec gets ratio 8.
	o := parse(in)
	if o.cudaRatio != defaultCUDARatio || o.cudaRepeat != 0 {
		t.Errorf("defaults: ratio %g, repeat %d", o.cudaRatio, o.cudaRepeat)
	}
	work := t.TempDir()
	got, err := o.prepareCUDA(ctx, g, work, []string{in})
	if err != nil {
		t.Fatal(err)
	}
	if got.npy != in || got.label != in || got.target != 8 || filepath.Dir(got.ntcb) != work {
		t.Errorf("float16 .npy: %+v", got)
	}
	if r, err := fileRatio(got.ntcb); err != nil || r < 4 {
		t.Errorf("ratio %g, %v", r, err)
	}

	// Anything else is copied to a float16 .npy; a fixed-rate codec takes
	// no ratio.
	o = parse(st, "--codecs", "int8", "--ratios", "4", "--repeat", "2", "--prefix-tokens", "1")
	if o.cudaRatio != 4 || o.cudaRepeat != 2 {
		t.Errorf("flags: ratio %g, repeat %d", o.cudaRatio, o.cudaRepeat)
	}
	work = t.TempDir()
	got, err = o.prepareCUDA(ctx, g, work, []string{st})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(got.npy) != work || got.target != 0 {
		t.Errorf("safetensors: %+v", got)
	}
	a, _ := os.ReadFile(in)
	b, _ := os.ReadFile(got.npy)
	if !bytes.Equal(a, b) {
		t.Error("the float16 copy differs from the float16 original")
	}

	// --ntcb alone: the .npy is the file's tokens, decoded on the CPU.
	ntcbPath := got.ntcb
	o = parse("--ntcb", ntcbPath)
	work = t.TempDir()
	got, err = o.prepareCUDA(ctx, g, work, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ntcb != ntcbPath || got.target != 0 || filepath.Dir(got.npy) != work {
		t.Errorf("--ntcb: %+v", got)
	}
	if _, shape2, dt, err := tensorio.ReadAll(got.npy); err != nil || !slices.Equal(shape2, shape) || dt != tensorio.Float16 {
		t.Errorf("--ntcb .npy: %v %v %v", shape2, dt, err)
	}

	// The report: JSON holds cuda.Bench's fields and the ratio; the table
	// has a row per measurement.
	rep := cudaBenchReport{BenchResult: &cuda.BenchResult{Device: "GPU", Samples: 8, Tokens: 197, Dim: 192, OutputType: "float16",
		KernelGBps: 900, CopyGBps: 1000, KernelVsCopy: 0.9, Speedup: 3.5, Codecs: "ntc"}, Input: "x.npy", Ratio: 7.9, TargetRatio: 8}
	var buf bytes.Buffer
	if err := writeJSON(&globals{stdout: &buf}, rep); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"device", "kernel_gbps", "copy_gbps", "kernel_vs_copy", "e2e_ntcb_gbps", "e2e_npy_gbps", "speedup_vs_npy", "max_rel_err", "ratio", "input"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, buf.String())
		}
	}
	buf.Reset()
	printBenchCUDA(&buf, rep)
	for _, s := range []string{"GPU: 8 x 197 x 192", "ratio 7.90x (target 8)", "kernel decode", "D2D copy", "kernel/copy", "0.90x",
		"host staging", "e2e .ntcb->GPU", "e2e .npy->GPU", "speedup", "3.50x"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, buf.String())
		}
	}
}
