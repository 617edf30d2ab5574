package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/bench"
	"github.com/ntc-project/ntc/pkg/cuda"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

type decodeOptions struct {
	readFlags
	output   string
	samples  string
	keys     []string
	key      []string
	keysFile string
	dtype    string
	workers  int
	device   string
	gpu      int
	force    bool
	json     bool
	format   string
}

// cudaBatchBytes bounds the decoded output that decode --device cuda holds
// in device memory (and in host memory on its way to the file) at once.
const cudaBatchBytes = 1 << 30

func newDecodeCmd(g *globals, runF func(context.Context, *decodeOptions, []string) error) *cobra.Command {
	o := &decodeOptions{}
	cmd := &cobra.Command{
		Use:   "decode IN|- -o OUT.npy|OUT.safetensors|-",
		Short: "Decode a .ntcb file or a dataset back to a token tensor",
		Long: `Decode writes the samples of a .ntcb file or a dataset as one [N, T, D] tensor, in .npy or
.safetensors format (by the output's extension), in the input's dtype unless
--dtype says otherwise. Select samples by index (--samples) or key (--keys);
by default all are written, in file order. The output appears only when
complete; an existing file is not replaced without --force. "-" as the
input reads a .ntcb file from standard input; -o - writes the tensor to
standard output (--format npy or safetensors), and the summary to
standard error.

With --device cuda the chunks are decoded on a GPU (--gpu picks which), in
batches of at most 1 GiB of output, copied back and written as the CPU
would write them. It needs ntc built with CUDA support
(scripts/build-cuda.sh); float16 output is decoded as float16 on the GPU,
any other dtype as float32 and converted on the host.

` + inputHelp,
		Example: examples(
			"ntc decode train.ntcb -o train.npy",
			"ntc decode train.ntcb -o some.safetensors --samples 0,5,10-20",
			"ntc decode train.ntcb -o one.npy --key a#3 --dtype float32",
			"ntc decode train.ntcb -o some.npy --keys-file keys.txt",
			"ntc decode train.ntcb -o train.npy --device cuda --gpu 1",
			"ntc decode data/ -o first.npy --samples 0-99",
			"ntc decode https://example.org/data/ -o one.npy --key shard-00007#3",
			"ntc decode train.ntcb -o - --samples 0-9 | python3 -c 'import numpy, sys; print(numpy.load(sys.stdin.buffer).shape)'",
		),
		Args: exactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if o.output == "" {
				return usagef("--output (-o) is required")
			}
			switch {
			case o.output != "-" && o.format != "":
				return usagef("--format goes with -o - (a file's format is its extension)")
			case o.format == "":
				o.format = "npy"
			case o.format != "npy" && o.format != "safetensors":
				return usagef("--format %q: want npy or safetensors", o.format)
			}
			if o.keysFile == "-" && len(args) > 0 && args[0] == "-" {
				return usagef("the .ntcb file and --keys-file cannot both come from standard input")
			}
			if o.workers < 0 {
				return usagef("--workers must be >= 0")
			}
			if o.samples != "" && (len(o.keys) > 0 || len(o.key) > 0 || o.keysFile != "") {
				return usagef("give --samples or keys (--keys, --key, --keys-file), not both")
			}
			if o.dtype != "" {
				if _, err := tensorio.ParseDType(o.dtype); err != nil {
					return usageError{err}
				}
			}
			if o.device != bench.DeviceCPU && o.device != bench.DeviceCUDA {
				return usagef("--device %q: want %s or %s", o.device, bench.DeviceCPU, bench.DeviceCUDA)
			}
			if o.gpu < 0 {
				return usagef("--gpu must be >= 0")
			}
			if cmd.Flags().Changed("gpu") && o.device != bench.DeviceCUDA {
				return usagef("--gpu goes with --device cuda")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			return runDecode(cmd.Context(), g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output .npy or .safetensors file (required)")
	f.StringVar(&o.samples, "samples", "", "sample indices and inclusive ranges, e.g. 0,5,10-20")
	f.StringSliceVar(&o.keys, "keys", nil, "sample keys, comma-separated (a key with a comma: --key)")
	f.StringArrayVar(&o.key, "key", nil, "a sample key, taken whole; repeatable")
	f.StringVar(&o.keysFile, "keys-file", "", "a file of sample keys, one per line ('-': standard input)")
	f.StringVar(&o.dtype, "dtype", "", "output dtype: float16, bfloat16, float32 or float64 (default: the input's)")
	f.IntVar(&o.workers, "workers", 0, "chunks decoded (with cuda: staged) in parallel (0: one per CPU)")
	f.StringVar(&o.device, "device", bench.DeviceCPU, "where to decode: cpu or cuda")
	f.IntVar(&o.gpu, "gpu", 0, "with --device cuda: the GPU's ordinal")
	addForceFlag(f, &o.force)
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.StringVar(&o.format, "format", "", "with -o -: npy (default) or safetensors")
	o.readFlags.addFlags(f)
	_ = cmd.RegisterFlagCompletionFunc("device", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{bench.DeviceCPU, bench.DeviceCUDA}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// readKeysFile reads sample keys, one per line (empty lines skipped),
// from the file at path, or from stdin for "-".
func readKeysFile(path string, stdin io.Reader) ([]string, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var keys []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if k := strings.TrimSuffix(sc.Text(), "\r"); k != "" {
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--keys-file %s: %w", path, err)
	}
	return keys, nil
}

// parseSelection parses "0,5,10-20" into indices below n, in order.
func parseSelection(s string, n int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return nil, usagef("--samples %q: %q is not an index or a range lo-hi", s, part)
		}
		if b >= n {
			return nil, usagef("--samples: index %d out of range, the file holds %d samples", b, n)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// selectSamples turns --samples or the keys of --keys, --key and
// --keys-file (in that order) into indices.
func (o *decodeOptions) selectSamples(r interface {
	Len() int
	Lookup(string) (int, error)
}, stdin io.Reader) ([]int, error) {
	switch {
	case o.samples != "":
		return parseSelection(o.samples, r.Len())
	case len(o.keys) > 0 || len(o.key) > 0 || o.keysFile != "":
		keys := append(slices.Clone(o.keys), o.key...)
		if o.keysFile != "" {
			more, err := readKeysFile(o.keysFile, stdin)
			if err != nil {
				return nil, err
			}
			keys = append(keys, more...)
		}
		idx := make([]int, 0, len(keys))
		for _, k := range keys {
			i, err := r.Lookup(k)
			if err != nil {
				return nil, usageError{err}
			}
			idx = append(idx, i)
		}
		return idx, nil
	}
	idx := make([]int, r.Len())
	for i := range idx {
		idx[i] = i
	}
	return idx, nil
}

func runDecode(ctx context.Context, g *globals, o *decodeOptions, in string) error {
	// The device comes first: a binary without CUDA support fails before
	// it reads or writes anything.
	var dev *cuda.Device
	if o.device == bench.DeviceCUDA {
		d, err := cuda.Open(o.gpu)
		if err != nil {
			return err
		}
		defer d.Close()
		dev = d
	}
	outName, out, info, err := g.outputTo(o.output, []string{in}, o.force, "")
	if err != nil {
		return err
	}
	r, err := openInput(ctx, g, in, &o.readFlags)
	if err != nil {
		return err
	}
	defer r.Close()
	in = r.loc
	idx, err := o.selectSamples(r, g.stdin)
	if err != nil {
		return err
	}
	name := o.dtype
	if name == "" {
		name = r.DType()
	}
	dt, err := tensorio.ParseDType(name)
	if err != nil {
		return fmt.Errorf("%s: metadata dtype: %w", in, err)
	}
	l := r.Layout()
	var w tensorio.Writer
	if out != nil {
		w, err = tensorio.NewWriter(out, o.format, dt, len(idx), l.Tokens, l.Dim)
	} else {
		w, err = tensorio.Create(o.output, dt, len(idx), l.Tokens, l.Dim, tensorio.WithReplace(o.force))
	}
	if err != nil {
		return err
	}
	defer w.Abort()
	bar := g.newProgress(len(idx), "decode")
	where := ""
	if dev != nil {
		err = r.eachRun(idx, func(sr *ntcb.Reader, samples []int) error {
			return exportCUDA(ctx, dev, sr, samples, w, bar, dt != tensorio.Float16, o.workers)
		})
		where = ", decoded on " + dev.Name()
	} else {
		err = r.export(ctx, idx, w, bar, o.workers)
	}
	bar.Done()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if out != nil {
		if err := out.Flush(); err != nil {
			return fmt.Errorf("%s: %w", stdoutName, err)
		}
	}
	if o.json {
		device := o.device
		if dev != nil {
			device = dev.Name()
		}
		return writeJSON(info, struct {
			Output  string `json:"output"`
			Samples int    `json:"samples"`
			Tokens  int    `json:"tokens"`
			Dim     int    `json:"dim"`
			DType   string `json:"dtype"`
			Device  string `json:"device"`
		}{outName, len(idx), l.Tokens, l.Dim, dt.String(), device})
	}
	info.summary("%s: %d samples of %dx%d %s%s", outName, len(idx), l.Tokens, l.Dim, dt, where)
	return nil
}

// exportCUDA is ntcb.Export on a GPU: it decodes the samples with the
// given indices, in that order, through device memory in batches of at
// most cudaBatchBytes (cuda.Decoder.DecodeToHost) and writes them to w. The GPU
// writes float32 when f32 is set, float16 otherwise.
func exportCUDA(ctx context.Context, dev *cuda.Device, r *ntcb.Reader, idx []int, w tensorio.Writer, p ntcb.Progress, f32 bool, workers int) (err error) {
	if len(idx) == 0 {
		return nil
	}
	dec, err := cuda.NewDecoder(dev, cuda.DecoderOptions{F32: f32, Workers: workers})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dec.Close(); err == nil {
			err = cerr
		}
	}()
	vals := make([]float32, r.Layout().Values())
	return dec.DecodeToHost(ctx, r, idx, cudaBatchBytes, func(_ int, sample []byte) error {
		if f32 {
			for j := range vals {
				vals[j] = math.Float32frombits(binary.LittleEndian.Uint32(sample[4*j:]))
			}
		} else {
			f16.DecodeLE(vals, sample)
		}
		if err := w.WriteSample(vals); err != nil {
			return err
		}
		if p != nil {
			p.Add(1)
		}
		return ctx.Err()
	})
}
