package cuda

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// BenchmarkHostPath measures, without a GPU, the host side of the two
// ways to bring tokens to GPU memory, in float16 bytes of tokens per
// second: reading the float16 .npy from the page cache in 64 MiB pieces
// (what the GPU bench's .npy path does before its copies), and staging
// every chunk of the 8x .ntcb, with the entropy decoding left to the GPU
// (streams) or done here (host), on one and two goroutines. The tokens
// are the shared block-10 file repeated 7 times (264768 tokens); the
// benchmark skips without it.
func BenchmarkHostPath(b *testing.B) {
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data", "tokens", "deit_tiny_block10_dev.npy")
	if _, err := os.Stat(src); err != nil {
		b.Skipf("shared data absent: %v", err)
	}
	dir := b.TempDir()
	npy, ntcbPath := filepath.Join(dir, "tokens.npy"), filepath.Join(dir, "tokens.ntcb")
	data, shape, _, err := tensorio.ReadAll(src)
	if err != nil {
		b.Fatal(err)
	}
	const reps = 7
	w, err := tensorio.Create(npy, tensorio.Float16, reps*shape[0], shape[1], shape[2])
	if err != nil {
		b.Fatal(err)
	}
	v := shape[1] * shape[2]
	for range reps {
		for s := range shape[0] {
			if err := w.WriteSample(data[s*v : (s+1)*v]); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	files, err := ntcb.OpenFiles([]string{npy})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ntcb.EncodeFile(context.Background(), ntcbPath, files, ntcb.Options{CodecOptions: codec.Options{Ratio: 8}, Prefix: -1}); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(npy)
	if err != nil {
		b.Fatal(err)
	}
	tokenBytes := int64(reps * shape[0] * v * 2)

	b.Run("npy-pread", func(b *testing.B) {
		f, err := os.Open(npy)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 64<<20)
		b.SetBytes(tokenBytes)
		for range b.N {
			for off := int64(0); off < fi.Size(); off += int64(len(buf)) {
				if _, err := f.ReadAt(buf, off); err != nil && off+int64(len(buf)) < fi.Size() {
					b.Fatal(err)
				}
			}
		}
	})
	for _, mode := range []struct {
		name string
		m    codec.StageMode
	}{{"stage-streams", codec.StageAuto}, {"stage-host-entropy", codec.StageHostEntropy}} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers-%d", mode.name, workers), func(b *testing.B) {
				r, err := ntcb.Open(ntcbPath)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				n := r.Container().NumChunks()
				b.SetBytes(tokenBytes)
				for range b.N {
					next := make(chan int)
					var wg sync.WaitGroup
					for range workers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							var raw, buf []byte
							for i := range next {
								var err error
								_, _, raw, err = r.StageChunk(i, raw, mode.m, func(size int) ([]byte, error) {
									if cap(buf) < size {
										buf = make([]byte, size)
									}
									return buf[:size], nil
								})
								if err != nil {
									b.Error(err)
								}
							}
						}()
					}
					for i := range n {
						next <- i
					}
					close(next)
					wg.Wait()
				}
			})
		}
	}
}
