package ntcb

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// tokens returns n samples of t x d float16-representable values with some
// structure (a per-channel offset, as real tokens have).
func tokens(seed uint64, n, t, d int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n*t*d)
	for i := range v {
		v[i] = f16.Round(float32(r.NormFloat64()) + float32(i%d)*0.01)
	}
	return v
}

func encodeMem(t *testing.T, m *Memory, opts Options) ([]byte, *Result) {
	t.Helper()
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Encode(context.Background(), w, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), res
}

// TestRoundTripFP16 checks that fp16 is bit-exact on float16 input across
// several chunks, by index and by key.
func TestRoundTripFP16(t *testing.T) {
	const n, tk, d = 7, 17, 12 // 1 CLS + 4x4 grid
	m := &Memory{Data: tokens(1, n, tk, d), N: n, Tokens: tk, Dim: d, KeyPrefix: "s"}
	b, res := encodeMem(t, m, Options{Codec: "fp16", ChunkBytes: 2 * 2 * tk * d, Prefix: -1})
	if res.Chunks != 4 || res.Samples != n || res.FileBytes != int64(len(b)) {
		t.Fatalf("result %+v, file %d bytes", res, len(b))
	}
	if res.Layout.Prefix != 1 || res.Layout.GridH != 4 {
		t.Fatalf("layout %+v", res.Layout)
	}
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 0, 6, 5, 1, 2, 4} {
		got, err := r.ReadSample(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := m.Data[i*tk*d : (i+1)*tk*d]
		if !slices.Equal(got, want) {
			t.Fatalf("sample %d differs", i)
		}
		if k, err := r.Lookup(m.Key(i)); err != nil || k != i {
			t.Fatalf("Lookup(%q) = %d, %v", m.Key(i), k, err)
		}
	}
	if _, err := r.Lookup("nope"); !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

// TestDeterministic checks that the output does not depend on the number of
// workers or on the run.
func TestDeterministic(t *testing.T) {
	m := &Memory{Data: tokens(2, 9, 16, 8), N: 9, Tokens: 16, Dim: 8}
	a, _ := encodeMem(t, m, Options{Codec: "fp16", ChunkBytes: 600, Workers: 1, Prefix: -1})
	b, _ := encodeMem(t, m, Options{Codec: "fp16", ChunkBytes: 600, Workers: 4, Prefix: -1})
	if !bytes.Equal(a, b) {
		t.Fatal("output depends on the number of workers")
	}
}

// writeNPY writes samples as a .npy file of float16.
func writeNPY(t *testing.T, path string, v []float32, n, tk, d int, batched bool) {
	t.Helper()
	w, err := tensorio.Create(path, tensorio.Float16, n, tk, d)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.WriteSample(v[i*tk*d : (i+1)*tk*d]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !batched { // rewrite as a 2-D [T, D] file with the same data
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		hlen := int(raw[8]) | int(raw[9])<<8
		h := fmt.Sprintf("{'descr': '<f2', 'fortran_order': False, 'shape': (%d, %d), }", tk, d)
		h += strings.Repeat(" ", 63-(10+len(h))%64) + "\n"
		out := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
		out = append(append(out, h...), raw[10+hlen:]...)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestManyFiles encodes single-sample and batch files together and decodes
// them to one .npy, bit for bit.
func TestManyFiles(t *testing.T) {
	dir := t.TempDir()
	const tk, d = 10, 6 // 1 + 3x3
	all := tokens(3, 6, tk, d)
	sz := tk * d
	writeNPY(t, filepath.Join(dir, "a.npy"), all[:sz], 1, tk, d, false)
	writeNPY(t, filepath.Join(dir, "b.npy"), all[sz:4*sz], 3, tk, d, true)
	writeNPY(t, filepath.Join(dir, "c.npy"), all[4*sz:], 2, tk, d, true)
	specs, err := tensorio.Expand([]string{filepath.Join(dir, "*.npy")})
	if err != nil {
		t.Fatal(err)
	}
	src, err := OpenFiles(specs)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(dir, "x.ntcb")
	if _, err := EncodeFile(context.Background(), out, src, Options{Codec: "fp16", ChunkBytes: 2 * 2 * sz, Prefix: -1}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Keys are relative to the inputs' common directory.
	wantKeys := []string{"a", "b#0", "b#1", "b#2", "c#0", "c#1"}
	for i, k := range wantKeys {
		if got := r.Key(i); got != k {
			t.Errorf("key %d = %q, want %s", i, got, k)
		}
	}
	if got := exportFile(t, r.Reader, []int{0, 1, 2, 3, 4, 5}, tensorio.Float16, 0); !slices.Equal(got, all) {
		t.Fatal("decoded file differs from the inputs")
	}
}

// exportFile exports the samples idx of r to a new .npy file of dtype dt
// with the given workers and returns what the file holds.
func exportFile(t *testing.T, r *Reader, idx []int, dt tensorio.DType, workers int) []float32 {
	t.Helper()
	tk, d := r.Layout().Tokens, r.Layout().Dim
	path := filepath.Join(t.TempDir(), "export.npy")
	w, err := tensorio.Create(path, dt, len(idx), tk, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := Export(context.Background(), r, idx, w, nil, workers); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, shape, _, err := tensorio.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{len(idx), tk, d}) {
		t.Fatalf("exported shape %v, want [%d %d %d]", shape, len(idx), tk, d)
	}
	return got
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.n.Add(int64(len(p)))
	return c.r.ReadAt(p, off)
}

// TestRandomAccessReadsOneSample checks, for every codec, that opening
// reads no chunk and that reading a sample reads its chunk's head and its
// own part when the chunk is split, and exactly its chunk otherwise;
// ReadSamples reads each run of consecutive samples once.
func TestRandomAccessReadsOneSample(t *testing.T) {
	const n, tk, d = 12, 1 + 4*4, 16
	m := &Memory{Data: tokens(4, n, tk, d), N: n, Tokens: tk, Dim: d}
	for _, name := range codec.Names() {
		t.Run(name, func(t *testing.T) {
			b, _ := encodeMem(t, m, Options{Codec: name, ChunkBytes: 5 * 2 * tk * d, Prefix: -1})
			cr := &countingReaderAt{r: bytes.NewReader(b)}
			r, err := NewReader(cr, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			c := r.Container()
			var payloads int64
			for i := range c.NumChunks() {
				payloads += int64(c.Chunk(i).Length)
			}
			var models int64
			for _, mi := range c.Models() {
				models += int64(mi.Length) + 12
			}
			if opened := cr.n.Load(); opened > int64(len(b))-payloads-models {
				t.Fatalf("open read %d bytes; the file has only %d outside chunk payloads and models", opened, int64(len(b))-payloads-models)
			}
			if _, err := r.codecFor(c.Chunk(0).Codec); err != nil { // the model, once
				t.Fatal(err)
			}
			cost := func(i int) int64 {
				ci, _ := c.SampleChunk(i)
				ch := c.Chunk(ci)
				if !ch.Split {
					return int64(ch.Length) + 12 // block header and CRC
				}
				_, part := c.SamplePart(i)
				return int64(8 + ch.Head + part)
			}
			for _, i := range []int{7, 0, 11, 6} {
				before := cr.n.Load()
				got, err := r.ReadSample(i, nil)
				if err != nil {
					t.Fatal(err)
				}
				if want := cost(i); cr.n.Load()-before != want {
					t.Fatalf("sample %d read %d bytes, want %d", i, cr.n.Load()-before, want)
				}
				want, _ := readAllChecked(b)
				if !slices.Equal(got, want[i*tk*d:(i+1)*tk*d]) {
					t.Fatalf("sample %d differs from the whole-file decode", i)
				}
			}
			if !c.ChunkSplit(0) {
				t.Fatalf("%s chunks are not split", name)
			}
			// Samples 5, 6, 7 are one run of chunk 1 (samples 5-9): its
			// head once and their three parts.
			before := cr.n.Load()
			if _, err := r.ReadSamples([]int{6, 5, 7}, nil); err != nil {
				t.Fatal(err)
			}
			want := cost(5) + cost(6) + cost(7) - 2*int64(8+c.Chunk(1).Head)
			if got := cr.n.Load() - before; got != want {
				t.Fatalf("ReadSamples(6, 5, 7) read %d bytes, want %d", got, want)
			}
		})
	}
}

// TestReadSamples checks ReadSamples against the whole-file decode for
// orders with repeats, runs and gaps, for split and unsplit chunks.
func TestReadSamples(t *testing.T) {
	const n, tk, d = 13, 1 + 3*3, 8
	m := &Memory{Data: tokens(6, n, tk, d), N: n, Tokens: tk, Dim: d}
	for _, name := range codec.Names() {
		t.Run(name, func(t *testing.T) {
			b, _ := encodeMem(t, m, Options{Codec: name, ChunkBytes: 4 * 2 * tk * d, Prefix: -1})
			want, err := readAllChecked(b)
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			v := tk * d
			for _, idx := range [][]int{
				{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
				{12, 0, 5, 5, 6, 7, 3, 2, 1, 12},
				{9},
				{4, 6, 8, 10},
				{},
			} {
				got, err := r.ReadSamples(idx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(idx)*v {
					t.Fatalf("%v: %d values", idx, len(got))
				}
				for k, i := range idx {
					if !slices.Equal(got[k*v:(k+1)*v], want[i*v:(i+1)*v]) {
						t.Fatalf("%v: output %d (sample %d) differs", idx, k, i)
					}
				}
			}
			if _, err := r.ReadSamples([]int{0, n}, nil); err == nil {
				t.Fatal("sample out of range accepted")
			}
		})
	}
}

// smallFile is a small valid file for the corruption tests.
func smallFile(t *testing.T) ([]byte, *Memory) {
	const n, tk, d = 4, 5, 4 // 1 + 2x2
	m := &Memory{Data: tokens(5, n, tk, d), N: n, Tokens: tk, Dim: d, KeyPrefix: "k"}
	b, _ := encodeMem(t, m, Options{Codec: "fp16", ChunkBytes: 2 * 2 * tk * d, Prefix: -1})
	return b, m
}

// readAllChecked opens b and decodes every sample, returning the first error.
// A nil error with wrong values is reported as a test failure by the caller.
func readAllChecked(b []byte) ([]float32, error) {
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	if err := r.Verify(context.Background(), nil); err != nil {
		return nil, err
	}
	var all []float32
	for i := range r.Len() {
		v, err := r.ReadSample(i, nil)
		if err != nil {
			return nil, err
		}
		all = append(all, v...)
	}
	return all, nil
}

// TestEveryByteFlipDetected flips each byte of a small file (three
// patterns) and requires an error from opening, verifying or decoding.
func TestEveryByteFlipDetected(t *testing.T) {
	b, _ := smallFile(t)
	bad := make([]byte, len(b))
	for i := range b {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			copy(bad, b)
			bad[i] ^= x
			if _, err := readAllChecked(bad); err == nil {
				t.Fatalf("flipping byte %d with %#x went unnoticed", i, x)
			}
		}
	}
}

// TestTruncationDetected cuts the file at every length.
func TestTruncationDetected(t *testing.T) {
	b, _ := smallFile(t)
	for n := range len(b) {
		if _, err := readAllChecked(b[:n]); err == nil {
			t.Fatalf("file cut to %d of %d bytes opened", n, len(b))
		}
	}
}

// cancelAfter is a Progress that cancels a context after the first chunk.
type cancelAfter struct{ cancel context.CancelFunc }

func (c cancelAfter) Add(int) { c.cancel() }

// TestInterruptedEncodeLeavesNothing cancels an encode after its first chunk
// and checks that the directory holds no output and no temporary file.
func TestInterruptedEncodeLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	m := &Memory{Data: tokens(6, 20, 17, 8), N: 20, Tokens: 17, Dim: 8}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := EncodeFile(ctx, filepath.Join(dir, "x.ntcb"), m, Options{Codec: "fp16", ChunkBytes: 300, Prefix: -1, Progress: cancelAfter{cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

// TestModelFile fits, stores and reloads a model, and encodes with it.
func TestModelFile(t *testing.T) {
	dir := t.TempDir()
	m := &Memory{Data: tokens(7, 3, 17, 8), N: 3, Tokens: 17, Dim: 8}
	model, err := Fit(context.Background(), m, Options{Codec: "fp16", Prefix: -1})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m.ntcm")
	if err := WriteModelFile(path, model, "test"); err != nil {
		t.Fatal(err)
	}
	got, err := ReadModelFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Codec != "fp16" || got.Layout != model.Layout {
		t.Fatalf("model %+v", got)
	}
	if _, err := EncodeFile(context.Background(), filepath.Join(dir, "x.ntcb"), m, Options{Model: got, Prefix: -1}); err != nil {
		t.Fatal(err)
	}
	// A model for another layout is refused.
	other := &Memory{Data: tokens(7, 1, 10, 8), N: 1, Tokens: 10, Dim: 8}
	if _, err := EncodeFile(context.Background(), filepath.Join(dir, "y.ntcb"), other, Options{Model: got, Prefix: -1}); !errors.Is(err, ErrModel) {
		t.Fatalf("mismatched model: %v", err)
	}
	// A model file is not a token file, and the other way round.
	if _, err := Open(path); !errors.Is(err, ErrKind) {
		t.Fatalf("opening a model as data: %v", err)
	}
	if _, err := ReadModelFile(filepath.Join(dir, "x.ntcb")); !errors.Is(err, ErrKind) {
		t.Fatalf("reading data as a model: %v", err)
	}
}

// TestGolden compares a small fp16 file with testdata/golden_fp16.ntcb byte
// for byte; run with -update to rewrite it after a deliberate format change.
func TestGolden(t *testing.T) {
	m := &Memory{Data: tokens(8, 3, 5, 4), N: 3, Tokens: 5, Dim: 4, KeyPrefix: "golden"}
	b, _ := encodeMem(t, m, Options{Codec: "fp16", ChunkBytes: 2 * 2 * 5 * 4, Prefix: -1, Tool: "ntc golden", Meta: map[string]string{"model": "test"}})
	path := filepath.Join("..", "..", "testdata", "golden_fp16.ntcb")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/ntcb -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("output differs from %s (%d vs %d bytes); if the format changed on purpose, run with -update", path, len(b), len(want))
	}
	got, err := readAllChecked(want)
	if err != nil || !slices.Equal(got, m.Data) {
		t.Fatalf("golden file does not decode to its input: %v", err)
	}
}

// TestDefaultIsLearnedCodec checks that Encode without a codec uses the
// learned codec at its default ratio, stores its model, and that a sample
// read reads the model once and then only the chunk's head and the
// sample's part.
func TestDefaultIsLearnedCodec(t *testing.T) {
	const n, tk, d = 24, 1 + 8*8, 32
	m := &Memory{Data: tokens(10, n, tk, d), N: n, Tokens: tk, Dim: d}
	b, res := encodeMem(t, m, Options{ChunkBytes: 4 * 2 * tk * d, Prefix: -1})
	if again, _ := encodeMem(t, m, Options{ChunkBytes: 4 * 2 * tk * d, Prefix: -1, Workers: 3}); !bytes.Equal(b, again) {
		t.Fatal("the learned codec's output depends on the run or the number of workers")
	}
	if res.ModelBytes == 0 || res.Ratio < 7.5 || res.Ratio > 8.5 {
		t.Fatalf("default encode: model %d bytes, ratio %.2f; want the learned codec near 8x", res.ModelBytes, res.Ratio)
	}
	cr := &countingReaderAt{r: bytes.NewReader(b)}
	r, err := NewReader(cr, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta().Codec != DefaultCodec {
		t.Fatalf("codec %q", r.Meta().Codec)
	}
	model := int64(r.Container().Models()[0].Length) + 12
	for k, i := range []int{5, 17, 2} {
		before := cr.n.Load()
		if _, err := r.ReadSample(i, nil); err != nil {
			t.Fatal(err)
		}
		ci, _ := r.Container().SampleChunk(i)
		ch := r.Container().Chunk(ci)
		if !ch.Split {
			t.Fatalf("chunk %d is not split", ci)
		}
		_, part := r.Container().SamplePart(i)
		want := int64(8 + ch.Head + part) // the block header, the head, the part
		if k == 0 {
			want += model
		}
		if got := cr.n.Load() - before; got != want {
			t.Fatalf("read %d of sample %d: %d bytes, want %d", k, i, got, want)
		}
	}
}

// sliceWriter collects samples; it implements tensorio.Writer.
type sliceWriter struct{ got []float32 }

func (w *sliceWriter) WriteSample(v []float32) error { w.got = append(w.got, v...); return nil }
func (w *sliceWriter) Close() error                  { return nil }
func (w *sliceWriter) Abort() error                  { return nil }

// TestExportOrder decodes samples in a scrambled order with repeats, across
// chunks, with several workers, and checks every sample lands in order.
func TestExportOrder(t *testing.T) {
	const n, tk, d = 10, 5, 4
	m := &Memory{Data: tokens(11, n, tk, d), N: n, Tokens: tk, Dim: d}
	b, _ := encodeMem(t, m, Options{Codec: "fp16", ChunkBytes: 3 * 2 * tk * d, Prefix: -1})
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	idx := []int{9, 0, 1, 2, 2, 7, 3, 8, 5, 4, 6, 0, 9}
	for _, workers := range []int{1, 3} {
		var w sliceWriter
		if err := Export(context.Background(), r, idx, &w, nil, workers); err != nil {
			t.Fatal(err)
		}
		var want []float32
		for _, i := range idx {
			want = append(want, m.Data[i*tk*d:(i+1)*tk*d]...)
		}
		if !slices.Equal(w.got, want) {
			t.Fatalf("%d workers: samples out of order", workers)
		}
	}
	if err := Export(context.Background(), r, []int{10}, &sliceWriter{}, nil, 1); err == nil {
		t.Fatal("index out of range accepted")
	}
}

// TestRatioWithFitSubset fits the learned codec on a fifth of the samples
// and checks that the whole file still lands near the target ratio: the
// model's bytes are spread over every sample, not only the fitted ones.
func TestRatioWithFitSubset(t *testing.T) {
	const n, tk, d = 60, 1 + 8*8, 32
	m := &Memory{Data: tokens(12, n, tk, d), N: n, Tokens: tk, Dim: d}
	for _, fit := range []int{12, n} {
		_, res := encodeMem(t, m, Options{ChunkBytes: 6 * 2 * tk * d, Prefix: -1, FitSamples: fit,
			CodecOptions: codec.Options{Ratio: 6}})
		if math.Abs(res.Ratio/6-1) > 0.03 {
			t.Errorf("fitted on %d of %d samples: ratio %.3f, want 6 within 3%%", fit, n, res.Ratio)
		}
	}
}

// TestCopy rewrites a source through a writer, in order.
func TestCopy(t *testing.T) {
	m := &Memory{Data: tokens(8, 3, 5, 4), N: 3, Tokens: 5, Dim: 4}
	path := filepath.Join(t.TempDir(), "c.npy")
	w, err := tensorio.Create(path, tensorio.Float32, 3, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := Copy(context.Background(), m, w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, _, err := tensorio.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, m.Data) {
		t.Fatal("copy differs from its source")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w2, err := tensorio.Create(filepath.Join(t.TempDir(), "d.npy"), tensorio.Float32, 3, 5, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Abort()
	if err := Copy(ctx, m, w2, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
}

// TestExportGroups exports through a file writer (an EncodedWriter) with
// groups of 3 samples, so that runs of a chunk's 10 samples end within a
// group and across groups, in a scrambled order with repeats, and checks
// every sample against ReadSample.
func TestExportGroups(t *testing.T) {
	const n, tk, d = 23, 1 + 4*4, 8
	defer func(g int) { exportGroupBytes = g }(exportGroupBytes)
	exportGroupBytes = 3 * 4 * tk * d
	m := &Memory{Data: tokens(13, n, tk, d), N: n, Tokens: tk, Dim: d}
	for _, name := range []string{"fp16", "int8", "ntc"} {
		b, _ := encodeMem(t, m, Options{Codec: name, ChunkBytes: 10 * 2 * tk * d, Prefix: -1})
		r, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Container().ChunkSplit(0) {
			t.Fatalf("%s: chunk 0 is not split", name)
		}
		idx := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 5, 6, 7, 8, 22, 0, 4}
		for _, workers := range []int{1, 3} {
			got := exportFile(t, r, idx, tensorio.Float32, workers)
			for k, i := range idx {
				want, err := r.ReadSample(i, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got[k*tk*d:(k+1)*tk*d], want) {
					t.Fatalf("%s, %d workers: output %d differs from sample %d", name, workers, k, i)
				}
			}
		}
	}
}
