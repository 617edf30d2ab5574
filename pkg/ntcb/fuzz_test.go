package ntcb

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ntc-project/ntc/pkg/container"
)

// FuzzReader opens arbitrary bytes as a .ntcb file and, when that succeeds,
// verifies it and reads every sample. It must never panic; the seeds are the
// golden files of every codec and a small file of the corruption tests.
func FuzzReader(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "golden", "*.ntcb"))
	compat, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "golden", "compat", "*.ntcb"))
	seeds = append(seeds, compat...)
	for _, path := range append(seeds, filepath.Join("..", "..", "testdata", "golden_fp16.ntcb")) {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	m := &Memory{Data: tokens(9, 2, 5, 4), N: 2, Tokens: 5, Dim: 4}
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := Encode(context.Background(), w, m, Options{ChunkBytes: 40, Prefix: -1}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		_ = r.Info()
		_ = r.Verify(context.Background(), nil)
		for i := range r.Len() {
			_, _ = r.ReadSample(i, nil)
		}
		// Runs, repeats and gaps in one call.
		idx := make([]int, 0, 2*r.Len())
		for i := range r.Len() {
			idx = append(idx, r.Len()-1-i, i/2)
		}
		_, _ = r.ReadSamples(idx, nil)
	})
}
