package container

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/container")

// The golden files: goldenPath is what the Writer writes (format version 2)
// and must stay byte-identical; goldenV1Path is a version 1 file written by
// the version 1 writer, kept to prove that old files still read.
const (
	goldenPath   = "../../testdata/container/golden_v2.ntcb"
	goldenV1Path = "../../testdata/container/golden_v1.ntcb"
)

// externalSHA is the hash the golden file records for its external model.
var externalSHA = sha256.Sum256([]byte("an external model"))

// writeGolden writes the golden fixture: two stored models and one
// external, three chunks (a model between them, so blocks of different
// types interleave; the first and last split into a head and per-sample
// parts), six samples, and JSON metadata. Its output must never change for
// format version 2.
func writeGolden(w io.Writer) error {
	zw, err := NewWriter(w)
	if err != nil {
		return err
	}
	seq := func(n int, start byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	steps := []func() error{
		func() error { return zw.WriteModel(7, []byte("model blob for codec 7")) },
		func() error {
			return zw.WriteSplitChunk(1, seq(48, 0), 6, []int{10, 12, 20},
				[]SampleInfo{{"img/000", 4, 3}, {"img/001", 4, 3}, {"img/002", 4, 3}})
		},
		func() error { return zw.WriteModel(9, nil) },
		func() error {
			return zw.WriteChunk(7, seq(20, 100), []SampleInfo{{"img/003", 5, 2}, {"img/004", 5, 2}})
		},
		func() error { return zw.WriteSplitChunk(9, nil, 0, []int{0}, []SampleInfo{{"img/005", 0, 0}}) },
		func() error { return zw.WriteModelRef(11, 1234, externalSHA) },
		func() error { return zw.Close([]byte(`{"created_by":"golden","note":"ntcb v2 fixture"}`)) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

func goldenBytes(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeGolden(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func open(t testing.TB, b []byte) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return r
}

func TestGolden(t *testing.T) {
	got := goldenBytes(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/container -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("writer output differs from %s at byte %d (got %d bytes, want %d); "+
			"the format changed: bump the version, or run with -update if that is intended", goldenPath, i, len(got), len(want))
	}

	r := open(t, want)
	if r.Version() != 2 || r.Size() != int64(len(want)) {
		t.Errorf("Version %d Size %d", r.Version(), r.Size())
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	wantModels := []ModelInfo{
		{Codec: 7, Offset: 16, Length: 22, SHA256: sha256.Sum256([]byte("model blob for codec 7"))},
		{Codec: 9, Offset: 110, Length: 0, SHA256: sha256.Sum256(nil)},
		{Codec: 11, Length: 1234, SHA256: externalSHA, External: true},
	}
	if got := r.Models(); !slices.Equal(got, wantModels) {
		t.Errorf("Models() = %v, want %v", got, wantModels)
	}
	wantChunks := []ChunkInfo{
		{Offset: 50, Length: 48, Codec: 1, First: 0, Count: 3, Split: true, Head: 6},
		{Offset: 122, Length: 20, Codec: 7, First: 3, Count: 2},
		{Offset: 154, Length: 0, Codec: 9, First: 5, Count: 1, Split: true},
	}
	checkGoldenChunks(t, r, wantChunks, `{"created_by":"golden","note":"ntcb v2 fixture"}`)
	if _, err := r.ReadModel(11); !errors.Is(err, ErrExternalModel) {
		t.Errorf("ReadModel(11) = %v, want ErrExternalModel", err)
	}
	for i, w := range [][2]int{{6, 10}, {16, 12}, {28, 20}} {
		if off, n := r.SamplePart(i); off != w[0] || n != w[1] {
			t.Errorf("SamplePart(%d) = %d, %d, want %d, %d", i, off, n, w[0], w[1])
		}
	}
	// Samples 1-2 of the split chunk: its head, then their parts.
	p, err := r.ReadSampleRange(0, 1, 2, nil)
	if want := append([]byte{0, 1, 2, 3, 4, 5}, seqBytes(32, 16)...); err != nil || !bytes.Equal(p, want) {
		t.Errorf("ReadSampleRange(0, 1, 2) = %v, %v, want %v", p, err, want)
	}
	// The chunk that is not split reads whole.
	if p, err := r.ReadSampleRange(1, 1, 1, nil); err != nil || !bytes.Equal(p, seqBytes(20, 100)) {
		t.Errorf("ReadSampleRange(1, 1, 1) = %v, %v", p, err)
	}
	if p, err := r.ReadSampleRange(2, 0, 1, nil); err != nil || len(p) != 0 {
		t.Errorf("ReadSampleRange(2, 0, 1) = %v, %v", p, err)
	}
}

// seqBytes returns n bytes counting up from start.
func seqBytes(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// checkGoldenChunks checks what the golden files of every version share:
// their chunks, samples, metadata and stored models.
func checkGoldenChunks(t *testing.T, r *Reader, wantChunks []ChunkInfo, meta string) {
	t.Helper()
	if r.NumChunks() != len(wantChunks) {
		t.Fatalf("NumChunks() = %d", r.NumChunks())
	}
	for i, c := range wantChunks {
		if got := r.Chunk(i); got.Offset != c.Offset || got.Length != c.Length || got.Codec != c.Codec ||
			got.First != c.First || got.Count != c.Count || got.Split != c.Split || got.Head != c.Head {
			t.Errorf("Chunk(%d) = %+v, want %+v", i, got, c)
		}
		if r.ChunkSplit(i) != c.Split {
			t.Errorf("ChunkSplit(%d) = %v", i, !c.Split)
		}
	}
	if r.NumSamples() != 6 {
		t.Fatalf("NumSamples() = %d", r.NumSamples())
	}
	if s := r.Sample(4); s != (SampleInfo{"img/004", 5, 2}) {
		t.Errorf("Sample(4) = %+v", s)
	}
	if c, p := r.SampleChunk(4); c != 1 || p != 1 {
		t.Errorf("SampleChunk(4) = %d, %d", c, p)
	}
	if string(r.Metadata()) != meta {
		t.Errorf("Metadata() = %q", r.Metadata())
	}
	m, err := r.ReadModel(7)
	if err != nil || string(m) != "model blob for codec 7" {
		t.Errorf("ReadModel(7) = %q, %v", m, err)
	}
	if m, err := r.ReadModel(9); err != nil || len(m) != 0 {
		t.Errorf("ReadModel(9) = %q, %v", m, err)
	}
	if p, err := r.ReadChunk(0, nil); err != nil || !bytes.Equal(p, seqBytes(48, 0)) {
		t.Errorf("ReadChunk(0) = %v, %v", p, err)
	}
}

// Version 1 files, written before chunks could be split and models
// referenced, keep reading.
func TestGoldenV1(t *testing.T) {
	b, err := os.ReadFile(goldenV1Path)
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, b)
	if r.Version() != 1 {
		t.Errorf("Version() = %d", r.Version())
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Models(), []ModelInfo{{Codec: 7, Offset: 16, Length: 22}, {Codec: 9, Offset: 110}}; !slices.Equal(got, want) {
		t.Errorf("Models() = %v, want %v", got, want)
	}
	checkGoldenChunks(t, r, []ChunkInfo{{50, 48, 1, 0, 3, false, 0, 0}, {122, 20, 7, 3, 2, false, 0, 0}, {154, 0, 9, 5, 1, false, 0, 0}},
		`{"created_by":"golden","note":"ntcb v1 fixture"}`)
	// A sample read of a version 1 chunk reads it whole.
	if p, err := r.ReadSampleRange(0, 2, 1, nil); err != nil || !bytes.Equal(p, seqBytes(48, 0)) {
		t.Errorf("ReadSampleRange(0, 2, 1) = %v, %v", p, err)
	}
	c := slices.Clone(b)
	for i := range c {
		c[i] ^= 0x24
		if err := verifyErr(c); err == nil {
			t.Errorf("version 1, byte %d ^ 0x24: accepted", i)
		}
		c[i] ^= 0x24
	}
}

// randKey returns a random UTF-8 key of 1 to 40 bytes, sometimes multibyte.
func randKey(rng *rand.Rand, i int) string {
	alphabet := []rune("abcdefghijklmnopqrstuvwxyz0123456789/_-.é日本")
	n := 1 + rng.IntN(12)
	rs := make([]rune, n)
	for j := range rs {
		rs[j] = alphabet[rng.IntN(len(alphabet))]
	}
	return fmt.Sprintf("%s#%d", string(rs), i)
}

type testChunk struct {
	codec   uint8
	payload []byte
	samples []SampleInfo
	head    int   // -1 when not split
	parts   []int // with head >= 0
}

// sampleRange returns what ReadSampleRange must return for samples
// [first, first+n) of the chunk.
func (c testChunk) sampleRange(first, n int) []byte {
	if c.head < 0 {
		return c.payload
	}
	at := c.head
	for _, p := range c.parts[:first] {
		at += p
	}
	end := at
	for _, p := range c.parts[first : first+n] {
		end += p
	}
	return append(slices.Clone(c.payload[:c.head]), c.payload[at:end]...)
}

// randomFile writes a random file and returns it with what was written.
func randomFile(t testing.TB, rng *rand.Rand, nChunks int) ([]byte, []testChunk, map[uint8][]byte, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	models := map[uint8][]byte{}
	var chunks []testChunk
	key := 0
	for range nChunks {
		if rng.IntN(4) == 0 {
			codec := uint8(rng.IntN(256))
			if _, ok := models[codec]; !ok {
				blob := make([]byte, rng.IntN(300))
				for i := range blob {
					blob[i] = byte(rng.Uint32())
				}
				if err := w.WriteModel(codec, blob); err != nil {
					t.Fatal(err)
				}
				models[codec] = blob
			}
		}
		if rng.IntN(8) == 0 {
			codec := uint8(rng.IntN(256))
			if _, ok := models[codec]; !ok {
				var sha [32]byte
				for i := range sha {
					sha[i] = byte(rng.Uint32())
				}
				if err := w.WriteModelRef(codec, rng.IntN(1000), sha); err != nil {
					t.Fatal(err)
				}
				models[codec] = nil // external: ReadModel refuses it
			}
		}
		c := testChunk{codec: uint8(rng.IntN(256)), payload: make([]byte, rng.IntN(2000)), head: -1}
		for i := range c.payload {
			c.payload[i] = byte(rng.Uint32())
		}
		for range 1 + rng.IntN(8) {
			c.samples = append(c.samples, SampleInfo{Key: randKey(rng, key), Tokens: rng.IntN(300), Dim: rng.IntN(2000)})
			key++
		}
		if rng.IntN(3) > 0 {
			// Split at random cut points: parts may be empty.
			cuts := []int{0, len(c.payload)}
			for range len(c.samples) {
				cuts = append(cuts, rng.IntN(len(c.payload)+1))
			}
			slices.Sort(cuts)
			c.head = cuts[1]
			for j := range c.samples {
				c.parts = append(c.parts, cuts[j+2]-cuts[j+1])
			}
			if err := w.WriteSplitChunk(c.codec, c.payload, c.head, c.parts, c.samples); err != nil {
				t.Fatal(err)
			}
		} else if err := w.WriteChunk(c.codec, c.payload, c.samples); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	meta := []byte(fmt.Sprintf(`{"chunks":%d}`, nChunks))
	if err := w.Close(meta); err != nil {
		t.Fatal(err)
	}
	if w.Offset() != int64(buf.Len()) {
		t.Fatalf("Offset() = %d, wrote %d", w.Offset(), buf.Len())
	}
	return buf.Bytes(), chunks, models, meta
}

func TestRoundTrip(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 42))
		b, chunks, models, meta := randomFile(t, rng, int(seed*5))
		r := open(t, b)
		if err := r.Verify(); err != nil {
			t.Fatalf("seed %d: Verify: %v", seed, err)
		}
		if !bytes.Equal(r.Metadata(), meta) {
			t.Errorf("seed %d: metadata %q, want %q", seed, r.Metadata(), meta)
		}
		if r.NumChunks() != len(chunks) || len(r.Models()) != len(models) {
			t.Fatalf("seed %d: %d chunks %d models, want %d %d", seed, r.NumChunks(), len(r.Models()), len(chunks), len(models))
		}
		for codec, blob := range models {
			got, err := r.ReadModel(codec)
			if blob == nil {
				if !errors.Is(err, ErrExternalModel) {
					t.Errorf("seed %d: ReadModel(%d) of an external model: %v", seed, codec, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, blob) {
				t.Errorf("seed %d: ReadModel(%d): %v", seed, codec, err)
			}
		}
		n := 0
		var buf []byte
		for i, c := range chunks {
			ci := r.Chunk(i)
			if ci.Codec != c.codec || ci.Length != len(c.payload) || ci.First != n || ci.Count != len(c.samples) {
				t.Errorf("seed %d: Chunk(%d) = %+v", seed, i, ci)
			}
			var err error
			buf, err = r.ReadChunk(i, buf)
			if err != nil || !bytes.Equal(buf, c.payload) {
				t.Fatalf("seed %d: ReadChunk(%d): %v", seed, i, err)
			}
			if ci.Split != (c.head >= 0) || ci.Split && ci.Head != c.head {
				t.Errorf("seed %d: chunk %d split %v head %d, want head %d", seed, i, ci.Split, ci.Head, c.head)
			}
			for range 4 {
				first := rng.IntN(len(c.samples))
				n := 1 + rng.IntN(len(c.samples)-first)
				buf, err = r.ReadSampleRange(i, first, n, buf)
				if want := c.sampleRange(first, n); err != nil || !bytes.Equal(buf, want) {
					t.Fatalf("seed %d: ReadSampleRange(%d, %d, %d) = %d bytes, %v, want %d", seed, i, first, n, len(buf), err, len(want))
				}
			}
			for j, s := range c.samples {
				if got := r.Sample(n); got != s {
					t.Errorf("seed %d: Sample(%d) = %+v, want %+v", seed, n, got, s)
				}
				if ch, pos := r.SampleChunk(n); ch != i || pos != j {
					t.Errorf("seed %d: SampleChunk(%d) = %d, %d, want %d, %d", seed, n, ch, pos, i, j)
				}
				if k, err := r.Lookup(s.Key); err != nil || k != n {
					t.Errorf("seed %d: Lookup(%q) = %d, %v, want %d", seed, s.Key, k, err, n)
				}
				n++
			}
		}
		if r.NumSamples() != n {
			t.Errorf("seed %d: NumSamples() = %d, want %d", seed, r.NumSamples(), n)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != minFileSize {
		t.Errorf("empty file is %d bytes, want minFileSize %d", buf.Len(), minFileSize)
	}
	r := open(t, buf.Bytes())
	if r.NumChunks() != 0 || r.NumSamples() != 0 || len(r.Models()) != 0 || r.Metadata() != nil {
		t.Errorf("empty file: %d chunks %d samples %d models metadata %q",
			r.NumChunks(), r.NumSamples(), len(r.Models()), r.Metadata())
	}
	if err := r.Verify(); err != nil {
		t.Error(err)
	}
	if _, err := r.Lookup("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup: %v", err)
	}
	if _, err := r.ReadModel(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadModel: %v", err)
	}
	if _, err := r.ReadChunk(0, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadChunk: %v", err)
	}
}

// Large blocks go through Verify's streaming path.
func TestVerifyLargeChunk(t *testing.T) {
	payload := make([]byte, 3*verifyBufSize+5)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	if err := w.WriteChunk(3, payload, []SampleInfo{{"a", 1, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if err := open(t, b).Verify(); err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{headerSize + 1, headerSize + blockHeaderSize + 2*verifyBufSize, headerSize + blockHeaderSize + len(payload) + 1} {
		c := slices.Clone(b)
		c[at] ^= 0x10
		r, err := NewReader(bytes.NewReader(c), int64(len(c)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify(); !errors.Is(err, ErrChecksum) {
			t.Errorf("flip at %d: Verify() = %v, want ErrChecksum", at, err)
		}
	}

	// A split chunk's head and part CRCs are checked across the pieces.
	buf.Reset()
	w, _ = NewWriter(&buf)
	parts := []int{verifyBufSize - 3, 0, 5, len(payload) - verifyBufSize - 7}
	samples := []SampleInfo{{"a", 1, 1}, {"b", 1, 1}, {"c", 1, 1}, {"d", 1, 1}}
	if err := w.WriteSplitChunk(3, payload, 5, parts, samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	b = buf.Bytes()
	if err := open(t, b).Verify(); err != nil {
		t.Fatal(err)
	}
	for j := range samples {
		d := withIndex(t, b, func(l layout, p []byte) []byte {
			p[l.samples[j]+sampleEntryPartCRCAt] ^= 8
			return p
		})
		if err := open(t, d).Verify(); !errors.Is(err, ErrChecksum) {
			t.Errorf("part %d crc damaged: Verify() = %v, want ErrChecksum", j, err)
		}
	}
}

func TestWriterRejects(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	s := func(keys ...string) []SampleInfo {
		var out []SampleInfo
		for _, k := range keys {
			out = append(out, SampleInfo{Key: k, Tokens: 2, Dim: 3})
		}
		return out
	}
	if err := w.WriteChunk(1, []byte("x"), s("a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteModel(1, []byte("m")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"empty sample list", func() error { return w.WriteChunk(1, nil, nil) }, ErrInvalid},
		{"duplicate key across chunks", func() error { return w.WriteChunk(1, nil, s("c", "a")) }, ErrDuplicateKey},
		{"duplicate key in chunk", func() error { return w.WriteChunk(1, nil, s("d", "d")) }, ErrDuplicateKey},
		{"empty key", func() error { return w.WriteChunk(1, nil, s("")) }, ErrInvalid},
		{"key not UTF-8", func() error { return w.WriteChunk(1, nil, s("\xff")) }, ErrInvalid},
		{"key too long", func() error { return w.WriteChunk(1, nil, s(string(make([]byte, MaxKeyLen+1)))) }, ErrTooLarge},
		{"negative shape", func() error { return w.WriteChunk(1, nil, []SampleInfo{{"e", -1, 2}}) }, ErrInvalid},
		{"shape too large", func() error { return w.WriteChunk(1, nil, []SampleInfo{{"e", 1, MaxShape + 1}}) }, ErrInvalid},
		{"second model for a codec", func() error { return w.WriteModel(1, nil) }, ErrDuplicateKey},
		{"metadata too large", func() error { return w.Close(make([]byte, MaxMetadataSize+1)) }, ErrTooLarge},
	}
	for _, tc := range tests {
		off := w.Offset()
		if err := tc.call(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if w.Offset() != off {
			t.Errorf("%s: a refused call wrote %d bytes", tc.name, w.Offset()-off)
		}
	}
	// Refused calls leave the Writer usable, and refused keys reusable.
	if err := w.WriteChunk(2, []byte("y"), s("c", "d", "e")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error { return w.Close(nil) },
		func() error { return w.WriteModel(3, nil) },
		func() error { return w.WriteChunk(3, nil, s("z")) },
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	}
	r := open(t, buf.Bytes())
	if r.NumSamples() != 5 || r.NumChunks() != 2 {
		t.Errorf("%d samples %d chunks", r.NumSamples(), r.NumChunks())
	}
	if err := r.Verify(); err != nil {
		t.Error(err)
	}
}

type failWriter struct{ left int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(b []byte) (int, error) {
	if len(b) > f.left {
		n := f.left
		f.left = 0
		return n, errDiskFull
	}
	f.left -= len(b)
	return len(b), nil
}

func TestWriterStickyError(t *testing.T) {
	w, err := NewWriter(&failWriter{left: 40})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteChunk(1, make([]byte, 100), []SampleInfo{{"a", 1, 1}}); !errors.Is(err, errDiskFull) {
		t.Fatalf("got %v", err)
	}
	if err := w.Close(nil); !errors.Is(err, errDiskFull) {
		t.Errorf("Close after failure: %v", err)
	}
	if _, err := NewWriter(&failWriter{left: 3}); !errors.Is(err, errDiskFull) {
		t.Errorf("NewWriter: %v", err)
	}
}

// layout locates the parts of a valid file, for tests that edit it.
type layout struct {
	indexOff int
	index    []byte // index payload (a slice of the file)
	models   int    // model count
	chunks   int    // chunk count
	samples  []int  // offset of each sample entry in index
	sz       entrySizes
}

func parseLayout(t testing.TB, b []byte) layout {
	t.Helper()
	v, err := parseVersion(le.Uint16(b[headerVersionAt:]))
	if err != nil {
		t.Fatal(err)
	}
	f := b[len(b)-footerSize:]
	l := layout{indexOff: int(le.Uint64(f[footerIndexOffsetAt:])), sz: v.sizes()}
	n := int(le.Uint32(f[footerIndexLengthAt:]))
	l.index = b[l.indexOff+blockHeaderSize : l.indexOff+blockHeaderSize+n]
	l.models = int(le.Uint32(l.index[indexModelCountAt:]))
	l.chunks = int(le.Uint32(l.index[indexChunkCountAt:]))
	p := indexFixedSize + l.models*l.sz.model + l.chunks*l.sz.chunk
	for range le.Uint32(l.index[indexSampleCountAt:]) {
		l.samples = append(l.samples, p)
		p += l.sz.sampleFixed + int(le.Uint16(l.index[p+l.sz.keyLenAt:]))
	}
	return l
}

func (l layout) model(i int) int { return indexFixedSize + i*l.sz.model }
func (l layout) chunk(i int) int { return indexFixedSize + l.models*l.sz.model + i*l.sz.chunk }

// withIndex rebuilds file b with its index payload replaced by edit's
// result, with correct index and footer CRCs.
func withIndex(t testing.TB, b []byte, edit func(l layout, idx []byte) []byte) []byte {
	t.Helper()
	l := parseLayout(t, b)
	idx := edit(l, slices.Clone(l.index))
	out := slices.Clone(b[:l.indexOff])
	var h [blockHeaderSize]byte
	putBlockHeader(h[:], blockIndex, 0, uint32(len(idx)))
	out = append(out, h[:]...)
	out = append(out, idx...)
	out = le.AppendUint32(out, crc32.Update(crc32.Update(0, castagnoli, h[:]), castagnoli, idx))
	f := slices.Clone(b[len(b)-footerSize:])
	le.PutUint32(f[footerIndexLengthAt:], uint32(len(idx)))
	fixFooter(f)
	return append(out, f...)
}

// fixFooter recomputes the CRC of a footer.
func fixFooter(f []byte) {
	le.PutUint32(f[footerCRCAt:], crc32.Checksum(f[:footerCRCAt], castagnoli))
}

// fixBlock recomputes the CRC of the block of payload length n at off.
func fixBlock(b []byte, off, n int) {
	end := off + blockHeaderSize + n
	le.PutUint32(b[end:], crc32.Checksum(b[off:end], castagnoli))
}

func TestMalformed(t *testing.T) {
	golden := goldenBytes(t)
	gl := parseLayout(t, golden)
	edit := func(f func(b []byte)) func() []byte {
		return func() []byte {
			b := slices.Clone(golden)
			f(b)
			return b
		}
	}
	idx := func(f func(l layout, p []byte) []byte) func() []byte {
		return func() []byte { return withIndex(t, golden, f) }
	}
	footer := func(f func(ft []byte)) func() []byte {
		return edit(func(b []byte) {
			ft := b[len(b)-footerSize:]
			f(ft)
			fixFooter(ft)
		})
	}
	put32 := func(at int, v uint32) func(l layout, p []byte) []byte {
		return func(l layout, p []byte) []byte { le.PutUint32(p[at:], v); return p }
	}
	c0Off := int(le.Uint64(gl.index[gl.chunk(0)+chunkEntryOffsetAt:]))

	tests := []struct {
		name   string
		file   func() []byte
		want   error
		verify bool // detected by Verify, not NewReader
	}{
		{"empty", func() []byte { return nil }, ErrTruncated, false},
		{"text file", func() []byte { return []byte("hello, world\n") }, ErrBadMagic, false},
		{"bad magic", edit(func(b []byte) { b[1] = 'M' }), ErrBadMagic, false},
		{"CRLF mangled", func() []byte { return bytes.ReplaceAll(golden, []byte("\r\n"), []byte("\n")) }, ErrBadMagic, false},
		{"high bit stripped", edit(func(b []byte) { b[0] &^= 0x80 }), ErrBadMagic, false},
		{"magic only", func() []byte { return []byte(Magic) }, ErrTruncated, false},
		{"shorter than minimum", func() []byte { return golden[:minFileSize-1] }, ErrTruncated, false},
		{"version 3", edit(func(b []byte) {
			le.PutUint16(b[headerVersionAt:], 3)
			ft := b[len(b)-footerSize:]
			le.PutUint16(ft[footerVersionAt:], 3)
			fixFooter(ft)
		}), ErrUnsupportedVersion, false},
		{"version 0", edit(func(b []byte) { le.PutUint16(b[headerVersionAt:], 0) }), ErrUnsupportedVersion, false},
		{"nonzero flags", edit(func(b []byte) { le.PutUint16(b[headerFlagsAt:], 1) }), ErrCorrupt, false},
		{"nonzero header reserved", edit(func(b []byte) { b[headerReservedAt+3] = 1 }), ErrCorrupt, false},
		{"footer CRC", edit(func(b []byte) { b[len(b)-footerSize] ^= 1 }), ErrChecksum, false},
		{"footer magic", edit(func(b []byte) { b[len(b)-1] ^= 1 }), ErrTruncated, false},
		{"footer version differs", footer(func(f []byte) { le.PutUint16(f[footerVersionAt:], 1) }), ErrCorrupt, false},
		{"footer reserved", footer(func(f []byte) { le.PutUint16(f[footerReservedAt:], 1) }), ErrCorrupt, false},
		{"index offset beyond file", footer(func(f []byte) { le.PutUint64(f[footerIndexOffsetAt:], 1<<62) }), ErrTruncated, false},
		{"index length beyond file", footer(func(f []byte) { le.PutUint32(f[footerIndexLengthAt:], 1<<20) }), ErrTruncated, false},
		{"index length too large", footer(func(f []byte) { le.PutUint32(f[footerIndexLengthAt:], MaxIndexSize+1) }), ErrTooLarge, false},
		{"index length too small", footer(func(f []byte) { le.PutUint32(f[footerIndexLengthAt:], 4) }), ErrCorrupt, false},
		{"index not before footer", footer(func(f []byte) {
			le.PutUint64(f[footerIndexOffsetAt:], le.Uint64(f[footerIndexOffsetAt:])-1)
		}), ErrCorrupt, false},
		{"index CRC", edit(func(b []byte) { b[gl.indexOff+blockHeaderSize+3] ^= 4 }), ErrChecksum, false},
		{"index block type", edit(func(b []byte) {
			b[gl.indexOff+blockTypeAt] = blockChunk
			fixBlock(b, gl.indexOff, len(gl.index))
		}), ErrCorrupt, false},
		{"metadata CRC", edit(func(b []byte) {
			mo := int(le.Uint64(gl.index[indexMetaOffsetAt:]))
			b[mo+blockHeaderSize] ^= 1
		}), ErrChecksum, false},
		{"index reserved", idx(put32(indexReserved2At, 1)), ErrCorrupt, false},
		{"too many samples", idx(put32(indexSampleCountAt, MaxSamples+1)), ErrTooLarge, false},
		{"too many chunks", idx(put32(indexChunkCountAt, MaxChunks+1)), ErrTooLarge, false},
		{"too many models", idx(put32(indexModelCountAt, MaxModels+1)), ErrTooLarge, false},
		{"counts exceed index size", idx(put32(indexSampleCountAt, 1000)), ErrCorrupt, false},
		{"metadata too large", idx(put32(indexMetaLengthAt, MaxMetadataSize+1)), ErrTooLarge, false},
		{"metadata offset beyond file", idx(func(l layout, p []byte) []byte {
			le.PutUint64(p[indexMetaOffsetAt:], 1<<40)
			return p
		}), ErrTruncated, false},
		{"chunk offset beyond file", idx(func(l layout, p []byte) []byte {
			le.PutUint64(p[l.chunk(1)+chunkEntryOffsetAt:], 1<<40)
			return p
		}), ErrTruncated, false},
		{"chunk end beyond file", idx(put32(gl.chunk(1)+chunkEntryLengthAt, 1<<20)), ErrTruncated, false},
		{"chunk too large", idx(put32(gl.chunk(2)+chunkEntryLengthAt, MaxChunkSize+1)), ErrTooLarge, false},
		{"model too large", idx(put32(gl.model(0)+modelEntryLengthAt, MaxModelSize+1)), ErrTooLarge, false},
		{"gap after chunk", idx(put32(gl.chunk(0)+chunkEntryLengthAt, 47)), ErrCorrupt, false},
		{"overlapping chunks", idx(put32(gl.chunk(0)+chunkEntryLengthAt, 49)), ErrCorrupt, false},
		{"chunk moved", idx(func(l layout, p []byte) []byte {
			le.PutUint64(p[l.chunk(0)+chunkEntryOffsetAt:], uint64(c0Off+1))
			return p
		}), ErrCorrupt, false},
		{"model at chunk offset", idx(func(l layout, p []byte) []byte {
			le.PutUint64(p[l.model(1)+modelEntryOffsetAt:], uint64(c0Off))
			return p
		}), ErrCorrupt, false},
		{"chunk missing from index", idx(func(l layout, p []byte) []byte {
			// Drop chunk 2 and its sample: the index is self-consistent
			// but chunk 2's bytes are not covered.
			le.PutUint32(p[indexChunkCountAt:], 2)
			le.PutUint32(p[indexSampleCountAt:], 5)
			q := slices.Delete(p, l.chunk(2), l.chunk(3))
			return q[:len(q)-(len(p)-l.samples[5])]
		}), ErrCorrupt, false},
		{"chunk reserved", idx(func(l layout, p []byte) []byte { p[l.chunk(1)+chunkEntryReservedAt+2] = 1; return p }), ErrCorrupt, false},
		{"model reserved", idx(func(l layout, p []byte) []byte { p[l.model(0)+modelEntryReservedAt] = 1; return p }), ErrCorrupt, false},
		{"duplicate model codec", idx(func(l layout, p []byte) []byte { p[l.model(1)+modelEntryCodecAt] = 7; return p }), ErrDuplicateKey, false},
		{"chunk first wrong", idx(put32(gl.chunk(1)+chunkEntryFirstAt, 2)), ErrCorrupt, false},
		{"chunk count zero", idx(put32(gl.chunk(2)+chunkEntryCountAt, 0)), ErrCorrupt, false},
		{"chunk counts exceed samples", idx(put32(gl.chunk(2)+chunkEntryCountAt, 2)), ErrCorrupt, false},
		{"chunk counts short of samples", idx(put32(gl.chunk(1)+chunkEntryCountAt, 1)), ErrCorrupt, false},
		{"key too long", idx(func(l layout, p []byte) []byte {
			le.PutUint16(p[l.samples[2]+sampleEntryKeyLenAtV2:], MaxKeyLen+1)
			return p
		}), ErrTooLarge, false},
		{"key empty", idx(func(l layout, p []byte) []byte {
			s := l.samples[5]
			le.PutUint16(p[s+sampleEntryKeyLenAtV2:], 0)
			return p[:s+sampleEntryFixedSizeV2]
		}), ErrCorrupt, false},
		{"key cut short", idx(func(l layout, p []byte) []byte { return p[:len(p)-1] }), ErrCorrupt, false},
		{"key not UTF-8", idx(func(l layout, p []byte) []byte { p[l.samples[1]+sampleEntryKeyAtV2] = 0xff; return p }), ErrCorrupt, false},
		{"duplicate key in index", idx(func(l layout, p []byte) []byte {
			copy(p[l.samples[3]+sampleEntryKeyAtV2:], "img/001")
			return p
		}), ErrDuplicateKey, false},
		{"sample position inconsistent", idx(put32(gl.samples[1]+sampleEntryPosAt, 2)), ErrCorrupt, false},
		{"sample chunk inconsistent", idx(put32(gl.samples[2]+sampleEntryChunkAt, 1)), ErrCorrupt, false},
		{"sample shape too large", idx(put32(gl.samples[0]+sampleEntryDimAt, MaxShape+1)), ErrCorrupt, false},
		{"trailing index bytes", idx(func(l layout, p []byte) []byte { return append(p, 0) }), ErrCorrupt, false},
		{"trailing file bytes", func() []byte { return append(slices.Clone(golden), 0) }, ErrTruncated, false},
		{"chunk CRC", edit(func(b []byte) { b[c0Off+blockHeaderSize+10] ^= 0x20 }), ErrChecksum, true},
		{"chunk stored CRC", edit(func(b []byte) { b[c0Off+blockHeaderSize+48] ^= 1 }), ErrChecksum, true},
		{"chunk header codec", edit(func(b []byte) {
			b[c0Off+blockCodecAt] = 2
			fixBlock(b, c0Off, 48)
		}), ErrCorrupt, true},
		{"chunk header reserved", edit(func(b []byte) {
			b[c0Off+blockReservedAt] = 1
			fixBlock(b, c0Off, 48)
		}), ErrCorrupt, true},
		{"index codec differs from chunk", idx(func(l layout, p []byte) []byte { p[l.chunk(1)+chunkEntryCodecAt] = 8; return p }), ErrCorrupt, true},
		{"model CRC", edit(func(b []byte) { b[headerSize+blockHeaderSize] ^= 0x80 }), ErrChecksum, true},
		// Format version 2: split chunks and model hashes.
		{"chunk flag unknown", idx(func(l layout, p []byte) []byte { p[l.chunk(0)+chunkEntryFlagsAt] |= 2; return p }), ErrCorrupt, false},
		{"chunk reserved v2", idx(func(l layout, p []byte) []byte { p[l.chunk(0)+chunkEntryReservedAtV2+1] = 1; return p }), ErrCorrupt, false},
		{"head beyond payload", idx(put32(gl.chunk(0)+chunkEntryHeadLenAt, 49)), ErrCorrupt, false},
		{"parts short of payload", idx(put32(gl.samples[2]+sampleEntryPartLenAt, 19)), ErrCorrupt, false},
		{"parts beyond payload", idx(put32(gl.samples[1]+sampleEntryPartLenAt, 13)), ErrCorrupt, false},
		{"head of unsplit chunk", idx(put32(gl.chunk(1)+chunkEntryHeadLenAt, 1)), ErrCorrupt, false},
		{"part of unsplit chunk", idx(put32(gl.samples[3]+sampleEntryPartLenAt, 1)), ErrCorrupt, false},
		{"part crc of unsplit chunk", idx(put32(gl.samples[4]+sampleEntryPartCRCAt, 1)), ErrCorrupt, false},
		{"split flag cleared", idx(func(l layout, p []byte) []byte { p[l.chunk(0)+chunkEntryFlagsAt] = 0; return p }), ErrCorrupt, false},
		{"model flag unknown", idx(func(l layout, p []byte) []byte { p[l.model(0)+modelEntryFlagsAt] |= 2; return p }), ErrCorrupt, false},
		{"model reserved v2", idx(func(l layout, p []byte) []byte { p[l.model(1)+modelEntryReservedAtV2] = 1; return p }), ErrCorrupt, false},
		{"external model with offset", idx(func(l layout, p []byte) []byte {
			le.PutUint64(p[l.model(2)+modelEntryOffsetAt:], 16)
			return p
		}), ErrCorrupt, false},
		{"stored model marked external", idx(func(l layout, p []byte) []byte { p[l.model(0)+modelEntryFlagsAt] = 1; return p }), ErrCorrupt, false},
		{"head crc", idx(func(l layout, p []byte) []byte { p[l.chunk(0)+chunkEntryHeadCRCAt] ^= 4; return p }), ErrChecksum, true},
		{"part crc", idx(func(l layout, p []byte) []byte { p[l.samples[1]+sampleEntryPartCRCAt+2] ^= 1; return p }), ErrChecksum, true},
		{"empty part crc", idx(func(l layout, p []byte) []byte { p[l.samples[5]+sampleEntryPartCRCAt] ^= 1; return p }), ErrChecksum, true},
		{"model hash", idx(func(l layout, p []byte) []byte { p[l.model(0)+modelEntryHashAt+31] ^= 1; return p }), ErrChecksum, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.file()
			r, err := NewReader(bytes.NewReader(b), int64(len(b)))
			if !tc.verify {
				t.Log(err)
				if !errors.Is(err, tc.want) {
					t.Fatalf("NewReader: %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewReader: %v, want success (Verify catches this)", err)
			}
			err = r.Verify()
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			// The on-demand reads see the same damage.
			var first error
			for i := range r.NumChunks() {
				if _, err := r.ReadChunk(i, nil); err != nil && first == nil {
					first = err
				}
			}
			for i := range r.NumSamples() {
				c, pos := r.SampleChunk(i)
				if _, err := r.ReadSampleRange(c, pos, 1, nil); err != nil && first == nil {
					first = err
				}
			}
			for _, m := range r.Models() {
				if _, err := r.ReadModel(m.Codec); err != nil && !m.External && first == nil {
					first = err
				}
			}
			if !errors.Is(first, tc.want) {
				t.Fatalf("ReadChunk/ReadSampleRange/ReadModel: %v, want %v", first, tc.want)
			}
		})
	}
}

// verifyErr opens b and, if that succeeds, verifies it.
func verifyErr(b []byte) error {
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	return r.Verify()
}

func TestEveryByteFlipDetected(t *testing.T) {
	golden := goldenBytes(t)
	c := slices.Clone(golden)
	for i := range c {
		for _, x := range []byte{0x01, 0x80, 0xff, 0x5a, 0x24} {
			c[i] ^= x
			if err := verifyErr(c); err == nil {
				t.Errorf("byte %d ^ %#02x: accepted", i, x)
			}
			c[i] ^= x
		}
	}
}

func TestEveryTruncationDetected(t *testing.T) {
	golden := goldenBytes(t)
	for n := range len(golden) {
		if err := verifyErr(golden[:n]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	// A claimed size larger than the data is a truncated file too.
	if _, err := NewReader(bytes.NewReader(golden), int64(len(golden))+10); !errors.Is(err, ErrTruncated) {
		t.Errorf("size too large: %v", err)
	}
}

// countingReaderAt records every ReadAt.
type countingReaderAt struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads [][2]int64 // offset, length
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.reads = append(c.reads, [2]int64{off, int64(len(p))})
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func TestRandomAccessReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	b, chunks, _, meta := randomFile(t, rng, 20)
	cr := &countingReaderAt{r: bytes.NewReader(b)}
	r, err := NewReader(cr, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	l := parseLayout(t, b)
	metaOff := int64(le.Uint64(l.index[indexMetaOffsetAt:]))
	want := [][2]int64{
		{0, headerSize},
		{int64(len(b)) - footerSize, footerSize},
		{int64(l.indexOff), int64(blockOverhead + len(l.index))},
		{metaOff, int64(blockOverhead + len(meta))},
	}
	if !slices.Equal(cr.reads, want) {
		t.Errorf("NewReader reads %v, want %v", cr.reads, want)
	}
	var total int64
	for _, rd := range cr.reads {
		total += rd[1]
	}
	if total >= int64(len(b))/4 {
		t.Errorf("NewReader read %d of %d bytes", total, len(b))
	}
	for _, i := range []int{13, 0, 19, 5} {
		cr.reads = nil
		p, err := r.ReadChunk(i, nil)
		if err != nil || !bytes.Equal(p, chunks[i].payload) {
			t.Fatalf("ReadChunk(%d): %v", i, err)
		}
		c := r.Chunk(i)
		if want := [][2]int64{{c.Offset, int64(blockOverhead + c.Length)}}; !slices.Equal(cr.reads, want) {
			t.Errorf("ReadChunk(%d) reads %v, want %v", i, cr.reads, want)
		}
	}
	// A sample of a split chunk costs its chunk's head and its own part:
	// one read when it is the first with bytes, two otherwise.
	split := 0
	for i, tc := range chunks {
		if tc.head < 0 {
			continue
		}
		c := r.Chunk(i)
		for j := range tc.samples {
			cr.reads = nil
			p, err := r.ReadSampleRange(i, j, 1, nil)
			if err != nil || !bytes.Equal(p, tc.sampleRange(j, 1)) {
				t.Fatalf("ReadSampleRange(%d, %d, 1): %v", i, j, err)
			}
			off, n := r.SamplePart(c.First + j)
			want := [][2]int64{{c.Offset, int64(blockHeaderSize + c.Head)}, {c.Offset + blockHeaderSize + int64(off), int64(n)}}
			if off == c.Head {
				want = [][2]int64{{c.Offset, int64(blockHeaderSize + c.Head + n)}}
			}
			if !slices.Equal(cr.reads, want) {
				t.Errorf("ReadSampleRange(%d, %d, 1) reads %v, want %v", i, j, cr.reads, want)
			}
			split++
		}
	}
	if split < 10 {
		t.Fatalf("only %d samples in split chunks", split)
	}
}

// A damaged byte in a split chunk's payload fails the reads of the samples
// that need it, and no other.
func TestSplitChunkDamageIsLocal(t *testing.T) {
	golden := goldenBytes(t)
	r := open(t, golden)
	c := r.Chunk(0)
	for at := range c.Length {
		b := slices.Clone(golden)
		b[int(c.Offset)+blockHeaderSize+at] ^= 0x40
		d := open(t, b)
		for j := range c.Count {
			off, n := d.SamplePart(j)
			_, err := d.ReadSampleRange(0, j, 1, nil)
			needed := at < c.Head || at >= off && at < off+n
			if needed != errors.Is(err, ErrChecksum) {
				t.Errorf("payload byte %d damaged: ReadSampleRange(0, %d, 1) = %v", at, j, err)
			}
		}
		if err := d.Verify(); !errors.Is(err, ErrChecksum) {
			t.Errorf("payload byte %d damaged: Verify() = %v", at, err)
		}
	}
}

func TestReadChunkReusesBuffer(t *testing.T) {
	b := goldenBytes(t)
	r := open(t, b)
	buf := make([]byte, 0, 100)
	p, err := r.ReadChunk(0, buf)
	if err != nil {
		t.Fatal(err)
	}
	if &p[:1][0] != &buf[:1][0] {
		t.Error("ReadChunk did not use buf's storage")
	}
	q, err := r.ReadChunk(1, p)
	if err != nil {
		t.Fatal(err)
	}
	if &q[:1][0] != &buf[:1][0] || cap(q) != cap(buf) {
		t.Error("passing the returned slice back did not reuse its storage")
	}
	small := make([]byte, 4)
	p, err = r.ReadChunk(0, small)
	if err != nil || len(p) != 48 || &p[0] == &small[0] {
		t.Errorf("small buffer: len %d, %v", len(p), err)
	}
	if _, err := r.ReadChunk(-1, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadChunk(-1): %v", err)
	}
}

func TestReaderErrorsFromReaderAt(t *testing.T) {
	b := goldenBytes(t)
	if _, err := NewReader(errReaderAt{}, int64(len(b))); !errors.Is(err, errIO) {
		t.Fatalf("NewReader: %v, want the ReaderAt's error", err)
	}
	r := open(t, b)
	r.r = errReaderAt{}
	if _, err := r.ReadChunk(0, nil); !errors.Is(err, errIO) {
		t.Errorf("ReadChunk: %v", err)
	}
	if err := r.Verify(); !errors.Is(err, errIO) {
		t.Errorf("Verify: %v", err)
	}
}

var errIO = errors.New("i/o error")

type errReaderAt struct{}

func (errReaderAt) ReadAt(p []byte, off int64) (int, error) { return 0, errIO }

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.ntcb")
	if err := os.WriteFile(path, goldenBytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(); err != nil {
		t.Error(err)
	}
	if f.NumSamples() != 6 {
		t.Errorf("NumSamples() = %d", f.NumSamples())
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	bad := filepath.Join(dir, "bad.ntcb")
	if err := os.WriteFile(bad, []byte("not a container, just some text"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(bad)
	if !errors.Is(err, ErrBadMagic) || !bytes.Contains([]byte(err.Error()), []byte(bad)) {
		t.Errorf("Open(bad) = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("Open(dir) succeeded")
	}
}
