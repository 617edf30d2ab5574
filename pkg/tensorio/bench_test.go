package tensorio

import (
	"fmt"
	"path/filepath"
	"testing"
)

// benchShape is a shard of DeiT-tiny tokens: 197 tokens of 192 values.
const benchN, benchT, benchD = 32, 197, 192

// writeBench writes a benchmark file and returns its path.
func writeBench(b *testing.B, dt DType, ext string) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench"+ext)
	w, err := Create(path, dt, benchN, benchT, benchD)
	if err != nil {
		b.Fatal(err)
	}
	v := testValues(benchT * benchD)
	for range benchN {
		if err := w.WriteSample(v); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchRead reads every sample of spec in turn; bytes are counted as stored.
func benchRead(b *testing.B, spec string, dt DType) {
	s, err := Open(spec)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	dst := make([]float32, benchT*benchD)
	b.SetBytes(int64(benchT * benchD * dt.Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.ReadSample(i%benchN, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadNPYFloat16 measures reading float16 samples of a .npy file
// into float32, the common case.
func BenchmarkReadNPYFloat16(b *testing.B) {
	benchRead(b, writeBench(b, Float16, extNPY), Float16)
}

func BenchmarkReadSample(b *testing.B) {
	for _, ext := range []string{extNPY, extSafetensors} {
		for _, dt := range allDTypes {
			b.Run(fmt.Sprintf("%s/%s", ext[1:], dt), func(b *testing.B) {
				benchRead(b, writeBench(b, dt, ext), dt)
			})
		}
	}
}

func BenchmarkWriteSample(b *testing.B) {
	for _, dt := range allDTypes {
		b.Run(dt.String(), func(b *testing.B) {
			w, err := Create(filepath.Join(b.TempDir(), "w.npy"), dt, 1<<30, benchT, benchD)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Abort()
			v := testValues(benchT * benchD)
			b.SetBytes(int64(benchT * benchD * dt.Size()))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := w.WriteSample(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
