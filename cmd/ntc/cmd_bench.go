package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/internal/fsutil"
	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/bench"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

type benchOptions struct {
	codecs      []string
	ratios      []float64
	device      string
	json        bool
	csv         bool
	wide        bool
	plot        string
	repeat      int
	recommend   bool
	minCos      float64
	maxDecodeMs float64
	ntcbPath    string
	gpu         int
	samples     int
	force       bool
	taskMetric  string
	taskFit     bool
	taskBlend   float64
	dataFlags

	// Parsed in PreRunE.
	plotFormat string
	// With --device cuda: the target ratio, and the timed runs (0: the
	// cuda package's default unless --repeat is given).
	cudaRatio  float64
	cudaRepeat int
	// Flags given explicitly, repeated in a recommended command.
	extraFlags []string
}

// embeddedNote describes the default input in headers and charts.
var embeddedNote = "embedded sample: " + sample.Bench.About

func newBenchCmd(g *globals, runF func(context.Context, *benchOptions, []string) error) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench [INPUT...]",
		Short: "Measure ratio, speed and quality of every codec on your tokens",
		Long: `Bench encodes the input tokens with every codec (and every target ratio of
the codecs with rate control) into in-memory .ntcb files, decodes them back,
and prints one row per codec and rate, next to raw float16 as the reference:

  ratio        float16 bytes / bytes of the whole .ntcb file, model included
  enc, dec     float16 MB (10^6 bytes) per second of wall time; enc starts
               from the fitted model, which 'fit s' times apart
  sample ms    latency of one random sample read (p50)
  SNR, cos mean/p1   reconstruction quality
  nn@1         agreement of the nearest neighbour of each sample's
               mean-pooled embedding, original vs reconstructed
  task dB      with --task-metric M: the SNR weighted by M (the error's
               (x - x^)^T M (x - x^) against the signal's); --task-fit
               also fits the learned codecs in M

and with --wide also bits/val, model KB, chunk decode p50/p99, sample p99,
NMSE, cos min, max err and nn@5. Every codec runs in the same process on the same
data. Decoding is timed over --repeat passes after a warm-up pass.
docs/metrics.md defines every figure.

With no input, bench runs on the real token sample embedded in ntc: 48
DeiT-Tiny block-10 samples (4 crops of 12 photos, 3.6 MB as float16), large
enough that the learned codec's model, which every file stores and its ratio
counts, is a small part of an 8x file, as on real-sized data.

Bench holds the whole input in memory as float32 (twice its float16 size)
plus one encoded file at a time: give it a sample of your tokens; a few
hundred samples are enough.

--recommend with --min-cos or --max-decode-ms picks the highest ratio that
meets the target on this data and prints the 'ntc encode' command to use.
With --min-cos, codecs with rate control also get a row at
--quality cos=MIN-COS, whose encoder searches the highest ratio that meets
it, so the pick is not limited to --ratios.

--device cuda measures decoding into GPU memory instead, on ONE token file
(or the embedded sample; or with --ntcb alone, the tokens that file holds,
decoded on the CPU), with ntc built with CUDA support
(scripts/build-cuda.sh). It writes a float16 .npy copy of the input to a
temporary folder unless the input is one, encodes that with the learned codec
(or the one codec of --codecs) at the first of --ratios (default 8) unless
--ntcb names a .ntcb of the same tokens, and reports, in GB (10^9 bytes) of
float16 output tokens per second:

  kernel decode     device work alone: kernels and GEMM over staged chunks
  D2D copy          a device-to-device copy of the same bytes (the roofline)
  kernel/copy       kernel decode speed over copy speed
  host staging      reading, checking and staging chunks on the CPU
  e2e .ntcb->GPU    from the .ntcb in the page cache to tokens on the GPU
  e2e .npy->GPU     from the float16 .npy in the page cache to the GPU
  speedup           e2e .ntcb->GPU over e2e .npy->GPU

and the largest relative error of GPU against CPU decoding. Each figure is the
median of --repeat timed runs (default 5); --samples decodes only the chunks
that hold the first N samples; --gpu picks the GPU; --workers also sets the
goroutines that stage chunks. The input, its float16 copy and the .ntcb
should fit in the page cache, and the decoded tokens in GPU memory (twice).`,
		Example: examples(
			"ntc bench",
			"ntc bench tokens.npy --ratios 4,8,16 --plot rd.svg",
			"ntc bench tokens.npy --codecs int8,ntc --json | jq '.rows[] | {codec, ratio, cos_mean}'",
			"ntc bench tokens.npy --recommend --min-cos 0.995",
			"ntc bench tokens.npy --device cuda --ratios 8 --json",
			"ntc bench tokens.npy --codecs ntc --task-metric fisher.npy --task-fit",
		),
		Args: cobra.ArbitraryArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			return o.validate(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			if o.device == bench.DeviceCUDA {
				return runBenchCUDA(cmd.Context(), g, o, args)
			}
			return runBench(cmd.Context(), g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.codecs, "codecs", nil, fmt.Sprintf("codecs to measure, comma-separated (default: every registered codec: %s)", strings.Join(bench.DefaultCodecs(), ",")))
	o.ratios = slices.Clone(bench.DefaultRatios)
	f.Var(&ratiosValue{p: &o.ratios}, "ratios", "target ratios for codecs with rate control, comma-separated")
	f.StringVar(&o.device, "device", bench.DeviceCPU, "where to decode: cpu or cuda")
	f.BoolVar(&o.json, "json", false, "print the input's description and the rows as JSON")
	f.BoolVar(&o.csv, "csv", false, "print the rows as CSV")
	f.BoolVar(&o.wide, "wide", false, "print every column (the default table fits 100 columns)")
	f.StringVar(&o.plot, "plot", "", "write a rate-distortion chart to FILE.svg or FILE.png")
	f.IntVar(&o.repeat, "repeat", bench.DefaultRepeat, "timed decode passes over every chunk, after one warm-up pass (with --device cuda: timed runs of each measurement, 5 unless given)")
	f.BoolVar(&o.recommend, "recommend", false, "print the encode command with the highest ratio that meets --min-cos or --max-decode-ms")
	f.Float64Var(&o.minCos, "min-cos", 0, "with --recommend: lowest acceptable mean per-token cosine")
	f.Float64Var(&o.maxDecodeMs, "max-decode-ms", 0, "with --recommend: highest acceptable decode latency per chunk (p99, ms)")
	f.StringVar(&o.ntcbPath, "ntcb", "", "with --device cuda: a .ntcb file of the input's tokens to decode, instead of encoding them")
	f.IntVar(&o.gpu, "gpu", 0, "with --device cuda: the GPU's ordinal")
	f.IntVar(&o.samples, "samples", 0, "with --device cuda: decode only the chunks that hold the first N samples (0: all)")
	f.StringVar(&o.taskMetric, "task-metric", "", "add the task-weighted SNR in a metric: M.npy ([D, D]) or W.safetensors:NAME (M = W^T W)")
	f.BoolVar(&o.taskFit, "task-fit", false, "with --task-metric: fit the learned codecs in the metric too")
	f.Float64Var(&o.taskBlend, "task-blend", codec.DefaultTaskBlend, "with --task-fit: the metric's share of the fitted distortion, in [0, 1)")
	o.dataFlags.addFlags(f)
	addForceFlag(f, &o.force)
	_ = cmd.MarkFlagFilename("plot", "svg", "png")
	_ = cmd.MarkFlagFilename("ntcb", "ntcb")
	_ = cmd.RegisterFlagCompletionFunc("codecs", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return codec.Names(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("device", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{bench.DeviceCPU, bench.DeviceCUDA}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func (o *benchOptions) validate(cmd *cobra.Command, args []string) error {
	var err error
	if o.json && o.csv {
		return usagef("give --json or --csv, not both")
	}
	if o.wide && (o.json || o.csv) {
		return usagef("--wide is for the table; --json and --csv hold every column")
	}
	for _, name := range o.codecs {
		if _, err := codec.Lookup(name); err != nil {
			return usageError{err}
		}
	}
	if cmd.Flags().Changed("codecs") && len(o.codecs) == 0 {
		return usagef("--codecs: name at least one codec (known: %s)", strings.Join(codec.Names(), ", "))
	}
	if len(o.ratios) == 0 {
		return usagef("--ratios: give at least one ratio")
	}
	for _, r := range o.ratios {
		if !(r >= 1) || math.IsInf(r, 0) {
			return usagef("--ratios: %g is not a ratio of at least 1", r)
		}
	}
	if o.device != bench.DeviceCPU && o.device != bench.DeviceCUDA {
		return usagef("--device %q: want %s or %s", o.device, bench.DeviceCPU, bench.DeviceCUDA)
	}
	if o.repeat < 1 {
		return usagef("--repeat must be at least 1")
	}
	if o.plot != "" {
		if o.plotFormat, err = bench.PlotFormat(o.plot); err != nil {
			return usagef("--plot %q: want a .svg or .png file", o.plot)
		}
	}
	if o.minCos < 0 || o.minCos > 1 || math.IsNaN(o.minCos) {
		return usagef("--min-cos must be in [0, 1]")
	}
	if o.maxDecodeMs < 0 || math.IsNaN(o.maxDecodeMs) {
		return usagef("--max-decode-ms must be positive")
	}
	target := o.minCos > 0 || o.maxDecodeMs > 0
	if o.recommend && !target {
		return usagef("--recommend needs --min-cos or --max-decode-ms")
	}
	if target && !o.recommend {
		return usagef("--min-cos and --max-decode-ms go with --recommend")
	}
	if o.taskFit && o.taskMetric == "" {
		return usagef("--task-fit needs --task-metric")
	}
	if cmd.Flags().Changed("task-blend") && !o.taskFit {
		return usagef("--task-blend goes with --task-fit")
	}
	if !(o.taskBlend >= 0 && o.taskBlend < 1) {
		return usagef("--task-blend %g: want a share in [0, 1)", o.taskBlend)
	}
	if o.taskMetric != "" && o.device == bench.DeviceCUDA {
		return usagef("--task-metric is measured on the CPU path (--device cpu)")
	}
	if err := o.dataFlags.parse(); err != nil {
		return err
	}
	if err := o.validateCUDA(cmd, args); err != nil {
		return err
	}
	o.extraFlags = nil
	for _, name := range dataFlagNames {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
			o.extraFlags = append(o.extraFlags, "--"+name, fl.Value.String())
		}
	}
	if o.taskFit {
		o.extraFlags = append(o.extraFlags, "--task-metric", o.taskMetric)
		if cmd.Flags().Changed("task-blend") {
			o.extraFlags = append(o.extraFlags, "--task-blend", fmt.Sprint(o.taskBlend))
		}
	}
	return nil
}

func runBench(ctx context.Context, g *globals, o *benchOptions, args []string) error {
	opts := bench.Options{
		Codecs: o.codecs, Ratios: o.ratios, Repeat: o.repeat, Device: o.device,
		ChunkBytes: o.chunkBytes, Prefix: o.prefix, GridH: o.gridH, GridW: o.gridW,
		FitSamples: o.fitSamples, Workers: o.workers,
		Progress: func(label string, total int) bench.Stage { return g.newProgress(total, label) },
	}
	if o.taskMetric != "" {
		m, err := ntcb.LoadTaskMetric(o.taskMetric)
		if err != nil {
			return err
		}
		m.Blend = o.taskBlend
		opts.TaskMetric, opts.TaskFit = m, o.taskFit
	}
	if o.recommend && o.minCos > 0 && o.minCos < 1 {
		// Search the rate: the encoder finds the highest ratio that meets
		// the target, chunk by chunk.
		opts.Qualities = []string{"cos=" + strconv.FormatFloat(o.minCos, 'g', -1, 64)}
	}
	if o.plot != "" {
		if err := g.checkOutput(o.plot, args, o.force, ""); err != nil {
			return err
		}
	}
	inputs, dir := args, ""
	if len(args) == 0 {
		var err error
		if dir, err = os.MkdirTemp("", "ntc-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		path, err := sample.Bench.Save(dir)
		if err != nil {
			return err
		}
		inputs, opts.Note = []string{path}, embeddedNote
		opts.Files = []string{sample.Bench.Name}
	}
	files, err := g.openInputs(inputs, "")
	if err != nil {
		return err
	}
	defer files.Close()
	if opts.Files == nil {
		opts.Files = inputs
	}
	var src ntcb.Source = files
	if dir != "" {
		src = keysIn{files, filepath.ToSlash(dir) + "/"}
	}
	rep, err := bench.Run(ctx, src, opts)
	if err != nil {
		return err
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(g.stderr, "ntc: bench: skipped %s: %s\n", s.Label(), s.Err)
	}
	if len(rep.Rows) <= 1 {
		return errors.New("no codec could be measured")
	}
	if o.plot != "" {
		if err := writePlotFile(o.plot, o.plotFormat, rep, o.force); err != nil {
			return err
		}
	}
	var rec *recommendation
	if o.recommend {
		rec = o.recommendFor(rep, args)
	}
	switch {
	case o.json:
		if err := writeJSON(g, struct {
			*bench.Report
			Recommendation *recommendation `json:"recommendation,omitempty"`
		}{rep, rec}); err != nil {
			return err
		}
	case o.csv:
		if err := bench.WriteCSV(g.stdout, rep.Rows); err != nil {
			return err
		}
	default:
		printBench(g.stdout, rep, o.wide)
		if o.plot != "" {
			g.summary("chart: %s", o.plot)
		}
		if rec != nil {
			printRecommendation(g.stdout, rec)
		}
	}
	if rec != nil && rec.Row == nil {
		return fmt.Errorf("no codec meets %s on this data", rec.Target)
	}
	return nil
}

// writePlotFile writes the chart to path atomically (internal/fsutil):
// complete or not at all, replacing a file there only with replace.
func writePlotFile(path, format string, rep *bench.Report, replace bool) error {
	f, err := fsutil.Create(path, fsutil.CreateOptions{Replace: replace})
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := bench.WritePlot(f, rep, format); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Commit()
}

// recommendation is the answer of --recommend.
type recommendation struct {
	Target  string     `json:"target"`
	Row     *bench.Row `json:"row"`
	Command string     `json:"command,omitempty"`
}

func (o *benchOptions) recommendFor(rep *bench.Report, args []string) *recommendation {
	t := bench.Target{MinCos: o.minCos, MaxDecodeMs: o.maxDecodeMs}
	var parts []string
	if t.MinCos > 0 {
		parts = append(parts, fmt.Sprintf("cos mean >= %g", t.MinCos))
	}
	if t.MaxDecodeMs > 0 {
		parts = append(parts, fmt.Sprintf("decode p99 <= %g ms per chunk", t.MaxDecodeMs))
	}
	rec := &recommendation{Target: strings.Join(parts, " and ")}
	row, ok := bench.Recommend(rep.Rows, t)
	if !ok {
		return rec
	}
	rec.Row = &row
	rec.Command = encodeCommand(args, row, o.extraFlags)
	return rec
}

// encodeCommand spells the 'ntc encode' command that writes the row's file
// from the inputs.
func encodeCommand(args []string, r bench.Row, extra []string) string {
	ins := args
	out := "tokens.ntcb"
	if len(args) == 0 {
		ins = []string{"TOKENS.npy"}
	} else if len(args) == 1 && !strings.ContainsAny(args[0], "*?[") {
		base := args[0]
		if i := strings.LastIndexByte(base, ':'); i > 0 && filepath.Ext(base[:i]) != "" {
			base = base[:i]
		}
		out = strings.TrimSuffix(base, filepath.Ext(base)) + ".ntcb"
	}
	cmd := []string{"ntc", "encode"}
	for _, a := range ins {
		cmd = append(cmd, shellQuote(a))
	}
	cmd = append(cmd, "-o", shellQuote(out), "--codec", r.Codec)
	switch {
	case r.TargetQuality != "":
		cmd = append(cmd, "--quality", r.TargetQuality)
	case r.TargetRatio > 0:
		cmd = append(cmd, "--ratio", fmt.Sprintf("%g", r.TargetRatio))
	}
	for _, e := range extra {
		cmd = append(cmd, shellQuote(e))
	}
	return strings.Join(cmd, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain
// path characters.
func shellQuote(s string) string {
	plain := s != "" && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || slices.Contains([]rune("-_./:=@,+#%"), c))
	})
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func printRecommendation(w io.Writer, rec *recommendation) {
	fmt.Fprintln(w)
	if rec.Row == nil {
		fmt.Fprintf(w, "no codec meets %s on this data\n", rec.Target)
		return
	}
	r := rec.Row
	fmt.Fprintf(w, "recommended for %s: %s (ratio %.2fx, cos mean %.5f, decode p99 %.3f ms per chunk)\n",
		rec.Target, r.Label(), r.Ratio, r.Quality.CosMean, r.DecodeP99ms)
	fmt.Fprintf(w, "  %s\n", rec.Command)
}

// keysIn is a source whose keys are relative to a folder: the embedded
// sample's copy in a temporary folder keeps the keys of its own name, so
// that its files (whose index holds the keys) do not change size with the
// folder's name.
type keysIn struct {
	ntcb.Source
	dir string
}

func (k keysIn) Key(i int) string { return strings.TrimPrefix(k.Source.Key(i), k.dir) }

// ratiosValue is the value of --ratios: comma-separated ratios, printed
// the way they are written ("4,8,16").
type ratiosValue struct {
	p   *[]float64
	set bool // the first Set replaces the default; later ones add
}

func (v *ratiosValue) String() string {
	if v.p == nil {
		return ""
	}
	parts := make([]string, len(*v.p))
	for i, r := range *v.p {
		parts[i] = strconv.FormatFloat(r, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (v *ratiosValue) Set(s string) error {
	var rs []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", f)
		}
		rs = append(rs, r)
	}
	if !v.set {
		*v.p, v.set = nil, true
	}
	*v.p = append(*v.p, rs...)
	return nil
}

func (v *ratiosValue) Type() string { return "ratios" }

// Compile-time check that the progress bar is a bench stage.
var _ bench.Stage = (*progress)(nil)
