package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ntc-project/ntc/internal/fsutil"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/dataset"
	"github.com/ntc-project/ntc/pkg/metrics"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

type encodeOptions struct {
	output  string
	codec   string
	ratio   float64
	quality string
	model   string
	meta    []string
	json    bool
	force   bool
	keyRoot string
	// taskMetric names a task metric file (--task-metric), taskFields
	// gradient fields added to it (--task-fields), taskBlend its share of
	// the fitted distortion.
	taskMetric string
	taskFields string
	taskBlend  float64
	dataFlags
	shardSamples int
	appendTo     bool
	embedModel   bool

	// Parsed in PreRunE.
	metaMap map[string]string
}

func newEncodeCmd(g *globals, runF func(context.Context, *encodeOptions, []string) error) *cobra.Command {
	o := &encodeOptions{}
	cmd := &cobra.Command{
		Use:   "encode INPUT... -o OUT.ntcb|DIR",
		Short: "Compress token files into a .ntcb file or a dataset of shards",
		Long: `Encode reads token tensors from .npy, .npz or .safetensors files (globs
allowed) and writes one .ntcb file, or a dataset. Each input holds one sample
[T, D] or a batch [N, T, D]; every sample gets a key: the input's path relative to
--key-root (default: the inputs' common directory) without its extension,
plus "#i" for the i-th sample of a batch file ('ntc encode /data/a.npy
/data/b.npy' gives a#0, ..., b#0, ...). Inputs that would give the same
key are an error.

Select an array inside an .npz or .safetensors file with FILE:NAME. A
directory stands for the token files in it and its subdirectories, in
sorted order, keyed relative to it. "-" reads one tensor from standard
input; -o - writes the .ntcb stream to standard output (on an error it
stays incomplete: readers refuse it) and the summary to standard error.
T = prefix + H*W: the layout is inferred (one CLS token when T-1 is a perfect
square) or set with --prefix-tokens or --grid.

The output appears only when encoding succeeds: it is written to a
temporary file, synced, and moved into place. An existing file is not
replaced without --force, and never when it is one of the inputs. Memory stays bounded
whatever the dataset's size: ntc keeps its heap near 400 MiB unless
GOMEMLIMIT says otherwise; --fit-samples sets how much a fit holds.

With --model, the file holds the model by reference (its SHA-256), not a
copy: keep the .ntcm next to the file (or name it with --model when
reading); --embed-model stores a copy instead. Without --model the encode
fits its own model and stores it in the file.

With --shard-samples N, --append, or -o naming a directory, the output is a
dataset: DIR/index.json, the model once (DIR/model.ntcm) and shards of N
samples (DIR/shard-00000.ntcb, ...) that hold the model by reference. A fit
(without --model) aims the whole dataset at --ratio: shards, model and
index. index.json is written last, once every shard is complete; --append
adds shards, encoded with the dataset's model, and keeps the index
consistent. Shards are encoded several at a time.

Ends with one line: ratio against float16, bits per value, SNR and per-token
cosine (mean and 1st percentile) of the decoded file against the input; for
a dataset, its ratio over every file and over the shards alone.`,
		Example: examples(
			"ntc encode tokens.npy -o tokens.ntcb",
			"ntc encode 'shards/*.npy' -o train.ntcb --codec fp16 --meta model=clip-vit-l-14-336 --meta layer=-2",
			"ntc encode batch.safetensors:hidden -o batch.ntcb --grid 24x24",
			"ntc encode tokens/ -o tokens.ntcb",
			"python3 dump.py | ntc encode - -o - > x.ntcb",
			"ntc encode 'shards/*.npy' -o data/ --shard-samples 64 --model clip-l.ntcm",
			"ntc encode 'more/*.npy' -o data/ --append",
		),
		Args: minArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			return o.validate()
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			return runEncode(cmd.Context(), g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output .ntcb file or dataset directory (required)")
	o.addCodecFlags(cmd)
	f.StringVar(&o.model, "model", "", "encode with a model fitted by 'ntc fit' (.ntcm), held by reference")
	f.BoolVar(&o.embedModel, "embed-model", false, "with --model: store a copy of the model in the file")
	f.BoolVar(&o.appendTo, "append", false, "add the inputs to the dataset in -o as new shards, with its model")
	o.addShardFlag(f)
	f.StringArrayVar(&o.meta, "meta", nil, "key=value kept in the metadata (model name, layer, ...); repeatable")
	o.dataFlags.addFlags(f)
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	addForceFlag(f, &o.force)
	f.StringVar(&o.keyRoot, "key-root", "", "directory the sample keys are relative to (default: the inputs' common directory)")
	_ = cmd.MarkFlagDirname("key-root")
	_ = cmd.MarkFlagFilename("output", "ntcb")
	_ = cmd.MarkFlagFilename("model", "ntcm")
	return cmd
}

// addCodecFlags adds the flags that choose a codec and its rate.
func (o *encodeOptions) addCodecFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.codec, "codec", "", fmt.Sprintf("codec: %s (default %s)", strings.Join(codec.Names(), ", "), ntcb.DefaultCodec))
	f.Float64Var(&o.ratio, "ratio", 0, "target ratio of the whole file against float16 (model included), for codecs with rate control")
	f.StringVar(&o.quality, "quality", "", "quality target met on every chunk, e.g. cos=0.99 or snr=20")
	f.StringVar(&o.taskMetric, "task-metric", "", "fit the learned codec in a task metric: M.npy ([D, D] matrix), W.safetensors:NAME (linear layer [out, D], M = W^T W) or F.npy (gradient fields [F, grid tokens, D]: M from them, plus a step per coefficient class); see scripts/task_metric.py")
	f.StringVar(&o.taskFields, "task-fields", "", "with a [D, D] --task-metric: gradient fields F.npy [F, grid tokens, D] (task_metric.py fisher --fields) that also set a step per coefficient class")
	f.Float64Var(&o.taskBlend, "task-blend", codec.DefaultTaskBlend, "with --task-metric: the metric's share of the fitted distortion, the rest plain squared error, in [0, 1)")
	_ = cmd.RegisterFlagCompletionFunc("codec", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return codec.Names(), cobra.ShellCompDirectiveNoFileComp
	})
}

// addShardFlag adds --shard-samples, which encode and fit share.
func (o *encodeOptions) addShardFlag(f *pflag.FlagSet) {
	f.IntVar(&o.shardSamples, "shard-samples", 0, "samples per shard of a dataset (default: 256 MiB of float16 per shard)")
}

// dataset reports whether encode writes a dataset directory.
func (o *encodeOptions) dataset() bool {
	if o.shardSamples > 0 || o.appendTo || strings.HasSuffix(o.output, "/") {
		return true
	}
	fi, err := os.Stat(o.output)
	return err == nil && fi.IsDir()
}

func (o *encodeOptions) validate() error {
	var err error
	if o.output == "" {
		return usagef("--output (-o) is required")
	}
	if o.shardSamples < 0 {
		return usagef("--shard-samples must be >= 1")
	}
	if o.embedModel && o.model == "" {
		return usagef("--embed-model goes with --model")
	}
	if o.codec != "" {
		if _, err := codec.Lookup(o.codec); err != nil {
			return usageError{err}
		}
	}
	if err := o.dataFlags.parse(); err != nil {
		return err
	}
	if o.metaMap, err = parseMeta(o.meta); err != nil {
		return err
	}
	if o.ratio != 0 && (o.ratio < 1 || math.IsInf(o.ratio, 0) || math.IsNaN(o.ratio)) {
		return usagef("--ratio must be at least 1")
	}
	if o.ratio != 0 && o.quality != "" {
		return usagef("give --ratio or --quality, not both")
	}
	if o.model != "" && (o.ratio != 0 || o.quality != "" || o.taskMetric != "") {
		return usagef("--model fixes the codec's parameters: --ratio, --quality and --task-metric apply to 'ntc fit'")
	}
	if o.model == "" {
		name := o.codec
		if name == "" {
			name = ntcb.DefaultCodec
		}
		if err := codec.CheckOptions(name, codec.Options{Ratio: o.ratio, Quality: o.quality}); err != nil {
			if o.quality != "" {
				return usagef("--quality %s: %w", o.quality, err)
			}
			return usagef("--ratio %g: %w", o.ratio, err)
		}
	}
	if !(o.taskBlend >= 0 && o.taskBlend < 1) {
		return usagef("--task-blend %g: want a share in [0, 1)", o.taskBlend)
	}
	if o.taskFields != "" && o.taskMetric == "" {
		return usagef("--task-fields goes with --task-metric")
	}
	return nil
}

// loadTaskMetric reads --task-metric, if given, into opts.
func (o *encodeOptions) loadTaskMetric(opts *ntcb.Options) error {
	if o.taskMetric == "" {
		return nil
	}
	m, err := ntcb.LoadTaskMetric(o.taskMetric)
	if err != nil {
		return err
	}
	if o.taskFields != "" {
		if m.Fields() > 0 {
			return usagef("--task-metric %s already holds gradient fields: drop --task-fields", o.taskMetric)
		}
		if err := ntcb.LoadTaskFields(m, o.taskFields); err != nil {
			return err
		}
	}
	m.Blend = o.taskBlend
	opts.CodecOptions.TaskMetric = m
	return nil
}

// parseGrid parses "HxW".
func parseGrid(s string) (int, int, error) {
	hs, ws, ok := strings.Cut(strings.ToLower(s), "x")
	h, err1 := strconv.Atoi(hs)
	w, err2 := strconv.Atoi(ws)
	if !ok || err1 != nil || err2 != nil || h <= 0 || w <= 0 {
		return 0, 0, usagef("--grid %q: want HxW, e.g. 24x24", s)
	}
	return h, w, nil
}

// parseBytes parses a byte count with an optional KiB, MiB or GiB suffix
// (KB, MB and GB are taken as the same powers of two).
func parseBytes(s string) (int, error) {
	mult := 1
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(strings.ToLower(t), u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 1 || n*float64(mult) > 512<<20 {
		return 0, fmt.Errorf("%q: want a size from 1 byte to 512MiB", s)
	}
	return int(n * float64(mult)), nil
}

// parseMeta parses repeated key=value flags.
func parseMeta(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--meta %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}

func (o *encodeOptions) ntcbOptions() ntcb.Options {
	return ntcb.Options{
		Codec:        o.codec,
		CodecOptions: codec.Options{Ratio: o.ratio, Quality: o.quality},
		ChunkBytes:   o.chunkBytes,
		Prefix:       o.prefix,
		GridH:        o.gridH,
		GridW:        o.gridW,
		Meta:         o.metaMap,
		FitSamples:   o.fitSamples,
		Workers:      o.workers,
		Tool:         "ntc " + toolVersion(),
		NoReplace:    !o.force,
	}
}

// openInputs expands globs and directories and scans the inputs; sample
// keys are relative to keyRoot, or to the inputs' common directory when it
// is empty. A lone "-" reads one tensor (.npy, .npz or .safetensors) from
// standard input, through a temporary file; its samples' keys are
// stdin#i.
func (g *globals) openInputs(args []string, keyRoot string) (*ntcb.Files, error) {
	if slices.Contains(args, "-") {
		if len(args) != 1 || keyRoot != "" {
			return nil, usagef("'-' (standard input) must be the only input, without --key-root")
		}
		f, size, done, err := fsutil.Spool(g.stdin)
		if err != nil {
			return nil, err
		}
		src, err := tensorio.OpenReader("<stdin>", f, size, closerFunc(done))
		if err != nil {
			done()
			return nil, err
		}
		return ntcb.NewFilesFrom(src, "stdin")
	}
	specs, err := tensorio.Expand(args)
	if err != nil {
		return nil, err
	}
	if keyRoot == "" {
		keyRoot = dirKeyRoot(args, specs)
	}
	return ntcb.OpenFilesWith(specs, ntcb.FilesOptions{KeyRoot: keyRoot})
}

// dirKeyRoot returns the key root when some arguments are directories:
// the deepest directory that holds those directories and the other
// inputs, so that 'ntc encode tokens/' keys its files relative to tokens/.
// It returns "" (the inputs' common directory) when no argument is one.
func dirKeyRoot(args, specs []string) string {
	var paths []string
	for _, a := range args {
		if fi, err := os.Stat(a); err == nil && fi.IsDir() {
			// A name inside the directory stands for it: CommonDir
			// takes the directory that holds each path.
			if abs, err := filepath.Abs(a); err == nil {
				paths = append(paths, filepath.Join(abs, "x"))
			}
		}
	}
	if len(paths) == 0 {
		return ""
	}
	for _, s := range specs {
		if abs, err := filepath.Abs(tensorio.SpecPath(s)); err == nil {
			paths = append(paths, abs)
		}
	}
	return fsutil.CommonDir(paths)
}

// closerFunc is an io.Closer that calls the function.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func runEncode(ctx context.Context, g *globals, o *encodeOptions, args []string) error {
	limitMemory()
	if o.dataset() && o.embedModel {
		return usagef("--embed-model: the shards of a dataset hold its one model by reference")
	}
	src, err := g.openInputs(args, o.keyRoot)
	if err != nil {
		return err
	}
	defer src.Close()
	inputs := src.Specs()
	if o.model != "" {
		inputs = append(inputs, o.model)
	}
	isDataset := o.dataset()
	if isDataset {
		if fi, err := os.Stat(o.output); err == nil && !fi.IsDir() {
			return fmt.Errorf("%s: a file, not a dataset directory", o.output)
		}
	}
	name, out, info := o.output, (*bufio.Writer)(nil), g
	if !isDataset {
		if name, out, info, err = g.outputTo(o.output, inputs, o.force, "an .ntcb file", ".ntcb"); err != nil {
			return err
		}
	}
	opts := o.ntcbOptions()
	if err := o.loadTaskMetric(&opts); err != nil {
		return err
	}
	if o.model != "" {
		if opts.Model, err = ntcb.ReadModelFile(o.model); err != nil {
			return err
		}
		opts.ModelRef, opts.ModelFile = !o.embedModel, filepath.Base(o.model)
	}
	if isDataset {
		return runEncodeDataset(ctx, g, o, src, opts)
	}
	if opts.ModelRef {
		if abs(filepath.Dir(o.model)) != abs(filepath.Dir(o.output)) {
			g.note("%s holds its model by reference: keep %s next to it, or name it with --model when reading (--embed-model stores a copy)", o.output, opts.ModelFile)
		}
	}
	bar := g.newProgress(src.Len(), "encode")
	opts.Progress = bar
	var res *ntcb.Result
	if out != nil {
		res, err = encodeStream(ctx, out, src, opts)
	} else {
		res, err = ntcb.EncodeFile(ctx, o.output, src, opts)
	}
	bar.Done()
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		g.warn("%s: %s", name, w)
	}
	if o.json {
		return writeJSON(info, res)
	}
	info.summary("%s", formatResult(name, res))
	return nil
}

// encodeStream encodes src as a .ntcb stream to out and flushes it. A
// stream cannot be taken back: on an error, what was written stays, and a
// reader finds it incomplete (it has no footer).
func encodeStream(ctx context.Context, out *bufio.Writer, src ntcb.Source, opts ntcb.Options) (*ntcb.Result, error) {
	w, err := container.NewWriter(out)
	if err != nil {
		return nil, err
	}
	res, err := ntcb.Encode(ctx, w, src, opts)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("%s: %w", stdoutName, ferr)
	}
	return res, err
}

// runEncodeDataset writes (or appends to) the dataset directory o.output.
func runEncodeDataset(ctx context.Context, g *globals, o *encodeOptions, src *ntcb.Files, opts ntcb.Options) error {
	bar := g.newProgress(src.Len(), "encode")
	opts.Progress = bar
	res, err := dataset.Encode(ctx, o.output, src, dataset.EncodeOptions{Options: opts, ShardSamples: o.shardSamples, Append: o.appendTo, Replace: o.force})
	bar.Done()
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(g, res)
	}
	sz := res.Sizes
	g.summary("%s: %d samples in %d shards (%d written), ratio %.3fx over every file (%d bytes: shards %d, model %d, index %d), %.3fx over the shards alone, %s",
		o.output, sz.Samples, sz.Shards, res.Shards, sz.Ratio, sz.ShardBytes+sz.ModelBytes+sz.IndexBytes,
		sz.ShardBytes, sz.ModelBytes, sz.IndexBytes, sz.ShardRatio, formatQuality(res.Quality))
	return nil
}

// abs returns path made absolute, or path itself if it cannot be.
func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

// formatQuality says how close the decoded tokens are to the input.
func formatQuality(q metrics.Summary) string {
	if math.IsInf(q.SNR, 1) {
		return "lossless (SNR inf, cos 1)"
	}
	return fmt.Sprintf("SNR %.2f dB, cos mean %.5f p1 %.5f", q.SNR, q.CosMean, q.CosP1)
}

// formatResult is encode's closing line.
func formatResult(path string, r *ntcb.Result) string {
	return fmt.Sprintf("%s: %d samples, ratio %.3fx, %.3f bits/value, %s", path, r.Samples, r.Ratio, r.BitsPerValue, formatQuality(r.Quality))
}

// writeJSON prints v as indented JSON on stdout.
func writeJSON(g *globals, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.stdout, string(b))
	return err
}
