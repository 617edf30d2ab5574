// Package sample embeds the small real token file that ntc's default
// commands and tests run on when given no input.
//
// deit_tiny_block10_8.npy: 8 samples x 197 tokens x 192 dims, float16;
// DeiT-Tiny (ImageNet-1k) block-10 output, the layer LLaVA-style models
// read, for the centre crop of 8 real photos (CLS token first, then the
// 14x14 patch grid). Cut from the project's shared data set by
// scripts/make_sample.py.
package sample

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// Name is the fixture's file name.
const Name = "deit_tiny_block10_8.npy"

//go:embed deit_tiny_block10_8.npy
var npy []byte

// NPY returns the fixture's bytes (a .npy file). Callers must not modify
// them.
func NPY() []byte { return npy }

// WriteTo writes the fixture into dir and returns its path, for code that
// reads files.
func WriteTo(dir string) (string, error) {
	path := filepath.Join(dir, Name)
	if err := os.WriteFile(path, npy, 0o644); err != nil {
		return "", fmt.Errorf("writing the sample tokens: %w", err)
	}
	return path, nil
}
