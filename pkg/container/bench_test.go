package container

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchFile builds a file of n chunks of size bytes, 8 samples each.
func benchFile(b *testing.B, n, size int) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		b.Fatal(err)
	}
	payload := bytes.Repeat([]byte{0x5a}, size)
	for i := range n {
		s := make([]SampleInfo, 8)
		for j := range s {
			s[j] = SampleInfo{Key: fmt.Sprintf("train/%08d.jpg", i*8+j), Tokens: 197, Dim: 768}
		}
		if err := w.WriteChunk(1, payload, s); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close([]byte(`{}`)); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func BenchmarkWriteChunk(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			payload := bytes.Repeat([]byte{0x5a}, size)
			w, err := NewWriter(io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			s := make([]SampleInfo, 8)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for j := range s {
					s[j] = SampleInfo{Key: fmt.Sprintf("%d/%d", i, j), Tokens: 197, Dim: 768}
				}
				if err := w.WriteChunk(1, payload, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadChunk(b *testing.B) {
	for _, size := range []int{64 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			data := benchFile(b, 4, size)
			r, err := NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				b.Fatal(err)
			}
			var buf []byte
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if buf, err = r.ReadChunk(i%4, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewReader(b *testing.B) {
	for _, chunks := range []int{100, 10000} {
		b.Run(fmt.Sprintf("samples=%d", chunks*8), func(b *testing.B) {
			data := benchFile(b, chunks, 16)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
