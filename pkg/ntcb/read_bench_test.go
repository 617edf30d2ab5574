package ntcb

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// benchTokens returns the shared block10 tokens (192 real DeiT-Tiny
// samples) when the shared data folder is present, and the embedded
// sample otherwise.
func benchTokens(b *testing.B) *Memory {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data", "tokens", "deit_tiny_block10_dev.npy")
	if _, err := os.Stat(path); err != nil {
		if path, err = sample.WriteTo(b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
	data, shape, _, err := tensorio.ReadAll(path)
	if err != nil {
		b.Fatal(err)
	}
	return &Memory{Data: data, N: shape[0], Tokens: shape[1], Dim: shape[2], KeyPrefix: "bench"}
}

var benchFiles sync.Map // codec name -> []byte

// benchFile encodes the bench tokens with a codec (the learned one at its
// default 8x), once per test binary.
func benchFile(b *testing.B, name string) []byte {
	if f, ok := benchFiles.Load(name); ok {
		return f.([]byte)
	}
	m := benchTokens(b)
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Encode(context.Background(), w, m, Options{Codec: name, Prefix: 1}); err != nil {
		b.Fatal(err)
	}
	benchFiles.Store(name, buf.Bytes())
	return buf.Bytes()
}

// benchReader opens the bench file of a codec through a byte counter.
func benchReader(b *testing.B, name string) (*Reader, *countingReaderAt) {
	f := benchFile(b, name)
	cr := &countingReaderAt{r: bytes.NewReader(f)}
	r, err := NewReader(cr, int64(len(f)))
	if err != nil {
		b.Fatal(err)
	}
	return r, cr
}

// BenchmarkSampleReads compares, per codec, one random sample (ReadSample
// of a random index) with the per-sample time of a sequential decode of the
// whole file (ReadSamples of every index, one goroutine). Both report
// ns/sample and the bytes read per sample; a random sample should cost at
// most about twice a sequential one. With the shared data absent the
// embedded 8-sample file is used, whose single chunk makes the two close.
func BenchmarkSampleReads(b *testing.B) {
	for _, name := range []string{"ntc", "int8", "fp16"} {
		if _, err := codec.Lookup(name); err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/sequential", func(b *testing.B) {
			r, cr := benchReader(b, name)
			all := make([]int, r.Len())
			for i := range all {
				all[i] = i
			}
			dst, err := r.ReadSamples(all, nil) // loads the model
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(2 * len(dst)))
			cr.n.Store(0)
			b.ResetTimer()
			for range b.N {
				if dst, err = r.ReadSamples(all, dst); err != nil {
					b.Fatal(err)
				}
			}
			samples := float64(b.N) * float64(r.Len())
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
			b.ReportMetric(float64(cr.n.Load())/samples, "B/sample")
		})
		b.Run(name+"/random", func(b *testing.B) {
			r, cr := benchReader(b, name)
			rng := rand.New(rand.NewPCG(1, 2))
			dst, err := r.ReadSample(0, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(2 * len(dst)))
			cr.n.Store(0)
			b.ResetTimer()
			for range b.N {
				if dst, err = r.ReadSample(rng.IntN(r.Len()), dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sample")
			b.ReportMetric(float64(cr.n.Load())/float64(b.N), "B/sample")
		})
	}
}
