package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/pkg/ntcb"
)

func newVerifyCmd(g *globals, runF func(context.Context, []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   "verify IN.ntcb...",
		Short: "Check every checksum and decode every chunk",
		Long: `Verify checks the header, the footer and index checksums, the checksum of
every chunk and model, and decodes every chunk. For a model file (.ntcm
from 'ntc fit') it checks the checksums and that the codec loads the model.
It exits 0 only if every file is intact; a damaged file exits 3 with a
message naming the problem.

` + exitCodesHelp,
		Example: examples("ntc verify train.ntcb", "ntc verify shards/*.ntcb"),
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), args)
			}
			if len(args) == 1 {
				return verifyFile(cmd.Context(), g, args[0])
			}
			var first error
			for _, in := range args {
				if err := verifyFile(cmd.Context(), g, in); err != nil {
					fmt.Fprintf(g.stderr, "%s: FAILED: %v\n", in, err)
					if first == nil {
						first = err
					}
				}
			}
			if first != nil {
				return fmt.Errorf("verification failed: %w", first)
			}
			return nil
		},
	}
}

func verifyFile(ctx context.Context, g *globals, in string) error {
	var bar *progress
	rep, err := ntcb.VerifyFile(ctx, in, func(total int) ntcb.Progress {
		bar = g.newProgress(total, "verify")
		return bar
	})
	if bar != nil {
		bar.Done()
	}
	if err != nil {
		return err
	}
	if rep.Model {
		g.summary("%s: ok, model file", in)
	} else {
		g.summary("%s: ok, %d samples in %d chunks", in, rep.Samples, rep.Chunks)
	}
	return nil
}
