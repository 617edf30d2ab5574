package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ntc-project/ntc/internal/testhttp"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// tokens returns n samples of t x d smooth random values.
func tokens(seed uint64, n, t, d int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n*t*d)
	for i := range v {
		v[i] = float32(math.Sin(float64(i%d)*0.3+float64(i/d)*0.01) + 0.3*r.NormFloat64())
	}
	return v
}

func memory(seed uint64, n int, prefix string) *ntcb.Memory {
	return &ntcb.Memory{Data: tokens(seed, n, 17, 8), N: n, Tokens: 17, Dim: 8, KeyPrefix: prefix}
}

func encodeTest(t *testing.T, dir string, src ntcb.Source, o EncodeOptions) *Result {
	t.Helper()
	o.Prefix = -1
	res, err := Encode(context.Background(), dir, src, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// decodeAll reads a single-file encode of the same samples with the same
// options, for comparison.
func singleFile(t *testing.T, src ntcb.Source, o ntcb.Options) *ntcb.File {
	t.Helper()
	o.Prefix = -1
	path := filepath.Join(t.TempDir(), "one.ntcb")
	if _, err := ntcb.EncodeFile(context.Background(), path, src, o); err != nil {
		t.Fatal(err)
	}
	f, err := ntcb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestEncodeRead(t *testing.T) {
	for _, c := range []string{"int8", "fp16", "ntc"} {
		t.Run(c, func(t *testing.T) {
			dir := t.TempDir()
			src := memory(1, 10, "a")
			res := encodeTest(t, dir, src, EncodeOptions{Options: ntcb.Options{Codec: c, ChunkBytes: 2 * 17 * 8 * 2}, ShardSamples: 3})
			if res.Shards != 4 || res.Sizes.Shards != 4 || res.Sizes.Samples != 10 || res.Codec != c {
				t.Fatalf("result %+v", res)
			}
			r, err := Open(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Len() != 10 || len(r.Index().Shards) != 4 || r.Index().Shards[3].Samples != 1 {
				t.Fatalf("index %+v", r.Index())
			}
			for i := range 10 {
				if k := r.Key(i); k != fmt.Sprintf("a#%d", i) {
					t.Fatalf("key %d = %q", i, k)
				}
				if j, err := r.Lookup(r.Key(i)); err != nil || j != i {
					t.Fatalf("Lookup(%q) = %d, %v", r.Key(i), j, err)
				}
			}
			if _, err := r.Lookup("nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Lookup(nope): %v", err)
			}
			// Fixed codecs decode as a single file of the same samples does;
			// the learned codec's model is fitted on all samples either way.
			want := singleFile(t, src, ntcb.Options{Codec: c, Model: modelOf(t, dir, r)})
			got, err := r.ReadSamples([]int{9, 0, 4, 4, 2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 17 * 8
			for k, i := range []int{9, 0, 4, 4, 2} {
				w, err := want.ReadSample(i, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !equal(got[k*n:(k+1)*n], w) {
					t.Fatalf("sample %d differs from the single file's", i)
				}
			}
			rep, err := r.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Shards != 4 || rep.Samples != 10 {
				t.Fatalf("verify report %+v", rep)
			}
			wantModels := 0
			if c == "ntc" {
				wantModels = 1
			}
			if rep.Models != wantModels || len(r.Index().Models) != wantModels {
				t.Fatalf("%d models verified, %d in the index, want %d", rep.Models, len(r.Index().Models), wantModels)
			}
		})
	}
}

// modelOf returns the dataset's model (nil for a fixed codec).
func modelOf(t *testing.T, dir string, r *Reader) *ntcb.Model {
	t.Helper()
	if len(r.Index().Models) == 0 {
		return nil
	}
	m, err := ntcb.ReadModelFile(filepath.Join(dir, r.Index().Models[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestAppend(t *testing.T) {
	dir := t.TempDir()
	encodeTest(t, dir, memory(1, 5, "a"), EncodeOptions{Options: ntcb.Options{Codec: "ntc"}, ShardSamples: 2})
	before, err := os.ReadFile(filepath.Join(dir, ModelName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Encode(context.Background(), dir, memory(2, 4, "b"), EncodeOptions{ShardSamples: 2}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a second encode without --append: %v", err)
	}
	if _, err := Encode(context.Background(), dir, memory(2, 4, "a"), EncodeOptions{ShardSamples: 2, Append: true}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), `"a#0"`) {
		t.Fatalf("appending a key already there: %v", err)
	}
	res := encodeTest(t, dir, memory(2, 4, "b"), EncodeOptions{ShardSamples: 3, Append: true})
	if res.Shards != 2 || res.Sizes.Shards != 5 || res.Sizes.Samples != 9 {
		t.Fatalf("result %+v", res.Sizes)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ModelName))
	if !bytes.Equal(before, after) {
		t.Error("append rewrote the model")
	}
	r, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != 9 || r.Key(5) != "b#0" || r.Key(8) != "b#3" || r.Index().Shards[4].Name != "shard-00004.ntcb" {
		t.Fatalf("after append: %d samples, keys %q %q", r.Len(), r.Key(5), r.Key(8))
	}
	if _, err := r.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// A different model is refused.
	other := t.TempDir()
	encodeTest(t, other, memory(3, 4, "c"), EncodeOptions{Options: ntcb.Options{Codec: "ntc"}, ShardSamples: 4})
	m, err := ntcb.ReadModelFile(filepath.Join(other, ModelName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Encode(context.Background(), dir, memory(4, 2, "d"), EncodeOptions{Options: ntcb.Options{Model: m}, Append: true}); !errors.Is(err, ErrInput) {
		t.Fatalf("append with another model: %v", err)
	}
}

func TestMismatch(t *testing.T) {
	dir := t.TempDir()
	encodeTest(t, dir, memory(1, 6, "a"), EncodeOptions{Options: ntcb.Options{Codec: "int8"}, ShardSamples: 3})
	shard := filepath.Join(dir, "shard-00001.ntcb")
	orig, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		atOpen bool // found when the shard is opened, not only by Verify
	}{
		{"longer", append(append([]byte(nil), orig...), 0), true},
		{"another shard", mustRead(t, filepath.Join(dir, "shard-00000.ntcb")), true},
		{"one byte of a chunk", flip(orig, 40), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(shard, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(shard, orig, 0o644)
			r, err := Open(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.ReadSample(4, nil)
			if tc.atOpen && !errors.Is(err, ErrMismatch) {
				t.Fatalf("read: %v, want ErrMismatch", err)
			}
			_, err = r.Verify(context.Background(), nil)
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "shard-00001.ntcb") {
				t.Fatalf("verify: %v, want ErrMismatch naming the shard", err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x10
	return c
}

func TestKeysFile(t *testing.T) {
	defer func(n int) { inlineKeyBytes = n }(inlineKeyBytes)
	inlineKeyBytes = 20
	dir := t.TempDir()
	encodeTest(t, dir, memory(1, 7, "k"), EncodeOptions{Options: ntcb.Options{Codec: "int8"}, ShardSamples: 3})
	b := mustRead(t, filepath.Join(dir, IndexName))
	if bytes.Contains(b, []byte(`"k#0"`)) || !bytes.Contains(b, []byte(KeysName)) {
		t.Fatalf("index.json inlines the keys:\n%s", b)
	}
	r, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if i, err := r.Lookup("k#5"); err != nil || i != 5 {
		t.Fatalf("Lookup: %d, %v", i, err)
	}
	r.Close()
	kf := filepath.Join(dir, KeysName)
	keys := mustRead(t, kf)
	for _, bad := range [][]byte{
		bytes.Replace(keys, []byte("k#5"), []byte("k#6"), 1),
		keys[:len(keys)-1],
		append(append([]byte(nil), keys...), '\n'),
	} {
		os.WriteFile(kf, bad, 0o644)
		if _, err := Open(context.Background(), dir, nil); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("damaged keys file: %v", err)
		}
	}
}

// TestHTTP reads a dataset over HTTP: random samples are those of the
// local dataset, and a few of them cost well under half of its bytes.
func TestHTTP(t *testing.T) {
	dir := t.TempDir()
	res := encodeTest(t, dir, memory(5, 40, "h"), EncodeOptions{Options: ntcb.Options{Codec: "ntc"}, ShardSamples: 4})
	local, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	srv, served := testhttp.Dir(t, dir)
	for _, url := range []string{srv.URL, srv.URL + "/", srv.URL + "/" + IndexName} {
		served.Store(0)
		r, err := Open(context.Background(), url, nil)
		if err != nil {
			t.Fatal(err)
		}
		pick := rand.New(rand.NewPCG(1, 1))
		for range 3 {
			i := pick.IntN(r.Len())
			got, err := r.ReadSample(i, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := local.ReadSample(i, nil)
			if !equal(got, want) || r.Key(i) != local.Key(i) {
				t.Fatalf("%s: sample %d differs from the local dataset's", url, i)
			}
		}
		total := res.Sizes.ShardBytes + res.Sizes.ModelBytes + res.Sizes.IndexBytes
		if got := served.Load(); got >= total/2 {
			t.Errorf("%s: 3 samples fetched %d bytes of the dataset's %d", url, got, total)
		} else {
			t.Logf("%s: 3 random samples fetched %d of %d bytes (%.1f%%)", url, got, total, 100*float64(got)/float64(total))
		}
		if _, err := r.Verify(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	if _, err := Open(context.Background(), srv.URL+"/nothing/", nil); err == nil {
		t.Fatal("opened a dataset where there is none")
	}
}

// TestConcurrentShards reads from many goroutines with room for two open
// shards (run with -race).
func TestConcurrentShards(t *testing.T) {
	dir := t.TempDir()
	encodeTest(t, dir, memory(6, 30, "c"), EncodeOptions{Options: ntcb.Options{Codec: "int8"}, ShardSamples: 2})
	r, err := OpenStore(context.Background(), Dir(dir), IndexName, &Options{MaxOpenShards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := make([][]float32, r.Len())
	for i := range want {
		if want[i], err = r.ReadSample(i, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := rand.New(rand.NewPCG(uint64(g), 3))
			for range 200 {
				i := p.IntN(r.Len())
				got, err := r.ReadSample(i, nil)
				if err != nil || !equal(got, want[i]) {
					t.Errorf("sample %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r.mu.Lock()
	if r.nopen > 2 {
		t.Errorf("%d shards open after the reads, the limit is 2", r.nopen)
	}
	r.mu.Unlock()
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	encodeTest(t, dir, memory(1, 9, "a"), EncodeOptions{Options: ntcb.Options{Codec: "ntc"}, ShardSamples: 3})
	res := encodeTest(t, dir, memory(2, 4, "b"), EncodeOptions{Options: ntcb.Options{Codec: "int8"}, ShardSamples: 2, Replace: true})
	if res.Sizes.Shards != 2 || res.Sizes.Samples != 4 || res.Codec != "int8" {
		t.Fatalf("replaced: %+v", res.Sizes)
	}
	for _, gone := range []string{ModelName, "shard-00002.ntcb"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of the replaced dataset is still there: %v", gone, err)
		}
	}
	r, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Verify(context.Background(), nil); err != nil || r.Key(0) != "b#0" {
		t.Fatalf("after replace: %v, key %q", err, r.Key(0))
	}
}
