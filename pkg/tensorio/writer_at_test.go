package tensorio

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestWriteEncodedAt writes samples by place, from several goroutines in
// a scrambled order, after a few written in order, and checks the file is
// byte for byte what WriteSample writes, for both formats, every dtype,
// and both the mapped and the WriteAt path.
func TestWriteEncodedAt(t *testing.T) {
	const n, tokens, dim = 37, 3, 5
	vals := make([]float32, n*tokens*dim)
	for i := range vals {
		vals[i] = float32(i%97)*0.37 - 11
	}
	per := tokens * dim
	dir := t.TempDir()
	for _, mapped := range []bool{true, false} {
		mapWrites = mapped
		for _, ext := range []string{".npy", ".safetensors"} {
			for _, dt := range []DType{Float16, BFloat16, Float32, Float64} {
				want := filepath.Join(dir, "want"+ext)
				w, err := Create(want, dt, n, tokens, dim)
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if err := w.WriteSample(vals[i*per : (i+1)*per]); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}

				got := filepath.Join(dir, "got"+ext)
				w, err = Create(got, dt, n, tokens, dim)
				if err != nil {
					t.Fatal(err)
				}
				ew := w.(EncodedWriter)
				const inOrder = 4
				for i := range inOrder {
					if err := w.WriteSample(vals[i*per : (i+1)*per]); err != nil {
						t.Fatal(err)
					}
				}
				if ew.Written() != inOrder {
					t.Fatalf("Written() = %d after %d samples", ew.Written(), inOrder)
				}
				// Runs of 3 samples, written by 4 goroutines, last runs first.
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for g := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for first := n - 3 - 3*g; first >= inOrder; first -= 12 {
							b := EncodeValues(nil, dt, vals[first*per:(first+3)*per])
							errs <- ew.WriteEncodedAt(first, b)
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				// The samples the runs left out, at the start.
				for i := inOrder; i < n; i++ {
					if err := ew.WriteEncodedAt(i, EncodeValues(nil, dt, vals[i*per:(i+1)*per])); err != nil && !strings.Contains(err.Error(), "twice") {
						t.Fatal(err)
					}
				}
				if ew.Written() != n {
					t.Fatalf("Written() = %d of %d", ew.Written(), n)
				}
				if err := w.WriteSample(vals[:per]); err == nil {
					t.Fatal("WriteSample after WriteEncodedAt succeeded")
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				a, _ := os.ReadFile(want)
				b, _ := os.ReadFile(got)
				if !bytes.Equal(a, b) {
					t.Fatalf("mapped=%v %s %v: files differ", mapped, ext, dt)
				}
			}
		}
	}
	mapWrites = true
}

// TestWriteEncodedAtErrors checks bad arguments, samples written twice or
// never, and that an incomplete file is not left behind.
func TestWriteEncodedAtErrors(t *testing.T) {
	const n, tokens, dim = 4, 2, 3
	dir := t.TempDir()
	path := filepath.Join(dir, "x.npy")
	w, err := Create(path, Float32, n, tokens, dim)
	if err != nil {
		t.Fatal(err)
	}
	ew := w.(EncodedWriter)
	one := EncodeValues(nil, Float32, make([]float32, tokens*dim))
	for _, c := range []struct {
		first int
		b     []byte
		want  string
	}{
		{0, one[:5], "not whole samples"},
		{-1, one, "outside"},
		{n, one, "outside"},
		{n - 1, append(one, one...), "outside"},
	} {
		if err := ew.WriteEncodedAt(c.first, c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("WriteEncodedAt(%d, %d bytes) = %v, want %q", c.first, len(c.b), err, c.want)
		}
	}
	if err := ew.WriteEncodedAt(1, one); err != nil {
		t.Fatal(err)
	}
	if err := ew.WriteEncodedAt(1, one); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a sample written twice: %v", err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "1 of 4") {
		t.Fatalf("Close with samples missing: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
	if err := ew.WriteEncodedAt(0, one); err == nil {
		t.Fatal("a write after a failed Close succeeded")
	}
}
