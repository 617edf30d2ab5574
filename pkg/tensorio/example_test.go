package tensorio_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

func Example() {
	dir, err := os.MkdirTemp("", "tensorio")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "shard.safetensors")

	// Write 2 samples of 3 tokens x 4 values as bfloat16.
	w, err := tensorio.Create(path, tensorio.BFloat16, 2, 3, 4,
		tensorio.WithMetadata(map[string]string{"model": "deit_tiny"}))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Abort() // does nothing after a successful Close
	for i := range 2 {
		sample := make([]float32, 3*4)
		for j := range sample {
			sample[j] = float32(i) + float32(j)/8
		}
		if err := w.WriteSample(sample); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	// Read it back one sample at a time.
	s, err := tensorio.Open(path + ":tokens")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	tokens, dim := s.SampleShape()
	fmt.Println(s.DType(), s.Shape(), s.NumSamples(), tokens, dim, tensorio.Metadata(s))
	dst := make([]float32, tokens*dim)
	if err := s.ReadSample(1, dst); err != nil {
		log.Fatal(err)
	}
	fmt.Println(dst[:4])
	// Output:
	// bfloat16 [2 3 4] 2 3 4 map[model:deit_tiny]
	// [1 1.125 1.25 1.375]
}

func ExampleExpand() {
	dir, err := os.MkdirTemp("", "tensorio")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"b.npz", "a.npz", "c.npy"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	specs, err := tensorio.Expand([]string{filepath.Join(dir, "*.npz:tokens")})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range specs {
		fmt.Println(filepath.Base(s))
	}
	_, err = tensorio.Expand([]string{filepath.Join(dir, "*.safetensors")})
	fmt.Println(err != nil)
	// Output:
	// a.npz:tokens
	// b.npz:tokens
	// true
}
