package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/pkg/dataset"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

type verifyOptions struct {
	readFlags
	json bool
}

// verifyResult is what verify found in one file or dataset, as --json
// prints it.
type verifyResult struct {
	File    string `json:"file"`
	OK      bool   `json:"ok"`
	Kind    string `json:"kind,omitempty"` // "data", "model" or "dataset"
	Samples int    `json:"samples,omitempty"`
	Chunks  int    `json:"chunks,omitempty"`
	// ModelFile says where the model of a file that holds it by
	// reference was found.
	ModelFile string `json:"model_file,omitempty"`
	// Shards, Models and Bytes count what a dataset's verify checked.
	Shards int    `json:"shards,omitempty"`
	Models int    `json:"models,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	Error  string `json:"error,omitempty"`
	// ExitCode is the code verify of this file alone would exit with.
	ExitCode int `json:"exit_code"`
}

func newVerifyCmd(g *globals, runF func(context.Context, *verifyOptions, []string) error) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify IN...",
		Short: "Check every checksum and decode every chunk",
		Long: `Verify checks the header, the footer and index checksums, the checksum of
every chunk and model, and decodes every chunk. For a model file (.ntcm
from 'ntc fit') it checks the checksums and that the codec loads the model.
A file that holds its model by reference must find it, with the SHA-256 it
records. For a dataset it also checks index.json, the size and SHA-256 of
every shard and model file against it, and each shard's samples and keys.
It exits 0 only if every file is intact; a damaged file exits 3 with a
message naming the problem. With --json it prints {"ok": ..., "files":
[{"file", "ok", "kind", "samples", "chunks", "error", "exit_code"}, ...]}.

` + inputHelp + `

` + exitCodesHelp,
		Example: examples("ntc verify train.ntcb", "ntc verify shards/*.ntcb",
			"ntc verify shards/*.ntcb --json | jq '.files[] | select(.ok | not)'",
			"ntc verify data/", "ntc verify https://example.org/data/index.json"),
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			return runVerify(cmd.Context(), g, o, args)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the result of every file as JSON")
	o.readFlags.addFlags(cmd.Flags())
	return cmd
}

func runVerify(ctx context.Context, g *globals, o *verifyOptions, args []string) error {
	var first error
	results := make([]verifyResult, 0, len(args))
	for _, in := range args {
		res, err := verifyInput(ctx, g, &o.readFlags, in)
		results = append(results, res)
		if err == nil {
			if !o.json {
				g.summary("%s", res.summary())
			}
			continue
		}
		if len(args) == 1 && !o.json {
			return err
		}
		if !o.json {
			fmt.Fprintf(g.stderr, "%s: FAILED: %v\n", res.File, err)
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

// summary is the line verify prints for an intact input.
func (r verifyResult) summary() string {
	switch {
	case r.Kind == "model":
		return r.File + ": ok, model file"
	case r.Kind == "dataset":
		return fmt.Sprintf("%s: ok, %d samples in %d shards, %d model files, %d bytes checked", r.File, r.Samples, r.Shards, r.Models, r.Bytes)
	case r.ModelFile != "":
		return fmt.Sprintf("%s: ok, %d samples in %d chunks, model by reference found in %s", r.File, r.Samples, r.Chunks, r.ModelFile)
	}
	return fmt.Sprintf("%s: ok, %d samples in %d chunks", r.File, r.Samples, r.Chunks)
}

// verifyInput checks one file or dataset and says what it found.
func verifyInput(ctx context.Context, g *globals, rf *readFlags, in string) (verifyResult, error) {
	res, err := verifyOne(ctx, g, rf, in)
	res.File, res.OK = in, err == nil
	if in == "-" {
		res.File = stdinName
	}
	if err != nil {
		res.Kind, res.Error, res.ExitCode = "", err.Error(), exitCode(ctx, err)
	}
	return res, err
}

func verifyOne(ctx context.Context, g *globals, rf *readFlags, in string) (verifyResult, error) {
	o := rf.options()
	kind := dataset.KindFile
	if in != "-" {
		var err error
		if kind, _, _, err = dataset.Resolve(in, o.Remote); err != nil {
			return verifyResult{}, err
		}
	}
	if kind == dataset.KindDataset {
		r, err := dataset.Open(ctx, in, o)
		if err != nil {
			return verifyResult{}, err
		}
		defer r.Close()
		bar := g.newProgress(r.Len(), "verify")
		rep, err := r.Verify(ctx, bar)
		bar.Done()
		return verifyResult{Kind: "dataset", Samples: rep.Samples, Shards: rep.Shards, Models: rep.Models, Bytes: rep.Bytes}, err
	}
	var bar *progress
	progress := func(total int) ntcb.Progress {
		bar = g.newProgress(total, "verify")
		return bar
	}
	var rep ntcb.VerifyReport
	var err error
	if in == "-" {
		rep, err = verifyStdin(ctx, g, o, progress)
	} else {
		rep, err = dataset.VerifyFile(ctx, in, progress, o)
	}
	if bar != nil {
		bar.Done()
	}
	res := verifyResult{Kind: "data", Samples: rep.Samples, Chunks: rep.Chunks, ModelFile: rep.ModelFile}
	if rep.Model {
		res.Kind = "model"
	}
	return res, err
}

// verifyStdin verifies a .ntcb or .ntcm file read from standard input.
func verifyStdin(ctx context.Context, g *globals, o *dataset.Options, progress func(int) ntcb.Progress) (ntcb.VerifyReport, error) {
	f, size, done, err := g.spoolStdin()
	if err != nil {
		return ntcb.VerifyReport{}, err
	}
	defer done()
	rep, err := ntcb.Verify(ctx, f, size, progress, stdinReadOptions(o)...)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", stdinName, err)
	}
	return rep, nil
}
