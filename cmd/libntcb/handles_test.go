package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

const golden = "../../testdata/golden"

// The golden file of every codec (container version 2, split chunks), and
// older files: version 1 (whole chunks, through the chunk cache) and the
// learned codec's payload versions 4 and 5.
var goldenCodecs = []string{"fp16", "int8", "fp8", "int4", "ntc", "compat/int8_container_v1", "compat/ntc_container_v1",
	"compat/ntc_payload_v4", "compat/ntc_payload_v5", "compat/ntc_model_v5"}

// want returns what pkg/ntcb decodes the golden file of name to, sample by
// sample.
func want(t *testing.T, name string) (samples [][]float32, tokens, dim int) {
	t.Helper()
	f, err := ntcb.Open(filepath.Join(golden, name+".ntcb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range f.Len() {
		v, err := f.ReadSample(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, v)
	}
	return samples, f.Layout().Tokens, f.Layout().Dim
}

func readF32(t *testing.T, h int64, idx []int64, values int) []float32 {
	t.Helper()
	hd, err := acquire(h)
	if err != nil {
		t.Fatal(err)
	}
	defer hd.mu.RUnlock()
	out := make([]float32, len(idx)*values)
	var b []byte
	if len(out) > 0 {
		b = bytesOf(out)
	}
	if err := hd.read(idx, dtypeFloat32, b); err != nil {
		t.Fatal(err)
	}
	return out
}

func bytesOf(v []float32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)) }

func u16bytes(v []uint16) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v)) }

func TestReadLikeReader(t *testing.T) {
	for _, name := range goldenCodecs {
		t.Run(name, func(t *testing.T) {
			w, tokens, dim := want(t, name)
			data, err := os.ReadFile(filepath.Join(golden, name+".ntcb"))
			if err != nil {
				t.Fatal(err)
			}
			hp, err := openPath(filepath.Join(golden, name+".ntcb"))
			if err != nil {
				t.Fatal(err)
			}
			hb, err := openBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join(golden, name+".ntcb"))
			if err != nil {
				t.Fatal(err)
			}
			hf, err := openFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n := int64(len(w))
			idx := []int64{n - 1, 0, n - 1, 1 % n}
			for _, h := range []int64{hp, hb, hf} {
				hd, _ := acquire(h)
				if s, tk, d := hd.shape(); s != len(w) || tk != tokens || d != dim {
					t.Errorf("shape %d %d %d, want %d %d %d", s, tk, d, len(w), tokens, dim)
				}
				hd.mu.RUnlock()
				got := readF32(t, h, idx, tokens*dim)
				for j, i := range idx {
					for k, v := range w[i] {
						if g := got[j*tokens*dim+k]; g != v {
							t.Fatalf("handle %d: sample %d value %d = %v, want %v", h, i, k, g, v)
						}
					}
				}
				// float16 output: the float32 values, rounded.
				hd, _ = acquire(h)
				h16 := make([]uint16, len(idx)*tokens*dim)
				if err := hd.read(idx, dtypeFloat16, u16bytes(h16)); err != nil {
					t.Fatal(err)
				}
				hd.mu.RUnlock()
				for j, i := range idx {
					for k, v := range w[i] {
						if g := h16[j*tokens*dim+k]; g != f16.FromFloat32(v) {
							t.Fatalf("float16: sample %d value %d = %#x, want %#x", i, k, g, f16.FromFloat32(v))
						}
					}
				}
				if err := closeHandle(h); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(golden, "int8.ntcb"))
	if err != nil {
		t.Fatal(err)
	}
	corrupt := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	r, err := ntcb.NewReader(byteReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	chunk := r.Container().Chunk(0)
	for _, tc := range []struct {
		name string
		data []byte
		code int
		read bool // the error shows when a sample is read, not at open
	}{
		{"bad magic", corrupt(func(b []byte) []byte { b[0] = 'P'; return b }), codeBadMagic, false},
		{"version", corrupt(func(b []byte) []byte { b[8] = 9; return b }), codeVersion, false},
		{"truncated", good[:len(good)-1], codeTruncated, false},
		{"empty", nil, codeTruncated, false},
		{"chunk checksum", corrupt(func(b []byte) []byte { b[chunk.Offset+8] ^= 1; return b }), codeChecksum, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := openBytes(tc.data)
			if !tc.read {
				if got := errorCode(err); got != tc.code {
					t.Fatalf("open: code %d (%v), want %d", got, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeHandle(h)
			hd, _ := acquire(h)
			defer hd.mu.RUnlock()
			_, tokens, dim := hd.shape()
			err = hd.read([]int64{0}, dtypeFloat32, make([]byte, 4*tokens*dim))
			if got := errorCode(err); got != tc.code {
				t.Fatalf("read: code %d (%v), want %d", got, err, tc.code)
			}
		})
	}
	if _, err := openPath(filepath.Join(t.TempDir(), "nope.ntcb")); errorCode(err) != codeNoFile {
		t.Errorf("missing file: %v, code %d", err, errorCode(err))
	}
	if _, err := openPath(t.TempDir()); errorCode(err) == codeOK {
		t.Errorf("a directory opened")
	}
	var none []int
	if c := errorCode(protect(func() error { none[len(none)] = 1; return nil })); c != codeInternal {
		t.Errorf("a panic: code %d", c)
	}
}

func TestBadArguments(t *testing.T) {
	h, err := openPath(filepath.Join(golden, "int8.ntcb"))
	if err != nil {
		t.Fatal(err)
	}
	hd, _ := acquire(h)
	n, tokens, dim := hd.shape()
	one := 4 * tokens * dim
	for _, tc := range []struct {
		idx   []int64
		dtype int
		bytes int
	}{
		{[]int64{int64(n)}, dtypeFloat32, one},
		{[]int64{-1}, dtypeFloat32, one},
		{[]int64{0}, dtypeFloat32, one - 1},
		{[]int64{0}, dtypeFloat32, one + 4},
		{[]int64{0}, 7, one},
		{[]int64{0, 1}, dtypeFloat16, one + 2},
	} {
		if err := hd.read(tc.idx, tc.dtype, make([]byte, tc.bytes)); errorCode(err) != codeArgument {
			t.Errorf("read(%v, dtype %d, %d bytes): %v", tc.idx, tc.dtype, tc.bytes, err)
		}
	}
	if err := hd.read(nil, dtypeFloat32, nil); err != nil {
		t.Errorf("reading no samples: %v", err)
	}
	if _, err := hd.key(int64(n)); errorCode(err) != codeArgument {
		t.Errorf("key out of range: %v", err)
	}
	if i, err := hd.lookup("golden#2"); err != nil || i != 2 {
		t.Errorf("lookup: %d, %v", i, err)
	}
	if _, err := hd.lookup("nope"); errorCode(err) != codeNotFound {
		t.Errorf("lookup of a missing key: %v", err)
	}
	hd.mu.RUnlock()
	if err := closeHandle(h); err != nil {
		t.Fatal(err)
	}
	if _, err := acquire(h); errorCode(err) != codeArgument {
		t.Errorf("a closed handle: %v", err)
	}
	if err := closeHandle(h); errorCode(err) != codeArgument {
		t.Errorf("closing twice: %v", err)
	}
}

// TestConcurrentReads reads one handle from many goroutines (run with
// -race), and closes it while they run: close waits for the reads in
// flight, and later reads fail cleanly.
func TestConcurrentReads(t *testing.T) {
	w, tokens, dim := want(t, "ntc")
	before := openHandles()
	h, err := openPath(filepath.Join(golden, "ntc.ntcb"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 20 {
				i := int64((g*7 + k*3) % len(w))
				hd, err := acquire(h)
				if err != nil {
					if errorCode(err) != codeArgument {
						errs <- err
					}
					return
				}
				out := make([]float32, tokens*dim)
				err = hd.read([]int64{i}, dtypeFloat32, bytesOf(out))
				hd.mu.RUnlock()
				if err != nil {
					errs <- err
					return
				}
				for k, v := range w[i] {
					if out[k] != v {
						errs <- fmt.Errorf("sample %d value %d = %v, want %v", i, k, out[k], v)
						return
					}
				}
			}
		}()
		if g == 6 {
			if err := closeHandle(h); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if openHandles() != before {
		t.Errorf("%d handles open, want %d", openHandles(), before)
	}
}

// TestModelByReference reads a file that records its model by hash: an
// error naming the missing model until the caller gives the blob, then the
// values of the same data with the model stored.
func TestModelByReference(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 7))
	m := &ntcb.Memory{Data: make([]float32, 6*17*16), N: 6, Tokens: 17, Dim: 16, KeyPrefix: "r"}
	for i := range m.Data {
		m.Data[i] = f16.Round(float32(rng.NormFloat64()) + float32(i%16)*0.01)
	}
	ctx := context.Background()
	model, err := ntcb.Fit(ctx, m, ntcb.Options{Codec: "ntc", Prefix: -1, SharedModel: true, ModelRef: true})
	if err != nil {
		t.Fatal(err)
	}
	byRef, embedded := filepath.Join(dir, "ref.ntcb"), filepath.Join(dir, "embedded.ntcb")
	if _, err := ntcb.EncodeFile(ctx, byRef, m, ntcb.Options{Model: model, ModelRef: true, Prefix: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ntcb.EncodeFile(ctx, embedded, m, ntcb.Options{Model: model, Prefix: -1}); err != nil {
		t.Fatal(err)
	}
	he, err := openPath(embedded)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(he)
	want := readF32(t, he, []int64{0, 5}, 17*16)
	h, err := openPath(byRef)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h)
	hd, _ := acquire(h)
	defer hd.mu.RUnlock()
	out := make([]float32, 2*17*16)
	if err := hd.read([]int64{0, 5}, dtypeFloat32, bytesOf(out)); errorCode(err) != codeExternal {
		t.Fatalf("no model given: %v (code %d)", err, errorCode(err))
	}
	other := append([]byte(nil), model.Blob...)
	other[len(other)-1] ^= 1
	if err := hd.addModel(5, other); err != nil {
		t.Fatal(err)
	}
	if err := hd.read([]int64{0, 5}, dtypeFloat32, bytesOf(out)); errorCode(err) != codeExternal {
		t.Fatalf("another model given: %v (code %d)", err, errorCode(err))
	}
	if err := hd.addModel(5, model.Blob); err != nil {
		t.Fatal(err)
	}
	if err := hd.read([]int64{0, 5}, dtypeFloat32, bytesOf(out)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out, want) {
		t.Fatal("the file by reference decodes differently from the one with the model stored")
	}
	if err := hd.addModel(250, model.Blob); errorCode(err) != codeArgument {
		t.Errorf("a model of an unknown codec: %v", err)
	}
}
