package ntcb

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/cpufeat"
	"github.com/ntc-project/ntc/internal/knobs"
	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// The cross-language golden files: for every registered codec,
// testdata/golden/<codec>.ntcb holds a small file of real tokens and
// testdata/golden/<codec>.decoded.npy (float32, [N, T, D]) what this
// package's Reader decodes it to. Other readers (python/ntcb) must decode
// the .ntcb to the .npy: exactly for lossless codecs, within float16
// rounding otherwise. Run go test ./pkg/ntcb -run TestGoldenCodecs -update
// to rewrite them after a deliberate format change.
const goldenCodecsDir = "../../testdata/golden"

// goldenInput describes the tokens a codec's golden file is encoded from:
// n samples of the embedded real sample (internal/sample), cut to the CLS
// token plus the top-left gridH x gridW patches and the first dim channels.
type goldenInput struct {
	n, gridH, gridW, dim int
	chunkSamples         int
	opts                 codec.Options
}

// goldenInputFor returns the input of a codec's golden file. Fixed codecs
// get a tiny input (its dim 37 is one full int4 group of 32 plus an odd
// tail); the learned codec gets enough tokens to fit a model on, on a grid
// that 4x4 blocks do not divide.
func goldenInputFor(spec codec.Spec) goldenInput {
	if spec.Learned {
		return goldenInput{n: 8, gridH: 7, gridW: 6, dim: 64, chunkSamples: 3, opts: codec.Options{Ratio: 8}}
	}
	return goldenInput{n: 3, gridH: 4, gridW: 4, dim: 37, chunkSamples: 2}
}

// goldenTokens cuts the input out of the embedded real tokens. The last
// sample's second token is set to zero, so that a zero scale is covered.
func goldenTokens(t *testing.T, in goldenInput) *Memory {
	t.Helper()
	path, err := sample.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	all, shape, _, err := tensorio.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	n, T, D := shape[0], shape[1], shape[2]
	side := int(math.Sqrt(float64(T - 1)))
	if in.n > n || in.gridH > side || in.gridW > side || in.dim > D {
		t.Fatalf("golden input %+v does not fit the sample %v", in, shape)
	}
	tk := 1 + in.gridH*in.gridW
	m := &Memory{N: in.n, Tokens: tk, Dim: in.dim, KeyPrefix: "golden"}
	for s := range in.n {
		rows := []int{0}
		for y := range in.gridH {
			for x := range in.gridW {
				rows = append(rows, 1+y*side+x)
			}
		}
		for _, r := range rows {
			off := (s*T + r) * D
			m.Data = append(m.Data, all[off:off+in.dim]...)
		}
	}
	last := (in.n-1)*tk*in.dim + in.dim
	clear(m.Data[last : last+in.dim])
	return m
}

// writeGoldenCodec encodes the golden input of a codec and writes the file
// and its decoded values.
func writeGoldenCodec(t *testing.T, spec codec.Spec, ntcbPath, npyPath string) {
	t.Helper()
	writeGoldenCodecWith(t, spec, goldenInputFor(spec), nil, ntcbPath, npyPath)
}

// writeGoldenCodecWith writes a golden file of the input in, fitted in
// the task metric tm (nil for none).
func writeGoldenCodecWith(t *testing.T, spec codec.Spec, in goldenInput, tm *codec.TaskMetric, ntcbPath, npyPath string) {
	t.Helper()
	in.opts.TaskMetric = tm
	m := goldenTokens(t, in)
	opts := Options{
		Codec: spec.Name, CodecOptions: in.opts, ChunkBytes: in.chunkSamples * 2 * m.Tokens * m.Dim,
		GridH: in.gridH, GridW: in.gridW, Prefix: -1, Workers: 1, Tool: "ntc golden",
		Meta: map[string]string{"source": "internal/sample " + sample.Name},
	}
	if err := os.MkdirAll(filepath.Dir(ntcbPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := EncodeFile(context.Background(), ntcbPath, m, opts); err != nil {
		t.Fatal(err)
	}
	writeDecoded(t, ntcbPath, npyPath)
}

// writeDecoded writes what the golden file at ntcbPath decodes to as
// float32 to npyPath.
func writeDecoded(t *testing.T, ntcbPath, npyPath string) {
	t.Helper()
	got, r := decodeGolden(t, ntcbPath)
	l := r.Layout()
	w, err := tensorio.Create(npyPath, tensorio.Float32, r.Len(), l.Tokens, l.Dim)
	if err != nil {
		t.Fatal(err)
	}
	n := l.Values()
	for i := range r.Len() {
		if err := w.WriteSample(got[i*n : (i+1)*n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// decodeGolden verifies a golden file and decodes all its samples.
func decodeGolden(t *testing.T, path string) ([]float32, *File) {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/ntcb -run TestGoldenCodecs -update to create it)", err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	var all, buf []float32
	for i := range r.Len() {
		if buf, err = r.ReadSample(i, buf); err != nil {
			t.Fatal(err)
		}
		all = append(all, buf...)
	}
	return all, r
}

// TestGoldenCodecs checks that every registered codec has a golden file
// and that it still decodes, bit for bit, to the values stored next to it.
func TestGoldenCodecs(t *testing.T) {
	for _, name := range codec.Names() {
		t.Run(name, func(t *testing.T) {
			spec, err := codec.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			ntcbPath := filepath.Join(goldenCodecsDir, name+".ntcb")
			npyPath := filepath.Join(goldenCodecsDir, name+".decoded.npy")
			if *update {
				writeGoldenCodec(t, spec, ntcbPath, npyPath)
			}
			r := checkGolden(t, ntcbPath, npyPath)
			if r.Meta().Codec != name {
				t.Fatalf("%s holds codec %q", ntcbPath, r.Meta().Codec)
			}
			for _, p := range []string{ntcbPath, npyPath} {
				if fi, err := os.Stat(p); err != nil {
					t.Error(err)
				} else if fi.Size() > 100<<10 {
					t.Errorf("%s: %d bytes, want a file under 100 KiB", p, fi.Size())
				}
			}
		})
	}
}

// checkGolden decodes a golden file and compares it, bit for bit, with the
// values stored next to it. The learned codec's decoder fuses
// multiply-adds in its vector kernels (the same values at every x86 vector
// level, which is what the golden files are written with); below the
// AVX2 level its products round one by one, so there the comparison allows
// float32 rounding: 1e-5 of the sample's largest magnitude.
func checkGolden(t *testing.T, ntcbPath, npyPath string) *File {
	t.Helper()
	got, r := decodeGolden(t, ntcbPath)
	want, shape, dt, err := tensorio.ReadAll(npyPath)
	if err != nil {
		t.Fatal(err)
	}
	l := r.Layout()
	if dt != tensorio.Float32 || !slices.Equal(shape, []int{r.Len(), l.Tokens, l.Dim}) {
		t.Fatalf("%s: %v %v, want float32 [%d %d %d]", npyPath, dt, shape, r.Len(), l.Tokens, l.Dim)
	}
	spec, err := codec.Lookup(r.Meta().Codec)
	if err != nil {
		t.Fatal(err)
	}
	exact := !spec.Learned || cpufeat.Active() >= cpufeat.AVX2
	per := l.Tokens * l.Dim
	var tol float64
	for i := range got {
		if i%per == 0 && !exact {
			tol = 0
			for _, v := range want[i : i+per] {
				tol = max(tol, 1e-5*math.Abs(float64(v)))
			}
		}
		if exact && math.Float32bits(got[i]) != math.Float32bits(want[i]) ||
			!exact && !(math.Abs(float64(got[i])-float64(want[i])) <= tol) {
			t.Fatalf("%s decodes to %g at value %d, %s holds %g; if the format changed on purpose, run with -update",
				ntcbPath, got[i], i, npyPath, want[i])
		}
	}
	return r
}

// goldenModelVersion is the learned codec's model version in the golden
// files the encoder writes now (those outside compat).
const goldenModelVersion = 9

// TestGoldenCompat checks that files of earlier payload versions, kept in
// testdata/golden/compat, still decode to what they did.
func TestGoldenCompat(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenCodecsDir, "compat", "*.ntcb"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no compat golden files: %v", err)
	}
	for _, f := range files {
		checkGolden(t, f, strings.TrimSuffix(f, ".ntcb")+".decoded.npy")
	}
}

// ntcGoldenPaths returns the paths of the learned codec's golden file NAME
// in testdata/golden/SUB and of its decoded tokens.
func ntcGoldenPaths(sub, name string) (ntcbPath, npyPath string) {
	dir := filepath.Join(goldenCodecsDir, sub)
	return filepath.Join(dir, name+".ntcb"), filepath.Join(dir, name+".decoded.npy")
}

// ntcSpec returns the learned codec's spec.
func ntcSpec(t *testing.T) codec.Spec {
	t.Helper()
	spec, err := codec.Lookup("ntc")
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestGoldenLanes16 checks the learned codec's golden file of slices of 16
// rANS lanes (testdata/golden/lanes/ntc_lanes16.ntcb, the ntc golden input
// with the lanes forced: the encoder picks 16 only for slices of 32768
// symbols and more), which other readers must decode like the others.
func TestGoldenLanes16(t *testing.T) {
	ntcbPath, npyPath := ntcGoldenPaths("lanes", "ntc_lanes16")
	if *update {
		spec := ntcSpec(t)
		knobs.ANSLanes = 16
		writeGoldenCodec(t, spec, ntcbPath, npyPath)
		knobs.ANSLanes = 0
	}
	r := checkGolden(t, ntcbPath, npyPath)
	c := r.Container()
	for i := range c.NumChunks() {
		p, err := c.ReadChunk(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) < 9 || p[0] != 6 || p[8] != 16 {
			t.Fatalf("%s chunk %d: not a payload of version 6 with 16 lanes", ntcbPath, i)
		}
	}
}

// TestGoldenHighRate checks the learned codec's golden file at a high rate
// (testdata/golden/highrate/ntc_snr36.ntcb: the ntc golden input encoded
// for 36 dB), whose fine steps put classes in every kind of bucket: the
// trellis' below 28 (from 20 on, plain in models before version 8) and the
// plain ones from 28, which other readers must decode like the others.
func TestGoldenHighRate(t *testing.T) {
	ntcbPath, npyPath := ntcGoldenPaths("highrate", "ntc_snr36")
	if *update {
		spec := ntcSpec(t)
		in := goldenInputFor(spec)
		in.opts = codec.Options{Quality: "snr=36"}
		writeGoldenCodecWith(t, spec, in, nil, ntcbPath, npyPath)
	}
	checkGolden(t, ntcbPath, npyPath)
}

// compatCodec checks testdata/golden/compat/NAME.ntcb against its decoded
// file and returns its reader, its first chunk's codec and its first
// sample.
func compatCodec(t *testing.T, name string) (*File, codec.Codec, []float32) {
	t.Helper()
	r := checkGolden(t, filepath.Join(goldenCodecsDir, "compat", name+".ntcb"),
		filepath.Join(goldenCodecsDir, "compat", name+".decoded.npy"))
	c, err := r.codecFor(r.Container().Chunk(0).Codec)
	if err != nil {
		t.Fatal(err)
	}
	src, err := r.ReadSample(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, c, src
}

// TestOldModelDoesNotEncode checks that the model of an older file (ntc
// model version 4, testdata/golden/compat) decodes its file but refuses to
// encode with ErrOption, the error of a bad --model, instead of failing
// inside the encoder.
func TestOldModelDoesNotEncode(t *testing.T) {
	_, c, src := compatCodec(t, "ntc_payload_v5")
	if _, err := c.Encode(nil, src, 1); !errors.Is(err, codec.ErrOption) {
		t.Fatalf("encode with a version 4 model: %v, want ErrOption", err)
	}
}

// TestModelV5Encodes checks that the model of a file written before prefix
// means (ntc model version 5, testdata/golden/compat/ntc_model_v5) still
// encodes, as appending shards to a dataset with that model does, and
// that it still codes prefix rows as the tokens' own int8 rows: a decoded
// sample's prefix tokens, int8 rows already, come back exactly.
func TestModelV5Encodes(t *testing.T) {
	r, c, src := compatCodec(t, "ntc_model_v5")
	m, err := r.Container().ReadModel(r.Container().Chunk(0).Codec)
	if err != nil {
		t.Fatal(err)
	}
	if m[0] != 5 {
		t.Fatalf("compat/ntc_model_v5's model has version %d, want 5", m[0])
	}
	p, err := c.Encode(nil, src, 1)
	if err != nil {
		t.Fatalf("encode with a version 5 model: %v", err)
	}
	got := make([]float32, len(src))
	if err := c.Decode(got, p, 1); err != nil {
		t.Fatal(err)
	}
	dim := r.Meta().Layout.Dim
	for d := range dim * r.Meta().Layout.Prefix {
		if got[d] != src[d] {
			t.Fatalf("prefix value %d: %g, want %g", d, got[d], src[d])
		}
	}
}

// TestGoldenClassSteps checks the learned codec's golden file with class
// step codes (testdata/golden/classsteps/ntc_classsteps.ntcb: the ntc
// golden input fitted with gradient fields, so that its model carries them
// and their flag, and keeps int8 rows: a metric's basis is not
// orthonormal), which other readers must decode like the others. The files
// of model version 7, which always carried them, and of version 8 are in
// compat.
func TestGoldenClassSteps(t *testing.T) {
	ntcbPath, npyPath := ntcGoldenPaths("classsteps", "ntc_classsteps")
	if *update {
		spec := ntcSpec(t)
		in := goldenInputFor(spec)
		// Fields that vary slowly across the grid: the DC classes get finer
		// steps, the high frequencies coarser ones.
		const nf = 4
		tg := in.gridH * in.gridW
		f := make([]float32, nf*tg*in.dim)
		for i := range nf {
			for p := range tg {
				y, x := p/in.gridW, p%in.gridW
				for d := range in.dim {
					f[(i*tg+p)*in.dim+d] = float32(math.Sin(float64(d*(i+1))) + 0.05*float64(y+x))
				}
			}
		}
		tm, err := codec.FieldsTaskMetric(f, nf, tg, in.dim)
		if err != nil {
			t.Fatal(err)
		}
		writeGoldenCodecWith(t, spec, in, tm, ntcbPath, npyPath)
	}
	r := checkGolden(t, ntcbPath, npyPath)
	m, err := r.Container().ReadModel(r.Container().Chunk(0).Codec)
	if err != nil {
		t.Fatal(err)
	}
	if m[0] != goldenModelVersion || m[1] != 1 {
		t.Fatalf("%s: model version %d flags %d, want %d with class steps (1)", ntcbPath, m[0], m[1], goldenModelVersion)
	}
}
