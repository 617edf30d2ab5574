package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/pkg/ntcb"
)

type verifyOptions struct {
	json bool
}

// verifyResult is what verify found in one file, as --json prints it.
type verifyResult struct {
	File    string `json:"file"`
	OK      bool   `json:"ok"`
	Kind    string `json:"kind,omitempty"` // "data" or "model"
	Samples int    `json:"samples,omitempty"`
	Chunks  int    `json:"chunks,omitempty"`
	Error   string `json:"error,omitempty"`
	// ExitCode is the code verify of this file alone would exit with.
	ExitCode int `json:"exit_code"`
}

func newVerifyCmd(g *globals, runF func(context.Context, *verifyOptions, []string) error) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify IN.ntcb...",
		Short: "Check every checksum and decode every chunk",
		Long: `Verify checks the header, the footer and index checksums, the checksum of
every chunk and model, and decodes every chunk. For a model file (.ntcm
from 'ntc fit') it checks the checksums and that the codec loads the model.
It exits 0 only if every file is intact; a damaged file exits 3 with a
message naming the problem. With --json it prints {"ok": ..., "files":
[{"file", "ok", "kind", "samples", "chunks", "error", "exit_code"}, ...]}.

` + exitCodesHelp,
		Example: examples("ntc verify train.ntcb", "ntc verify shards/*.ntcb", "ntc verify shards/*.ntcb --json | jq '.files[] | select(.ok | not)'"),
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			return runVerify(cmd.Context(), g, o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the result of every file as JSON")
	return cmd
}

func runVerify(ctx context.Context, g *globals, o *verifyOptions, args []string) error {
	var first error
	results := make([]verifyResult, 0, len(args))
	for _, in := range args {
		res, err := verifyFile(ctx, g, in)
		results = append(results, res)
		if err == nil {
			if !o.json && res.Kind == "model" {
				g.summary("%s: ok, model file", in)
			} else if !o.json {
				g.summary("%s: ok, %d samples in %d chunks", in, res.Samples, res.Chunks)
			}
			continue
		}
		if len(args) == 1 && !o.json {
			return err
		}
		if !o.json {
			fmt.Fprintf(g.stderr, "%s: FAILED: %v\n", in, err)
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if o.json {
		if err := writeJSON(g, struct {
			OK    bool           `json:"ok"`
			Files []verifyResult `json:"files"`
		}{first == nil, results}); err != nil {
			return err
		}
	}
	if first != nil && len(args) > 1 {
		return fmt.Errorf("verification failed: %w", first)
	}
	return first
}

// verifyFile checks one file and says what it found.
func verifyFile(ctx context.Context, g *globals, in string) (verifyResult, error) {
	var bar *progress
	rep, err := ntcb.VerifyFile(ctx, in, func(total int) ntcb.Progress {
		bar = g.newProgress(total, "verify")
		return bar
	})
	if bar != nil {
		bar.Done()
	}
	res := verifyResult{File: in, OK: err == nil, Kind: "data", Samples: rep.Samples, Chunks: rep.Chunks}
	if rep.Model {
		res.Kind = "model"
	}
	if err != nil {
		res.Kind, res.Error, res.ExitCode = "", err.Error(), exitCode(ctx, err)
	}
	return res, err
}
