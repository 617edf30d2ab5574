package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/pkg/dataset"
)

type indexOptions struct {
	meta []string
	json bool
}

func newIndexCmd(g *globals, runF func(context.Context, *indexOptions, []string) error) *cobra.Command {
	o := &indexOptions{}
	cmd := &cobra.Command{
		Use:   "index DIR",
		Short: "Write the index.json of a directory of .ntcb shards",
		Long: `Index makes a dataset of the .ntcb shards already in DIR, written one by
one, by any number of machines ('ntc encode IN -o DIR/shard-00000.ntcb
--model DIR/model.ntcm', as scripts/encode_dataset.py does): it verifies
every shard (every checksum, every chunk decoded, its model found by hash
among DIR's .ntcm files), checks that they share one layout, dtype and codec
and that their keys are unique, and writes DIR/index.json, in shard name
order, last and atomically. A dataset whose index it replaces is replaced
whole.`,
		Example: examples(
			"ntc index data/",
			"ntc index data/ --meta model=clip-vit-l-14-336 --json",
		),
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			return runIndex(cmd.Context(), g, o, args[0])
		},
	}
	cmd.Flags().StringArrayVar(&o.meta, "meta", nil, "key=value kept in the index (model name, layer, ...); repeatable")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

func runIndex(ctx context.Context, g *globals, o *indexOptions, dir string) error {
	meta, err := parseMeta(o.meta)
	if err != nil {
		return err
	}
	bar := g.newProgress(-1, "verify")
	res, err := dataset.Build(ctx, dir, dataset.BuildOptions{Tool: "ntc " + toolVersion(), Meta: meta, Progress: bar})
	bar.Done()
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(g, res)
	}
	sz := res.Sizes
	g.summary("%s: index of %d samples in %d shards, all verified; ratio %.3fx over every file, %.3fx over the shards alone",
		dir, sz.Samples, sz.Shards, sz.Ratio, sz.ShardRatio)
	return nil
}
