package main

import (
	"context"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/pkg/ntcb"
)

func newFitCmd(g *globals, runF func(context.Context, *encodeOptions, []string) error) *cobra.Command {
	o := &encodeOptions{}
	cmd := &cobra.Command{
		Use:   "fit INPUT... -o MODEL.ntcm",
		Short: "Fit a codec model on a sample of token files",
		Long: `Fit fits a learned codec on a sample of the inputs (--fit-samples, spread
evenly over them) and writes the model to a .ntcm file. 'ntc encode --model
MODEL.ntcm' then encodes any number of shards with that one model, and each
shard holds it by reference (its SHA-256), not a copy: shards do not pay for
a model of their own.

--ratio sets the rate the model encodes at: the ratio of files that hold the
model by reference, the model not counted (it is stored once, for any
number of files). Rate control takes out each file's framing, for files of
--shard-samples samples (default: one file of all the inputs given to fit).
--quality sets a target met on every chunk instead.`,
		Example: examples(
			"ntc fit 'shards/*.npy' -o clip-l.ntcm --ratio 8 --fit-samples 32",
			"ntc encode shards/000.npy -o 000.ntcb --model clip-l.ntcm",
			"ntc fit 'shards/*.npy' -o clip-l.ntcm --ratio 8 --shard-samples 64",
		),
		Args: minArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			return o.validate()
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			return runFit(cmd.Context(), g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output model file, .ntcm (required)")
	o.addCodecFlags(cmd)
	o.dataFlags.addFlags(f)
	addForceFlag(f, &o.force)
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	o.addShardFlag(f)
	return cmd
}

func runFit(ctx context.Context, g *globals, o *encodeOptions, args []string) error {
	limitMemory()
	src, err := g.openInputs(args, "")
	if err != nil {
		return err
	}
	defer src.Close()
	name, out, info, err := g.outputTo(o.output, src.Specs(), o.force, "a model file", ".ntcm")
	if err != nil {
		return err
	}
	opts := o.ntcbOptions()
	opts.SharedModel, opts.ModelRef, opts.ModelFile, opts.ShardSamples = true, true, filepath.Base(o.output), o.shardSamples
	if err := o.loadTaskMetric(&opts); err != nil {
		return err
	}
	bar := g.newProgress(0, "fit")
	opts.Progress = bar
	m, err := ntcb.Fit(ctx, src, opts)
	bar.Done()
	if err != nil {
		return err
	}
	tool := "ntc " + toolVersion()
	switch {
	case out != nil:
		err = ntcb.WriteModelTo(out, m, tool)
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
	case o.force:
		err = ntcb.WriteModelFile(o.output, m, tool)
	default:
		err = ntcb.WriteNewModelFile(o.output, m, tool)
	}
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(info, struct {
			Output string `json:"output"`
			modelSummary
		}{name, summarize(m)})
	}
	info.summary("%s: %s model for %d x %d tokens, %d bytes", name, m.Codec, m.Layout.Tokens, m.Layout.Dim, len(m.Blob))
	return nil
}
