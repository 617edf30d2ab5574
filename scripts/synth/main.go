// Command synth writes synthetic ViT token files (.npy, float16, [N, T, D])
// that imitate real tokens (see internal/synth), for benchmarks at sizes and
// dimensions the real data does not cover. Its output is synthetic: never
// report results on it as results on real tokens.
//
//	go run ./scripts/synth -o /tmp/synth -files 34 -samples 100 -dim 1024 -grid 24
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ntc-project/ntc/internal/synth"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

func main() {
	out := flag.String("o", "synth", "output directory")
	files := flag.Int("files", 1, "number of files")
	samples := flag.Int("samples", 16, "samples per file")
	dim := flag.Int("dim", 1024, "dims per token")
	grid := flag.Int("grid", 24, "patch grid side")
	prefix := flag.Int("prefix", 1, "prefix (CLS) tokens")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := run(*out, *files, *samples, *dim, *grid, *prefix, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "synth:", err)
		os.Exit(1)
	}
}

func run(dir string, files, samples, dim, grid, prefix int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	c := synth.CLIPL
	c.Dim, c.GridH, c.GridW, c.Prefix, c.Seed = dim, grid, grid, prefix, seed
	g := synth.New(c)
	buf := make([]float32, g.Tokens()*g.Dim())
	for f := range files {
		path := filepath.Join(dir, fmt.Sprintf("synth-%05d.npy", f))
		w, err := tensorio.Create(path, tensorio.Float16, samples, g.Tokens(), g.Dim())
		if err != nil {
			return err
		}
		for range samples {
			g.Sample(buf)
			if err := w.WriteSample(buf); err != nil {
				w.Abort()
				return err
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	fmt.Printf("%s: %d files x %d samples x [%d, %d] float16 (synthetic)\n", dir, files, samples, g.Tokens(), g.Dim())
	return nil
}
