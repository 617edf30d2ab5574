package bench

import (
	"fmt"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// The codec benchmarks time one codec's Encode and Decode of the embedded
// sample (8 x 197 x 192 real tokens) as one chunk, with no container around
// it. Throughput is float16 bytes of the tokens per second, so figures
// compare across codecs and with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./pkg/bench > new.txt
//	benchstat old.txt new.txt
//
// Every registered codec is measured; rate-controlled ones at 4x, 8x and
// 16x ("ntc/r8"). A learned codec is fitted on the sample before timing.

// benchRatios are the target ratios of rate-controlled codecs here.
var benchRatios = []float64{4, 8, 16}

type benchCase struct {
	name string
	c    codec.Codec
	err  error
}

func sampleTokens(b *testing.B) ([]float32, int, codec.Layout) {
	b.Helper()
	path, err := sample.WriteTo(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	src, err := ntcb.OpenFiles([]string{path})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	tk, d := src.Shape()
	l, err := codec.InferLayout(tk, d, -1, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	n := src.Len()
	vals := make([]float32, n*l.Values())
	for i := range n {
		if err := src.ReadSample(i, vals[i*l.Values():(i+1)*l.Values()]); err != nil {
			b.Fatal(err)
		}
	}
	return vals, n, l
}

// benchCodecs makes one codec per registered codec and rate (the test
// codecs of this package aside).
func benchCodecs(b *testing.B, vals []float32, n int, l codec.Layout) []benchCase {
	var cases []benchCase
	for _, name := range DefaultCodecs() {
		if name == rateCodec || name == failCodec || name == fitCodec {
			continue
		}
		spec, err := codec.Lookup(name)
		if err != nil {
			b.Fatal(err)
		}
		ratios, label := []float64{0}, func(float64) string { return name }
		if RateControlled(spec, l, benchRatios[0]) {
			ratios, label = benchRatios, func(r float64) string { return fmt.Sprintf("%s/r%g", name, r) }
		}
		for _, r := range ratios {
			c, err := spec.New(l, vals, n, codec.Options{Ratio: r, ChunkSamples: n})
			cases = append(cases, benchCase{name: label(r), c: c, err: err})
		}
	}
	return cases
}

// BenchmarkEncode times Codec.Encode of the embedded sample.
func BenchmarkEncode(b *testing.B) {
	vals, n, l := sampleTokens(b)
	for _, bc := range benchCodecs(b, vals, n, l) {
		b.Run(bc.name, func(b *testing.B) {
			if bc.err != nil {
				b.Skip(bc.err)
			}
			dst, err := bc.c.Encode(nil, vals, n)
			if err != nil {
				b.Skip(err)
			}
			b.SetBytes(int64(2 * len(vals)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if dst, err = bc.c.Encode(dst[:0], vals, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(8*float64(len(dst))/float64(len(vals)), "bits/value")
		})
	}
}

// BenchmarkDecode times Codec.Decode of the embedded sample.
func BenchmarkDecode(b *testing.B) {
	vals, n, l := sampleTokens(b)
	for _, bc := range benchCodecs(b, vals, n, l) {
		b.Run(bc.name, func(b *testing.B) {
			if bc.err != nil {
				b.Skip(bc.err)
			}
			payload, err := bc.c.Encode(nil, vals, n)
			if err != nil {
				b.Skip(err)
			}
			dst := make([]float32, len(vals))
			b.SetBytes(int64(2 * len(vals)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := bc.c.Decode(dst, payload, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
