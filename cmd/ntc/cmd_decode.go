package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

type decodeOptions struct {
	output  string
	samples string
	keys    []string
	dtype   string
	workers int
}

func newDecodeCmd(g *globals, runF func(context.Context, *decodeOptions, []string) error) *cobra.Command {
	o := &decodeOptions{}
	cmd := &cobra.Command{
		Use:   "decode IN.ntcb -o OUT.npy|OUT.safetensors",
		Short: "Decode a .ntcb file back to a token tensor",
		Long: `Decode writes the samples of a .ntcb file as one [N, T, D] tensor, in .npy or
.safetensors format (by the output's extension), in the input's dtype unless
--dtype says otherwise. Select samples by index (--samples) or key (--keys);
by default all are written, in file order. The output appears only when
complete.`,
		Example: examples(
			"ntc decode train.ntcb -o train.npy",
			"ntc decode train.ntcb -o some.safetensors --samples 0,5,10-20",
			"ntc decode train.ntcb -o one.npy --keys shards/a#3 --dtype float32",
		),
		Args: exactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			if o.output == "" {
				return usagef("--output (-o) is required")
			}
			if o.workers < 0 {
				return usagef("--workers must be >= 0")
			}
			if o.samples != "" && len(o.keys) > 0 {
				return usagef("give --samples or --keys, not both")
			}
			if o.dtype != "" {
				if _, err := tensorio.ParseDType(o.dtype); err != nil {
					return usageError{err}
				}
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
	f.StringSliceVar(&o.keys, "keys", nil, "sample keys, comma-separated")
	f.StringVar(&o.dtype, "dtype", "", "output dtype: float16, bfloat16, float32 or float64 (default: the input's)")
	f.IntVar(&o.workers, "workers", 0, "chunks decoded in parallel (0: one per CPU)")
	return cmd
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

// selectSamples turns --samples or --keys into indices.
func (o *decodeOptions) selectSamples(r *ntcb.Reader) ([]int, error) {
	switch {
	case o.samples != "":
		return parseSelection(o.samples, r.Len())
	case len(o.keys) > 0:
		idx := make([]int, 0, len(o.keys))
		for _, k := range o.keys {
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
	r, err := ntcb.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	idx, err := o.selectSamples(r.Reader)
	if err != nil {
		return err
	}
	name := o.dtype
	if name == "" {
		name = r.Meta().DType
	}
	dt, err := tensorio.ParseDType(name)
	if err != nil {
		return fmt.Errorf("%s: metadata dtype: %w", in, err)
	}
	l := r.Layout()
	w, err := tensorio.Create(o.output, dt, len(idx), l.Tokens, l.Dim)
	if err != nil {
		return err
	}
	defer w.Abort()
	bar := g.newProgress(len(idx), "decode")
	err = ntcb.Export(ctx, r.Reader, idx, w, bar, o.workers)
	bar.Done()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	g.summary("%s: %d samples of %dx%d %s", o.output, len(idx), l.Tokens, l.Dim, dt)
	return nil
}
