package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/bench"
	"github.com/ntc-project/ntc/pkg/metrics"
)

// TestBenchHelpDefaults checks that bench --help prints each default once,
// the way it is written on the command line.
func TestBenchHelpDefaults(t *testing.T) {
	code, out, errs := ntc(t, "bench", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Count(l, "default") > 1 || strings.Contains(l, "000000") {
			t.Errorf("help line %q", l)
		}
	}
	if !strings.Contains(out, "(default 4,8,16)") || !strings.Contains(out, "(default 3)") {
		t.Errorf("defaults of --ratios and --repeat missing:\n%s", out)
	}
	// --ratios still parses as a list, replacing the default.
	for _, tc := range []struct {
		args []string
		want []float64
	}{{nil, bench.DefaultRatios}, {[]string{"--ratios", "2,3", "--ratios", "5"}, []float64{2, 3, 5}}} {
		var got *benchOptions
		g := &globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
		cmd := newBenchCmd(g, func(_ context.Context, o *benchOptions, _ []string) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil || !slices.Equal(got.ratios, tc.want) {
			t.Errorf("%v: ratios %v, %v; want %v", tc.args, got.ratios, err, tc.want)
		}
	}
	if code, _, errs := ntc(t, "bench", "--ratios", "4,x"); code != exitUsage || !strings.Contains(errs, "--ratios") {
		t.Errorf("--ratios 4,x: exit %d %s", code, errs)
	}
}

// TestBenchTable checks the default table as a user sees it: within 100
// columns, the legend under it, and every column with --wide.
func TestBenchTable(t *testing.T) {
	code, out, errs := ntc(t, "bench", "--codecs", "int8", "--repeat", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	checkWidth(t, out)
	for _, want := range []string{"enc MB/s", "fit s", "SNR dB", "cos p1", "nn@1", "ratio: float16 bytes / whole file", "nn@k:", "docs/metrics.md"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NMSE") {
		t.Errorf("default table has the --wide columns:\n%s", out)
	}
	code, out, errs = ntc(t, "bench", "--codecs", "int8", "--repeat", "1", "--wide")
	if code != 0 {
		t.Fatalf("--wide: exit %d: %s", code, errs)
	}
	for _, want := range []string{"bits/val", "model KB", "chunk p50 ms", "sample p50 ms", "NMSE", "cos min", "max err", "nn@5"} {
		if !strings.Contains(out, want) {
			t.Errorf("--wide table lacks %q:\n%s", want, out)
		}
	}
	if code, _, errs := ntc(t, "bench", "--wide", "--json"); code != exitUsage || !strings.Contains(errs, "--wide") {
		t.Errorf("--wide --json: exit %d %s", code, errs)
	}
}

// TestBenchTableWidth checks the default table's width with figures as
// wide as they get: long labels, negative cosines, slow reads.
func TestBenchTableWidth(t *testing.T) {
	rep := &bench.Report{
		Input:  bench.Input{Files: []string{"tokens.npy"}, Shape: []int{4096, 577, 1024}, DType: "bfloat16", FP16Bytes: 4096 * 577 * 1024 * 2},
		Device: bench.DeviceCPU, DecodePasses: 16, SampleReads: 32,
	}
	rep.Input.Machine.CPU = "AMD EPYC 9654 96-Core Processor"
	rep.Input.FitSamples = 221
	for _, label := range []struct {
		codec, quality string
		ratio          float64
	}{{"raw", "", 0}, {"int8", "", 0}, {"ntc", "", 128}, {"ntc", "cos=0.9995", 0}} {
		r := bench.Row{Codec: label.codec, TargetRatio: label.ratio, TargetQuality: label.quality,
			Ratio: 123.45, EncodeMBps: 12345, FitSeconds: 123.45, DecodeMBps: 12345, SampleP50ms: 1234.567,
			FileBytes: 1 << 30, ModelBytes: 1 << 20, NNTop1: 0.5, NNTop5: 1,
			Quality: metrics.Summary{SNR: -12.34, CosMean: -0.12345, CosP1: -0.12345}}
		rep.Rows = append(rep.Rows, r)
	}
	var b bytes.Buffer
	printBench(&b, rep, false)
	checkWidth(t, b.String())
	if !strings.Contains(b.String(), "ntc's model is fitted on 221 of these 4096 samples") {
		t.Errorf("no word on the model's fit:\n%s", b.String())
	}
}

func checkWidth(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(l)); n > tableWidth {
			t.Errorf("%d columns: %q", n, l)
		}
	}
}

// TestBenchFitApart checks that the learned codec's rows give the fit's
// time apart from the encode speed (pkg/bench's TestFitTimedApart checks
// that the encode leaves the fit out), and fixed-rate rows none.
func TestBenchFitApart(t *testing.T) {
	in, err := sample.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := ntc(t, "bench", in, "--codecs", "int8,ntc", "--ratios", "8", "--repeat", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) != 3 {
		t.Fatalf("%v\n%s", err, out)
	}
	if v, ok := rep.Rows[1]["fit_s"]; !ok || v != nil {
		t.Errorf("int8 row: fit_s %v (present %v), want null", v, ok)
	}
	if fit, _ := rep.Rows[2]["fit_s"].(float64); !(fit > 0) {
		t.Errorf("ntc@8x row: fit_s %v", rep.Rows[2]["fit_s"])
	}
}

// TestBenchRecommendSearchesRate checks that --recommend --min-cos finds the
// highest ratio that meets the target, not the best of --ratios: the
// recommended file meets it, and one 10% smaller does not.
func TestBenchRecommendSearchesRate(t *testing.T) {
	in, err := sample.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	type report struct {
		Rows []struct {
			Codec   string  `json:"codec"`
			Ratio   float64 `json:"ratio"`
			CosMean float64 `json:"cos_mean"`
		} `json:"rows"`
		Recommendation struct {
			Row struct {
				Codec   string  `json:"codec"`
				Ratio   float64 `json:"ratio"`
				CosMean float64 `json:"cos_mean"`
			} `json:"row"`
			Command string `json:"command"`
		} `json:"recommendation"`
	}
	bench := func(args ...string) report {
		t.Helper()
		code, out, errs := ntc(t, append([]string{"bench", in, "--codecs", "ntc", "--repeat", "1", "--json"}, args...)...)
		var rep report
		if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
			t.Fatalf("%v: exit %d, %v\n%s", args, code, err, errs)
		}
		return rep
	}
	const target = 0.99
	rec := bench("--ratios", "4,8", "--recommend", "--min-cos", "0.99").Recommendation
	if rec.Row.Codec != "ntc" || !(rec.Row.CosMean >= target) {
		t.Fatalf("recommendation %+v", rec)
	}
	finer := 1.1 * rec.Row.Ratio
	rows := bench("--ratios", strconv.FormatFloat(finer, 'f', 2, 64)).Rows
	if len(rows) != 2 || !(rows[1].CosMean < target) {
		t.Errorf("recommended %.2fx (cos mean %.5f), but %.2fx still meets cos mean >= %g: %+v", rec.Row.Ratio, rec.Row.CosMean, finer, target, rows)
	}
	// The command keeps the target, for data the bench has not seen.
	if !strings.Contains(rec.Command, "--quality cos=0.99") {
		t.Errorf("command %q", rec.Command)
	}
}

// TestBenchEmbeddedKeys checks that the default bench's files do not
// depend on where the embedded sample's temporary copy is: its keys are the
// file's own name, so its sizes are the same in any temporary folder.
func TestBenchEmbeddedKeys(t *testing.T) {
	var sizes []float64
	for _, sub := range []string{"a", strings.Repeat("b", 40)} {
		tmp := filepath.Join(t.TempDir(), sub)
		if err := os.Mkdir(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("TMPDIR", tmp)
		code, out, errs := ntc(t, "bench", "--codecs", "int8", "--repeat", "1", "--json")
		var rep struct {
			Rows []map[string]any `json:"rows"`
		}
		if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Rows) != 2 {
			t.Fatalf("exit %d, %v: %s", code, err, errs)
		}
		size, _ := rep.Rows[1]["file_bytes"].(float64)
		sizes = append(sizes, size)
	}
	if sizes[0] != sizes[1] || sizes[0] == 0 {
		t.Errorf("int8 file of the embedded sample: %v bytes in two temporary folders", sizes)
	}
}
