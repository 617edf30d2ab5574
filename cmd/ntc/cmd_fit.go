package main

import (
	"context"

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
MODEL.ntcm' then encodes any number of shards with that one model, so each
shard does not pay for a model of its own.

--ratio sets the rate the model encodes at: the ratio the inputs given to
fit would reach as one file, model included; --quality sets a target met on
every chunk.`,
		Example: examples(
			"ntc fit 'shards/*.npy' -o clip-l.ntcm --ratio 8 --fit-samples 32",
			"ntc encode shards/000.npy -o 000.ntcb --model clip-l.ntcm",
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
	return cmd
}

func runFit(ctx context.Context, g *globals, o *encodeOptions, args []string) error {
	limitMemory()
	src, err := openInputs(args, "")
	if err != nil {
		return err
	}
	defer src.Close()
	if err := g.checkOutput(o.output, src.Specs(), o.force, "a model file", ".ntcm"); err != nil {
		return err
	}
	m, err := ntcb.Fit(ctx, src, o.ntcbOptions())
	if err != nil {
		return err
	}
	write := ntcb.WriteNewModelFile
	if o.force {
		write = ntcb.WriteModelFile
	}
	if err := write(o.output, m, "ntc "+toolVersion()); err != nil {
		return err
	}
	if o.json {
		return writeJSON(g, struct {
			Output string `json:"output"`
			modelSummary
		}{o.output, summarize(m)})
	}
	g.summary("%s: %s model for %d x %d tokens, %d bytes", o.output, m.Codec, m.Layout.Tokens, m.Layout.Dim, len(m.Blob))
	return nil
}
