package container

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// fuzzSeeds returns the golden fixture and a few small generated files.
func fuzzSeeds(f *testing.F) [][]byte {
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		f.Fatal(err)
	}
	goldenV1, err := os.ReadFile(goldenV1Path)
	if err != nil {
		f.Fatal(err)
	}
	var empty bytes.Buffer
	w, _ := NewWriter(&empty)
	if err := w.Close(nil); err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{golden, goldenV1, empty.Bytes()}
	for seed := range uint64(3) {
		b, _, _, _ := randomFile(f, rand.New(rand.NewPCG(seed, 1)), 1+int(seed)*2)
		seeds = append(seeds, b)
	}
	return seeds
}

// exercise runs every read path over r; it must not panic.
func exercise(t *testing.T, r *Reader) {
	_ = r.Verify()
	var buf []byte
	for i := range r.NumChunks() {
		p, err := r.ReadChunk(i, buf)
		if err == nil {
			if len(p) != r.Chunk(i).Length {
				t.Fatalf("chunk %d: %d bytes, index says %d", i, len(p), r.Chunk(i).Length)
			}
			buf = p
		}
	}
	for i := range r.NumSamples() {
		c, pos := r.SampleChunk(i)
		p, err := r.ReadSampleRange(c, pos, 1, buf)
		if err == nil {
			ci := r.Chunk(c)
			_, n := r.SamplePart(i)
			if want := ci.Head + n; ci.Split && len(p) != want || !ci.Split && len(p) != ci.Length {
				t.Fatalf("sample %d: range of %d bytes, chunk %+v part %d", i, len(p), ci, n)
			}
			buf = p
		}
	}
	for _, m := range r.Models() {
		if b, err := r.ReadModel(m.Codec); err == nil && len(b) != m.Length {
			t.Fatalf("model %d: %d bytes, index says %d", m.Codec, len(b), m.Length)
		}
	}
	for i := range r.NumSamples() {
		s := r.Sample(i)
		j, err := r.Lookup(s.Key)
		if err != nil || j != i {
			t.Fatalf("Lookup(Sample(%d).Key) = %d, %v", i, j, err)
		}
		c, pos := r.SampleChunk(i)
		if ci := r.Chunk(c); ci.First+pos != i || pos >= ci.Count {
			t.Fatalf("sample %d: chunk %d pos %d, chunk %+v", i, c, pos, ci)
		}
	}
	if _, err := r.Lookup("\x00no such key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup of a missing key: %v", err)
	}
}

// FuzzReader opens arbitrary bytes. It must never panic, and whatever it
// accepts must be readable throughout.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		exercise(t, r)
	})
}

// FuzzIndex puts arbitrary bytes in the index block of the golden file's
// layout, with a correct CRC, so that the fuzzer reaches the index parser
// and the tiling check instead of stopping at the checksum.
func FuzzIndex(f *testing.F) {
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(slices.Clone(parseLayout(f, golden).index))
	for _, s := range fuzzSeeds(f)[1:] {
		f.Add(slices.Clone(parseLayout(f, s).index))
	}
	f.Fuzz(func(t *testing.T, idx []byte) {
		if len(idx) < indexFixedSize {
			return
		}
		data := withIndex(t, golden, func(layout, []byte) []byte { return idx })
		r, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		exercise(t, r)
	})
}
