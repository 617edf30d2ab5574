package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/bench"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/cuda"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// This file holds 'ntc bench --device cuda': GPU decoding of one .ntcb
// file against loading the same tokens from a float16 .npy (cuda.Bench).

// defaultCUDARatio is the target ratio of bench --device cuda when
// --ratios is not given.
const defaultCUDARatio = 8

// validateCUDA checks the flags that belong to --device cuda, or that do
// not go with it.
func (o *benchOptions) validateCUDA(cmd *cobra.Command, args []string) error {
	changed := cmd.Flags().Changed
	if o.device != bench.DeviceCUDA {
		for _, name := range []string{"ntcb", "gpu", "samples"} {
			if changed(name) {
				return usagef("--%s goes with --device cuda", name)
			}
		}
		return nil
	}
	switch {
	case o.csv || o.plot != "" || o.recommend:
		return usagef("--csv, --plot and --recommend compare codecs on the CPU: not with --device cuda")
	case len(o.codecs) > 1:
		return usagef("--device cuda measures one codec: give at most one in --codecs")
	case len(args) > 1:
		return usagef("--device cuda measures one token file, got %d", len(args))
	case o.gpu < 0 || o.samples < 0:
		return usagef("--gpu and --samples must be >= 0")
	case o.ntcbPath != "" && (changed("codecs") || changed("ratios")):
		return usagef("--ntcb: the file's codec and ratio are set; drop --codecs and --ratios")
	}
	o.cudaRatio = defaultCUDARatio
	if changed("ratios") {
		o.cudaRatio = o.ratios[0]
	}
	o.cudaRepeat = 0
	if changed("repeat") {
		o.cudaRepeat = o.repeat
	}
	return nil
}

// cudaBenchReport is what bench --device cuda prints: cuda.Bench's result
// and what the command knows about its input.
type cudaBenchReport struct {
	*cuda.BenchResult
	// Input names the token file measured.
	Input string `json:"input"`
	// Ratio is float16 bytes of every sample over the .ntcb's bytes;
	// TargetRatio the ratio asked of the encoder (0: none, or --ntcb).
	Ratio       float64 `json:"ratio"`
	TargetRatio float64 `json:"target_ratio,omitempty"`
}

// cudaBenchInput are the files that cuda.Bench compares.
type cudaBenchInput struct {
	label     string  // the input as the user named it
	npy, ntcb string  // paths of the float16 .npy and the .ntcb
	target    float64 // target ratio of the encode, 0 if none
}

func runBenchCUDA(ctx context.Context, g *globals, o *benchOptions, args []string) error {
	// The device comes first: a binary without CUDA support, or a wrong
	// --gpu, fails before the input is converted or encoded.
	dev, err := cuda.Open(o.gpu)
	if err != nil {
		return err
	}
	defer dev.Close()
	dir, err := os.MkdirTemp("", "ntc-bench-cuda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	in, err := o.prepareCUDA(ctx, g, dir, args)
	if err != nil {
		return err
	}
	res, err := cuda.Bench(ctx, dev, in.ntcb, in.npy, cuda.BenchOptions{
		Samples: o.samples,
		Repeats: o.cudaRepeat,
		Decoder: cuda.DecoderOptions{Workers: o.workers},
	})
	if err != nil {
		return err
	}
	ratio, err := fileRatio(in.ntcb)
	if err != nil {
		return err
	}
	rep := cudaBenchReport{BenchResult: res, Input: in.label, Ratio: ratio, TargetRatio: in.target}
	if o.json {
		return writeJSON(g, rep)
	}
	printBenchCUDA(g.stdout, rep)
	return nil
}

// prepareCUDA finds or writes the float16 .npy and the .ntcb to compare,
// writing what it makes in dir.
func (o *benchOptions) prepareCUDA(ctx context.Context, g *globals, dir string, args []string) (cudaBenchInput, error) {
	var in cudaBenchInput
	var err error
	switch {
	case len(args) == 1:
		specs, err := tensorio.Expand(args)
		if err != nil {
			return in, err
		}
		if len(specs) != 1 {
			return in, usagef("--device cuda measures one token file; %s names %d", args[0], len(specs))
		}
		in.label = specs[0]
		if in.npy, err = o.float16NPY(ctx, g, specs[0], dir); err != nil {
			return in, err
		}
	case o.ntcbPath != "":
		// No token file: the tokens the .ntcb holds, decoded on the CPU.
		in.label = o.ntcbPath
		in.npy = filepath.Join(dir, "tokens.npy")
		if err := o.exportFloat16(ctx, g, o.ntcbPath, in.npy); err != nil {
			return in, err
		}
	default:
		if in.npy, err = sample.Bench.Save(dir); err != nil {
			return in, err
		}
		in.label = sample.Bench.Name + " (" + embeddedNote + ")"
	}
	if o.ntcbPath != "" {
		in.ntcb = o.ntcbPath
		return in, nil
	}
	in.ntcb = filepath.Join(dir, "tokens.ntcb")
	in.target, err = o.encodeCUDA(ctx, g, in.npy, in.ntcb)
	return in, err
}

// float16NPY returns spec when it is a float16 .npy of [N, T, D] tokens,
// else writes a float16 .npy copy of its tokens in dir and returns its path.
func (o *benchOptions) float16NPY(ctx context.Context, g *globals, spec, dir string) (string, error) {
	s, err := tensorio.Open(spec)
	if err != nil {
		return "", err
	}
	ok := strings.EqualFold(filepath.Ext(spec), ".npy") && s.DType() == tensorio.Float16 && len(s.Shape()) == 3
	s.Close()
	if ok {
		return spec, nil
	}
	src, err := ntcb.OpenFiles([]string{spec})
	if err != nil {
		return "", err
	}
	defer src.Close()
	path := filepath.Join(dir, "tokens.npy")
	t, d := src.Shape()
	w, err := tensorio.Create(path, tensorio.Float16, src.Len(), t, d)
	if err != nil {
		return "", err
	}
	defer w.Abort()
	bar := g.newProgress(src.Len(), "float16 copy")
	defer bar.Done()
	if err := ntcb.Copy(ctx, src, w, bar); err != nil {
		return "", err
	}
	return path, w.Close()
}

// exportFloat16 decodes every sample of the .ntcb at in on the CPU into a
// float16 .npy at out.
func (o *benchOptions) exportFloat16(ctx context.Context, g *globals, in, out string) error {
	r, err := ntcb.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	l := r.Layout()
	w, err := tensorio.Create(out, tensorio.Float16, r.Len(), l.Tokens, l.Dim)
	if err != nil {
		return err
	}
	defer w.Abort()
	idx := make([]int, r.Len())
	for i := range idx {
		idx[i] = i
	}
	bar := g.newProgress(len(idx), "decode")
	err = ntcb.Export(ctx, r.Reader, idx, w, bar, o.workers)
	bar.Done()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return w.Close()
}

// encodeCUDA encodes the float16 .npy at npy into a .ntcb at out with the
// codec of --codecs (default the learned one), at o.cudaRatio when the codec
// takes a ratio, which it returns (0 for a fixed-rate codec).
func (o *benchOptions) encodeCUDA(ctx context.Context, g *globals, npy, out string) (float64, error) {
	src, err := ntcb.OpenFiles([]string{npy})
	if err != nil {
		return 0, err
	}
	defer src.Close()
	name := ntcb.DefaultCodec
	if len(o.codecs) == 1 {
		name = o.codecs[0]
	}
	spec, err := codec.Lookup(name)
	if err != nil {
		return 0, err
	}
	t, d := src.Shape()
	l, err := codec.InferLayout(t, d, o.prefix, o.gridH, o.gridW)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", npy, err)
	}
	var copts codec.Options
	if bench.RateControlled(spec, l, o.cudaRatio) {
		copts.Ratio = o.cudaRatio
	}
	bar := g.newProgress(src.Len(), "encode "+name)
	_, err = ntcb.EncodeFile(ctx, out, src, ntcb.Options{
		Codec:        name,
		CodecOptions: copts,
		ChunkBytes:   o.chunkBytes,
		Prefix:       o.prefix,
		GridH:        o.gridH,
		GridW:        o.gridW,
		FitSamples:   o.fitSamples,
		Workers:      o.workers,
		Tool:         "ntc " + toolVersion(),
		Progress:     bar,
	})
	bar.Done()
	return copts.Ratio, err
}

// fileRatio returns float16 bytes of every sample of the .ntcb at path over
// the file's size.
func fileRatio(path string) (float64, error) {
	r, err := ntcb.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	fp16 := int64(r.Len()) * int64(r.Layout().Values()) * 2
	return float64(fp16) / float64(fi.Size()), nil
}

// printBenchCUDA prints the header lines and one row per measurement.
func printBenchCUDA(w io.Writer, rep cudaBenchReport) {
	r := rep.BenchResult
	target := ""
	if rep.TargetRatio > 0 {
		target = fmt.Sprintf(" (target %g)", rep.TargetRatio)
	}
	fmt.Fprintf(w, "ntc bench --device cuda: %s\n", rep.Input)
	fmt.Fprintf(w, "  %s: %d x %d x %d tokens to %s, %.1f MB; %s, ratio %.2fx%s\n",
		r.Device, r.Samples, r.Tokens, r.Dim, r.OutputType, float64(r.OutputBytes)/1e6, r.Codecs, rep.Ratio, target)
	fmt.Fprintf(w, "  .ntcb %.1f MB (staged: %.1f MB with GPU entropy decoding, %.1f MB with CPU), .npy %.1f MB\n\n",
		float64(r.NTCBBytes)/1e6, float64(r.StagedBytes)/1e6, float64(r.StagedHostBytes)/1e6, float64(r.NPYBytes)/1e6)
	row := func(name, gbps, ms string) { fmt.Fprintf(w, "  %-18s %10s %10s\n", name, gbps, ms) }
	rate := func(name string, gbps, sec float64) {
		row(name, fmt.Sprintf("%.2f", gbps), fmt.Sprintf("%.3f", sec*1e3))
	}
	row("", "GB/s", "ms")
	rate("kernel decode", r.KernelGBps, r.KernelSeconds)
	rate("  + entropy", r.DeviceGBps, r.DeviceSeconds)
	rate("D2D copy", r.CopyGBps, r.CopySeconds)
	row("kernel/copy", fmt.Sprintf("%.2fx", r.KernelVsCopy), "")
	row("  + entropy/copy", fmt.Sprintf("%.2fx", r.DeviceVsCopy), "")
	rate("host staging", r.StageGBps, r.StageSeconds)
	rate("  CPU entropy", r.StageHostGBps, r.StageHostSeconds)
	rate("e2e .ntcb->GPU", r.E2EGBps, r.E2ESeconds)
	rate("  CPU entropy", r.E2EHostGBps, r.E2EHostSeconds)
	rate("e2e .npy->GPU", r.NPYGBps, r.NPYSeconds)
	row("speedup", fmt.Sprintf("%.2fx", r.Speedup), "")
	row("  CPU entropy", fmt.Sprintf("%.2fx", r.SpeedupHost), "")
	fmt.Fprintf(w, "\n  max relative error of GPU against CPU decoding: %.3g over %d samples\n", r.MaxRelErr, r.Checked)
}
