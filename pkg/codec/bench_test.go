package codec

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// benchData returns real tokens when the shared data is present, else
// synthetic ones, and a name for the case.
func benchData(b *testing.B, n int) ([]float32, string) {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data", "tokens", "deit_tiny_block10_dev.npy")
	if _, err := os.Stat(p); err == nil {
		data, _ := loadNPY(b, p)
		// A stride through the photos, so that the chunk is representative.
		v := deitLayout.Values()
		out := make([]float32, 0, n*v)
		for s := range n {
			j := (s * 7) % (len(data) / v)
			out = append(out, data[j*v:(j+1)*v]...)
		}
		return out, "block10"
	}
	return synthTokens(deitLayout, n, 3), "synthetic"
}

var benchCodecs = []struct {
	name string
	opts Options
}{
	{"fp16", Options{}},
	{"int8", Options{}},
	{"fp8", Options{}},
	{"int4", Options{}},
	{"ntc", Options{Ratio: 4}},
	{"ntc", Options{Ratio: 8}},
	{"ntc", Options{Ratio: 16}},
}

func benchCodec(b *testing.B, decode bool) {
	const n = 55
	data, src := benchData(b, n)
	for _, bc := range benchCodecs {
		spec, err := Lookup(bc.name)
		if err != nil {
			b.Fatal(err)
		}
		name := bc.name
		if bc.opts.Ratio != 0 {
			name = fmt.Sprintf("%s-%gx", bc.name, bc.opts.Ratio)
		}
		b.Run(name+"/"+src, func(b *testing.B) {
			c, err := spec.New(deitLayout, data, n, bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			p, err := c.Encode(nil, data, n)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]float32, len(data))
			b.SetBytes(int64(2 * len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if decode {
					err = c.Decode(out, p, n)
				} else {
					p, err = c.Encode(p[:0], data, n)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(2*len(data))/float64(len(p)), "ratio")
		})
	}
}

// BenchmarkDecode measures decoding speed in float16 bytes of output.
func BenchmarkDecode(b *testing.B) { benchCodec(b, true) }

// BenchmarkEncode measures encoding speed (fit excluded) in float16 bytes
// of input.
func BenchmarkEncode(b *testing.B) { benchCodec(b, false) }
