package cuda

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// cpuBackend models the GPU on the CPU: "device memory" is a byte slice
// addressed from cpuBase, and the work enqueued on a lane runs only when
// the lane is waited for, as on a GPU stream: a pipeline that reused a
// host buffer too early would see its data changed under the copy.
type cpuBackend struct {
	mem    []byte
	f32    bool
	queued [][]func() error
	hostN  atomic.Int64 // host buffers allocated and not freed
}

const cpuBase = 1 << 20

func newCPUBackend(memBytes int64, lanes int, f32 bool) *cpuBackend {
	return &cpuBackend{mem: make([]byte, memBytes), f32: f32, queued: make([][]func() error, lanes)}
}

func (b *cpuBackend) elemSize() int {
	if b.f32 {
		return 4
	}
	return 2
}

func (b *cpuBackend) allocHost(n int) ([]byte, error) { b.hostN.Add(1); return make([]byte, n), nil }
func (b *cpuBackend) freeHost([]byte) error           { b.hostN.Add(-1); return nil }

func (b *cpuBackend) bytesAt(p DevPtr, n int64) ([]byte, error) {
	off := int64(p) - cpuBase
	if off < 0 || off+n > int64(len(b.mem)) {
		return nil, fmt.Errorf("device address %#x + %d outside memory", p, n)
	}
	return b.mem[off : off+n], nil
}

func (b *cpuBackend) check() error { return nil }

// allocOut hands out the bottom of memory, where DecodeSamples' tests put
// their output.
func (b *cpuBackend) allocOut(n int64) (DevPtr, error) {
	if n > int64(len(b.mem))/2 {
		return 0, fmt.Errorf("cpu model: %d bytes of device memory wanted", n)
	}
	return cpuBase, nil
}
func (b *cpuBackend) freeOut(DevPtr) error { return nil }
func (b *cpuBackend) toHost(dst []byte, src DevPtr) error {
	s, err := b.bytesAt(src, int64(len(dst)))
	copy(dst, s)
	return err
}

func (b *cpuBackend) finish(lane, chunk int, l codec.Layout, st codec.Staged, host []byte, out DevPtr) error {
	b.queued[lane] = append(b.queued[lane], func() error {
		vals := make([]float32, st.N*l.Values())
		if err := codec.Finish(vals, l, st, host); err != nil {
			return fmt.Errorf("chunk %d: %w", chunk, err)
		}
		dst, err := b.bytesAt(out, int64(len(vals)*b.elemSize()))
		if err != nil {
			return err
		}
		for i, v := range vals {
			if b.f32 {
				binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
			} else {
				binary.LittleEndian.PutUint16(dst[2*i:], f16.FromFloat32(v))
			}
		}
		return nil
	})
	return nil
}

func (b *cpuBackend) scratch(lane int, n int64) (DevPtr, error) {
	// The top of memory, one region per lane.
	p := DevPtr(cpuBase + int64(len(b.mem)) - int64(lane+1)*n)
	return p, nil
}

func (b *cpuBackend) copy(lane int, dst, src DevPtr, n int64) error {
	b.queued[lane] = append(b.queued[lane], func() error {
		d, err := b.bytesAt(dst, n)
		if err != nil {
			return err
		}
		s, err := b.bytesAt(src, n)
		if err != nil {
			return err
		}
		copy(d, s)
		return nil
	})
	return nil
}

func (b *cpuBackend) wait(lane int) error {
	q := b.queued[lane]
	b.queued[lane] = nil
	for _, f := range q {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// testFile is an encoded file with the values its CPU decoder returns.
type testFile struct {
	name string
	data []byte // the file
	r    *ntcb.Reader
	want [][]float32 // per sample, from Reader.ReadSample
	tol  float64     // relative tolerance of a device decode in float32
}

// smoothTokens returns tokens with some spatial and channel structure, so
// that the learned codec has something to fit.
func smoothTokens(seed uint64, n, tk, d int) []float32 {
	r := rand.New(rand.NewPCG(seed, 3))
	v := make([]float32, n*tk*d)
	for s := range n {
		phase := r.Float64() * 6
		for t := range tk {
			for c := range d {
				x := math.Sin(float64(t)*0.3+phase+float64(c)*0.7) + 0.3*r.NormFloat64()
				if c == 3 {
					x *= 8 // a large-magnitude channel
				}
				v[(s*tk+t)*d+c] = f16.Round(float32(x))
			}
		}
	}
	return v
}

// testFiles encodes small files with every codec and odd layouts: grids
// not divisible by 4, one sample, many chunks, prefix tokens or none, and
// slices of the learned codec with 1, 8 and 16 rANS lanes, and classes in
// every kind of bucket.
func testFiles(t *testing.T) []testFile {
	t.Helper()
	type shape struct{ n, prefix, gh, gw, d, chunkSamples int }
	shapes := []shape{
		{n: 11, prefix: 1, gh: 6, gw: 5, d: 24, chunkSamples: 3},
		{n: 1, prefix: 0, gh: 7, gw: 7, d: 16, chunkSamples: 1},
		{n: 9, prefix: 2, gh: 14, gw: 14, d: 40, chunkSamples: 4},
		{n: 5, prefix: 0, gh: 24, gw: 24, d: 136, chunkSamples: 2},
		{n: 2, prefix: 1, gh: 14, gw: 14, d: 96, chunkSamples: 2},
	}
	var files []testFile
	for _, name := range []string{"fp16", "int8", "fp8", "int4", "ntc"} {
		for i, sh := range shapes {
			tk := sh.prefix + sh.gh*sh.gw
			m := &ntcb.Memory{Data: smoothTokens(uint64(i), sh.n, tk, sh.d), N: sh.n, Tokens: tk, Dim: sh.d}
			opts := ntcb.Options{Codec: name, ChunkBytes: 2 * tk * sh.d * sh.chunkSamples, Prefix: sh.prefix, GridH: sh.gh, GridW: sh.gw, Workers: 1}
			tol := 0.0
			if name == "ntc" {
				opts.CodecOptions.Ratio = 6
				tol = 1e-3 // float16 product
			}
			files = append(files, encodeTestFile(t, fmt.Sprintf("%s/%dx%dx%d", name, sh.n, tk, sh.d), m, opts, tol))
		}
	}
	// Real tokens, whose slices the learned codec codes with 16 lanes.
	const n = 8
	m := &ntcb.Memory{Data: sampleTokens(t, n), N: n, Tokens: 197, Dim: 192}
	opts := ntcb.Options{Codec: "ntc", ChunkBytes: 2 * 197 * 192 * 3, Prefix: 1, GridH: 14, GridW: 14, Workers: 1}
	opts.CodecOptions.Ratio = 8
	files = append(files, encodeTestFile(t, "ntc/block10", m, opts, 1e-3))
	// The same at 3x, whose fine steps put classes in the trellis' buckets
	// from 20 to 27 (model version 8) and in plain ones from 28.
	opts.CodecOptions.Ratio = 3
	files = append(files, encodeTestFile(t, "ntc/block10-3x", m, opts, 1e-3))
	opts.CodecOptions.Ratio = 8
	// The same at 8x fitted with gradient fields (class steps),
	// whose device programs multiply each coefficient by its class's step
	// multiplier.
	const nf, grid = 3, 196
	fields := make([]float32, nf*grid*192)
	for i := range fields {
		f, tok, c := i/(grid*192), i/192%grid, i%192
		fields[i] = float32(math.Sin(float64(c*(f+2))) + 0.01*float64(tok))
	}
	tm, err := codec.FieldsTaskMetric(fields, nf, grid, 192)
	if err != nil {
		t.Fatal(err)
	}
	opts.CodecOptions.TaskMetric = tm
	return append(files, encodeTestFile(t, "ntc/block10-classsteps", m, opts, 1e-3))
}

// namedFile returns the test file of that name.
func namedFile(t *testing.T, files []testFile, name string) testFile {
	t.Helper()
	for _, f := range files {
		if f.name == name {
			return f
		}
	}
	t.Fatalf("no test file %q", name)
	return testFile{}
}

// sampleTokens returns the first n samples of the embedded real tokens
// (197 x 192, float16).
func sampleTokens(t *testing.T, n int) []float32 {
	t.Helper()
	b := sample.Small.NPY()
	if len(b) < 10 || n > sample.Small.Samples {
		t.Fatal("embedded sample too short")
	}
	data := b[10+int(binary.LittleEndian.Uint16(b[8:])):]
	v := make([]float32, n*197*192)
	f16.DecodeLE(v, data[:2*len(v)])
	return v
}

// outlierFile encodes, with the learned codec, tokens of which some are
// far from the mean: the codec stores those as int8 rows written over the
// grid (testFiles have none).
func outlierFile(t *testing.T) testFile {
	t.Helper()
	const n, prefix, gh, gw, d = 6, 1, 9, 10, 24
	tk := prefix + gh*gw
	src := smoothTokens(7, n, tk, d)
	for s := range n {
		for tok := prefix; tok < tk; tok++ {
			if (s*7+tok)%23 == 0 {
				for c := range d {
					src[(s*tk+tok)*d+c] = f16.Round(40 * src[(s*tk+tok)*d+c])
				}
			}
		}
	}
	m := &ntcb.Memory{Data: src, N: n, Tokens: tk, Dim: d}
	opts := ntcb.Options{Codec: "ntc", ChunkBytes: 2 * tk * d * 3, Prefix: prefix, GridH: gh, GridW: gw, Workers: 1}
	opts.CodecOptions.Ratio = 6
	return encodeTestFile(t, fmt.Sprintf("ntc-outliers/%dx%dx%d", n, tk, d), m, opts, 1e-3)
}

// encodeTestFile encodes m into an in-memory .ntcb and reads back, with
// the CPU decoder, the values a device decode must match within tol
// (relative; 0 for bit for bit).
func encodeTestFile(t *testing.T, name string, m *ntcb.Memory, opts ntcb.Options, tol float64) testFile {
	t.Helper()
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ntcb.Encode(context.Background(), w, m, opts); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return openTestFile(t, name, buf.Bytes(), tol)
}

// openTestFile opens the .ntcb file data as a test file: its reader and
// what the CPU decoder makes of every sample.
func openTestFile(t *testing.T, name string, data []byte, tol float64) testFile {
	t.Helper()
	r, err := ntcb.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	f := testFile{name: name, data: data, r: r, tol: tol}
	for s := range r.Len() {
		v, err := r.ReadSample(s, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.want = append(f.want, v)
	}
	return f
}

// sampleSets are the sample selections every test decodes: all, a
// permutation with repeats, and one sample.
func sampleSets(n int) [][]int {
	all := allSamples(n)
	var mixed []int
	for i := n - 1; i >= 0; i -= 2 {
		mixed = append(mixed, i, (i*7)%n)
	}
	return [][]int{all, mixed, {n / 2}}
}

// checkDecoded compares device output (float16 or float32 bytes) with the
// CPU decoder's samples.
func checkDecoded(t *testing.T, f testFile, samples []int, got []byte, f32 bool) {
	t.Helper()
	l := f.r.Layout()
	v := l.Values()
	for i, s := range samples {
		want := f.want[s]
		var num, den float64
		for j := range v {
			var g float32
			if f32 {
				g = math.Float32frombits(binary.LittleEndian.Uint32(got[4*(i*v+j):]))
			} else {
				g = f16.ToFloat32(binary.LittleEndian.Uint16(got[2*(i*v+j):]))
			}
			w := want[j]
			if !f32 {
				w = f16.Round(w)
			}
			if f.tol == 0 && math.Float32bits(g) != math.Float32bits(w) {
				t.Fatalf("%s: output %d (sample %d) value %d: device %g, CPU %g", f.name, i, s, j, g, w)
			}
			d := float64(g) - float64(w)
			num += d * d
			den += float64(w) * float64(w)
		}
		// Written so that a NaN (a value the device never wrote, say)
		// fails too.
		if e := math.Sqrt(num / max(den, 1e-30)); !(e <= f.tol) {
			t.Fatalf("%s: output %d (sample %d): relative error %.3g > %g", f.name, i, s, e, f.tol)
		}
	}
}

// TestPipelineCPU runs the decoder's host logic against the CPU model of
// the device.
func TestPipelineCPU(t *testing.T) {
	for _, f := range append(testFiles(t), outlierFile(t)) {
		for _, f32 := range []bool{false, true} {
			for _, samples := range sampleSets(f.r.Len()) {
				l := f.r.Layout()
				elem := 2
				if f32 {
					elem = 4
				}
				outBytes := int64(len(samples) * l.Values() * elem)
				for _, lanes := range []int{1, 3} {
					be := newCPUBackend(outBytes+int64(lanes+1)*int64(f.r.Len()*l.Values()*elem)+64, lanes, f32)
					dec := newDecoder(be, DecoderOptions{F32: f32, Workers: 2, Lanes: lanes, HostEntropy: lanes == 1}, nil)
					if err := dec.DecodeSamples(context.Background(), f.r, samples, cpuBase); err != nil {
						t.Fatalf("%s: %v", f.name, err)
					}
					checkDecoded(t, f, samples, be.mem[:outBytes], f32)
					if err := dec.Close(); err != nil {
						t.Fatal(err)
					}
					if n := be.hostN.Load(); n != 0 {
						t.Fatalf("%s: %d host buffers not freed", f.name, n)
					}
				}
			}
		}
	}
}

// TestDecodeToHost decodes in batches of a few samples through the CPU
// model and compares with the CPU decoder.
func TestDecodeToHost(t *testing.T) {
	files := testFiles(t)
	for _, f := range []testFile{files[2], namedFile(t, files, "ntc/2x197x96")} {
		l := f.r.Layout()
		samples := sampleSets(f.r.Len())[1]
		be := newCPUBackend(int64(f.r.Len()*l.Values()*4)*6, 2, true)
		dec := newDecoder(be, DecoderOptions{F32: true, Workers: 2, Lanes: 2}, nil)
		got := make([]byte, 0, len(samples)*l.Values()*4)
		next := 0
		err := dec.DecodeToHost(context.Background(), f.r, samples, 3*int64(l.Values()*4), func(i int, data []byte) error {
			if i != next {
				return fmt.Errorf("sample %d emitted, want %d", i, next)
			}
			next++
			got = append(got, data...)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		checkDecoded(t, f, samples, got, true)
		if err := dec.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPipelineErrors checks that a damaged chunk is reported, not decoded,
// and that a bad sample index is refused.
func TestPipelineErrors(t *testing.T) {
	f := namedFile(t, testFiles(t), "ntc/block10") // several chunks
	l := f.r.Layout()
	be := newCPUBackend(int64(f.r.Len()*l.Values()*2)*4, 2, false)
	dec := newDecoder(be, DecoderOptions{Workers: 2, Lanes: 2}, nil)
	defer dec.Close()
	if err := dec.DecodeSamples(context.Background(), f.r, []int{0, f.r.Len()}, cpuBase); err == nil {
		t.Fatal("sample out of range accepted")
	}
	// Damage one byte of the last chunk's payload.
	ch := f.r.Container().Chunk(f.r.Container().NumChunks() - 1)
	bad := bytes.Clone(f.data)
	bad[ch.Offset+8+int64(ch.Length)/2] ^= 1
	r, err := ntcb.NewReader(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	err = dec.DecodeSamples(context.Background(), r, allSamples(r.Len()), cpuBase)
	if !errors.Is(err, container.ErrChecksum) {
		t.Fatalf("damaged chunk: got %v, want a checksum error", err)
	}
	// The decoder is usable after an error.
	if err := dec.DecodeSamples(context.Background(), f.r, allSamples(f.r.Len()), cpuBase); err != nil {
		t.Fatal(err)
	}
}
