//go:build cuda

package cuda

import (
	"context"
	"testing"
)

// TestDecodeGPU is the differential test of the GPU decoder: every codec,
// odd grids, one sample, many chunks, float16 and float32 output, sample
// selections with gaps and repeats, against the CPU decoder (bit for bit
// where the math is exact, relative error under 1e-3 for the learned
// codec's float16 product).
func TestDecodeGPU(t *testing.T) {
	dev, err := Open(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	defer dev.Close()
	t.Logf("device: %s", dev.Name())
	for _, f := range append(testFiles(t), outlierFile(t)) {
		for _, f32 := range []bool{false, true} {
			dec, err := NewDecoder(dev, DecoderOptions{F32: f32, Workers: 4, Lanes: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, samples := range sampleSets(f.r.Len()) {
				n := dec.OutputBytes(f.r.Layout(), len(samples))
				out, err := dev.Alloc(n)
				if err != nil {
					t.Fatal(err)
				}
				if err := dev.Memset(out, n, nil); err != nil {
					t.Fatal(err)
				}
				if err := dec.DecodeSamples(context.Background(), f.r, samples, out); err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
				host := make([]byte, n)
				if err := dev.CopyDtoH(host, out, n, nil); err != nil {
					t.Fatal(err)
				}
				checkDecoded(t, f, samples, host, f32)
				if err := dev.Free(out); err != nil {
					t.Fatal(err)
				}
			}
			if err := dec.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
