// Package sample embeds the real token files that ntc's default commands
// and tests run on when given no input.
//
// Both are DeiT-Tiny (ImageNet-1k) block-10 output, the layer LLaVA-style
// models read, float16, 197 tokens (CLS first, then the 14x14 patch grid) x
// 192 dims, cut from the project's shared data set by scripts/make_sample.py
// (which says how the photos, crops and tokens were made):
//
//   - Bench (deit_tiny_block10_48.npy, 3.6 MB): crops 0-3 of each of 12 real
//     photos, crop-major, 48 samples; the default input of 'ntc bench'.
//     Large enough that a learned codec's model is a small part of an 8x
//     file, so the bench's figures are close to those on real-sized data.
//   - Small (deit_tiny_block10_8.npy): the centre crop of the first 8
//     photos, the same bytes as Bench's first 8 samples; the fixture of
//     tests and golden files. Name, NPY and WriteTo are Small's.
package sample

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// File is one embedded token file: a .npy of Samples x 197 x 192 float16.
type File struct {
	// Name is the file's name.
	Name string
	// Samples is the number of samples it holds.
	Samples int
	// About says what the samples are, in a few words for headers.
	About string
	data  []byte
}

// NPY returns the file's bytes. Callers must not modify them.
func (f File) NPY() []byte { return f.data }

// Save writes the file into dir and returns its path, for code that reads
// files.
func (f File) Save(dir string) (string, error) {
	path := filepath.Join(dir, f.Name)
	if err := os.WriteFile(path, f.data, 0o644); err != nil {
		return "", fmt.Errorf("writing the sample tokens: %w", err)
	}
	return path, nil
}

var (
	//go:embed deit_tiny_block10_48.npy
	benchNPY []byte
	//go:embed deit_tiny_block10_8.npy
	smallNPY []byte
)

// The embedded files.
var (
	// Bench is the default input of 'ntc bench'.
	Bench = File{Name: "deit_tiny_block10_48.npy", Samples: 48, data: benchNPY,
		About: "48 real DeiT-Tiny block-10 token samples, 4 crops of 12 photos"}
	// Small is the fixture of tests and golden files.
	Small = File{Name: "deit_tiny_block10_8.npy", Samples: 8, data: smallNPY,
		About: "8 real DeiT-Tiny block-10 token samples, centre crops of 8 photos"}
)

// Name is Small's file name.
const Name = "deit_tiny_block10_8.npy"

// NPY returns Small's bytes (a .npy file). Callers must not modify them.
func NPY() []byte { return smallNPY }

// WriteTo writes Small into dir and returns its path, for code that reads
// files.
func WriteTo(dir string) (string, error) { return Small.Save(dir) }
