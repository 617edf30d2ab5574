package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/pkg/bench"
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
	if !slices.Equal(in.Shape, []int{8, 197, 192}) || in.DType != "float16" || in.Layout["prefix_tokens"] != 1 ||
		len(in.Files) != 1 || !strings.Contains(in.Note, "embedded") || in.Machine.OS == "" || in.Machine.GOMAXPROCS < 1 {
		t.Errorf("input %+v", in)
	}
	if len(rep.Rows) != 2 || rep.Rows[0]["codec"] != bench.RawCodec || rep.Rows[1]["codec"] != "fp16" {
		t.Fatalf("rows %v", rep.Rows)
	}
	keys := []string{"codec", "target_ratio", "ratio", "bits_per_value", "encode_mbps", "decode_mbps",
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
	if code != 0 || !strings.Contains(out, "embedded sample: 8 real DeiT-Tiny block-10 token samples") ||
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
