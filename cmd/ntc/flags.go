package main

import (
	"github.com/spf13/pflag"
)

// dataFlags say how input tokens are laid out, chunked and fitted; encode,
// fit and bench share them.
type dataFlags struct {
	prefix     int
	grid       string
	chunkSize  string
	fitSamples int
	workers    int

	// Parsed by parse.
	gridH, gridW int
	chunkBytes   int
}

func (d *dataFlags) addFlags(f *pflag.FlagSet) {
	f.IntVar(&d.prefix, "prefix-tokens", -1, "prefix tokens before the patch grid (CLS, registers); -1 infers")
	f.StringVar(&d.grid, "grid", "", "patch grid HxW (default: inferred square grid)")
	f.StringVar(&d.chunkSize, "chunk-size", "4MiB", "float16 bytes of tokens per chunk (plain bytes or with KiB/MiB/GiB)")
	f.IntVar(&d.fitSamples, "fit-samples", 0, "samples a learned codec is fitted on, spread over the inputs (0: up to 32 MiB of float32; the fit needs about 15x that in memory)")
	f.IntVar(&d.workers, "workers", 0, "chunks encoded in parallel (0: one per CPU)")
}

// dataFlagNames are the flags of dataFlags that change what a file holds,
// repeated in commands that bench recommends.
var dataFlagNames = []string{"chunk-size", "prefix-tokens", "grid", "fit-samples"}

func (d *dataFlags) parse() error {
	var err error
	if d.grid != "" {
		if d.gridH, d.gridW, err = parseGrid(d.grid); err != nil {
			return err
		}
	}
	if d.prefix < -1 {
		return usagef("--prefix-tokens must be >= 0")
	}
	if d.chunkBytes, err = parseBytes(d.chunkSize); err != nil {
		return usagef("--chunk-size: %v", err)
	}
	if d.fitSamples < 0 || d.workers < 0 {
		return usagef("--fit-samples and --workers must be >= 0")
	}
	return nil
}
