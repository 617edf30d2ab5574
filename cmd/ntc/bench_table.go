package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ntc-project/ntc/pkg/bench"
)

// tableWidth is the width, in columns, that bench's default table, header
// and notes fit in; --wide adds every column.
const tableWidth = 100

// benchColumn is one column of bench's table. A new figure is one more
// entry in benchColumns: wide columns show only with --wide, so the
// default table must stay within tableWidth (TestBenchTableWidth).
type benchColumn struct {
	head     string
	wideHead string // the head with --wide, if not head
	wide     bool
	task     bool // shown only when the report has a task metric
	cell     func(r *bench.Row) string
}

var benchColumns = []benchColumn{
	{head: "codec", cell: func(r *bench.Row) string { return r.Label() }},
	{head: "ratio", cell: func(r *bench.Row) string { return fmt.Sprintf("%.2f", r.Ratio) }},
	{head: "bits/val", wide: true, cell: func(r *bench.Row) string { return fmt.Sprintf("%.3f", r.BitsPerValue) }},
	{head: "model KB", wide: true, cell: func(r *bench.Row) string { return fmtKB(r.ModelBytes) }},
	{head: "enc MB/s", cell: func(r *bench.Row) string { return fmt.Sprintf("%.0f", r.EncodeMBps) }},
	{head: "fit s", cell: func(r *bench.Row) string { return fmtFit(r.FitSeconds) }},
	{head: "dec MB/s", cell: func(r *bench.Row) string { return fmt.Sprintf("%.0f", r.DecodeMBps) }},
	{head: "chunk p50 ms", wide: true, cell: func(r *bench.Row) string { return fmt.Sprintf("%.3f", r.DecodeP50ms) }},
	{head: "p99 ms", wide: true, cell: func(r *bench.Row) string { return fmt.Sprintf("%.3f", r.DecodeP99ms) }},
	{head: "sample ms", wideHead: "sample p50 ms", cell: func(r *bench.Row) string { return fmt.Sprintf("%.3f", r.SampleP50ms) }},
	{head: "p99 ms", wide: true, cell: func(r *bench.Row) string { return fmt.Sprintf("%.3f", r.SampleP99ms) }},
	{head: "SNR dB", cell: func(r *bench.Row) string { return fmtSNR(r.Quality.SNR) }},
	{head: "NMSE", wide: true, cell: func(r *bench.Row) string { return fmt.Sprintf("%.2e", r.Quality.NMSE) }},
	{head: "cos mean", cell: func(r *bench.Row) string { return fmt.Sprintf("%.5f", r.Quality.CosMean) }},
	{head: "cos p1", cell: func(r *bench.Row) string { return fmt.Sprintf("%.5f", r.Quality.CosP1) }},
	{head: "cos min", wide: true, cell: func(r *bench.Row) string { return fmt.Sprintf("%.5f", r.Quality.CosMin) }},
	{head: "max err", wide: true, cell: func(r *bench.Row) string { return fmt.Sprintf("%.3g", r.Quality.MaxAbsErr) }},
	{head: "nn@1", cell: func(r *bench.Row) string { return fmtFrac(r.NNTop1) }},
	{head: "nn@5", wide: true, cell: func(r *bench.Row) string { return fmtFrac(r.NNTop5) }},
	{head: "task dB", task: true, cell: func(r *bench.Row) string { return fmtSNR(r.TaskSNR) }},
}

// benchLegend is printed under the table: what the figures mean, and
// where they are defined.
var benchLegend = []string{
	"ratio: float16 bytes / whole file, model included; SNR: 10 log10(variance / error power), dB;",
	"cos p1: 1st percentile of per-token cosine; nn@k: nearest neighbour kept in top k (docs/metrics.md)",
}

// printBench prints the header, the table (every column with wide), the
// model note and the legend.
func printBench(w io.Writer, rep *bench.Report, wide bool) {
	in, m := rep.Input, rep.Input.Machine
	fmt.Fprintf(w, "ntc bench: %s\n", fileList(in.Files))
	if in.Note != "" {
		fmt.Fprintf(w, "  %s\n", in.Note)
	}
	if len(in.Shape) == 3 {
		fmt.Fprintf(w, "  %d x %d x %d %s, %.1f MB as float16, %d samples per chunk\n",
			in.Shape[0], in.Shape[1], in.Shape[2], in.DType, float64(in.FP16Bytes)/1e6, in.ChunkSamples)
	}
	fmt.Fprintf(w, "  decode on %s: %d timed passes, %d cold sample reads; GOMAXPROCS %d\n",
		rep.Device, rep.DecodePasses, rep.SampleReads, m.GOMAXPROCS)
	cpu := m.CPU
	if cpu == "" {
		cpu = "unknown CPU"
	}
	fmt.Fprintf(w, "  %s/%s, %s, kernels %s\n", m.OS, m.Arch, cpu, kernelsLine(m.Vector, m.TableReads))
	task := in.TaskMetric != nil
	if task {
		fitted := "learned codecs fitted in plain squared error"
		if in.TaskMetric.Fitted {
			fitted = fmt.Sprintf("learned codecs fitted in it, blend %g", in.TaskMetric.Blend)
		}
		fmt.Fprintf(w, "  task dB: SNR in the %s metric %s (%s)\n", in.TaskMetric.Kind, in.TaskMetric.Source, fitted)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	var cells []string
	for _, c := range benchColumns {
		switch {
		case c.task && !task:
		case wide && c.wideHead != "":
			cells = append(cells, c.wideHead)
		case wide || !c.wide:
			cells = append(cells, c.head)
		}
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	for i := range rep.Rows {
		cells = cells[:0]
		for _, c := range benchColumns {
			if (wide || !c.wide) && (task || !c.task) {
				cells = append(cells, c.cell(&rep.Rows[i]))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, l := range modelNote(rep) {
		fmt.Fprintln(w, l)
	}
	for _, l := range benchLegend {
		fmt.Fprintln(w, l)
	}
}

// fileList names the inputs in the header: all of them, or the first and
// the last of many.
func fileList(files []string) string {
	if len(files) > 3 {
		return fmt.Sprintf("%s ... %s (%d files)", files[0], files[len(files)-1], len(files))
	}
	return strings.Join(files, " ")
}

// modelNote says how the models of the learned codecs' rows are counted:
// stored in the file and counted in its ratio, how large they are, and the
// ratio without it, which a dataset large enough for the model's share to
// vanish approaches.
func modelNote(rep *bench.Report) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 8, 1, ' ', 0)
	var codecs []string
	for _, r := range rep.Rows {
		if r.ModelBytes <= 0 || r.FileBytes <= int64(r.ModelBytes) {
			continue
		}
		if !slices.Contains(codecs, r.Codec) {
			codecs = append(codecs, r.Codec)
			tw.Flush()
			fmt.Fprintf(&b, "%s's model is fitted on %s and stored in the file; ratios count it:\n", r.Codec, fitOn(rep.Input))
		}
		rest := float64(rep.Input.FP16Bytes) / float64(r.FileBytes-int64(r.ModelBytes))
		fmt.Fprintf(tw, "  %s\t%s KB,\t%4.1f%% of the file;\t%.2fx without it\n",
			r.Label(), fmtKB(r.ModelBytes), 100*float64(r.ModelBytes)/float64(r.FileBytes), rest)
	}
	tw.Flush()
	if b.Len() == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// fitOn says which samples a learned codec is fitted on.
func fitOn(in bench.Input) string {
	n := 0
	if len(in.Shape) == 3 {
		n = in.Shape[0]
	}
	if in.FitSamples >= n {
		return fmt.Sprintf("these %d samples", n)
	}
	return fmt.Sprintf("%d of these %d samples", in.FitSamples, n)
}

func fmtKB(b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(b)/1e3)
}

func fmtFit(s float64) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", s)
}

func fmtSNR(v float64) string {
	if math.IsInf(v, 1) {
		return "inf"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtFrac(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}
