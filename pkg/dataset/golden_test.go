package dataset

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ntc-project/ntc/internal/cpufeat"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

var update = flag.Bool("update", false, "rewrite the golden dataset in testdata/")

// The golden dataset: testdata/golden/dataset/ holds a dataset of 8
// samples in shards of 3 (the learned codec, its model once, by reference
// in every shard) and decoded.npy, what this package's Reader decodes it to
// (float32, [8, T, D]). Other readers (python/ntcb) must read the dataset
// to the .npy. Run go test ./pkg/dataset -run TestGoldenDataset
// -update to rewrite it after a deliberate format change.
const goldenDir = "../../testdata/golden/dataset"

func TestGoldenDataset(t *testing.T) {
	npy := filepath.Join(goldenDir, "decoded.npy")
	if *update {
		os.RemoveAll(goldenDir)
		src := &ntcb.Memory{Data: tokens(31, 8, 1+6*5, 48), N: 8, Tokens: 1 + 6*5, Dim: 48, KeyPrefix: "golden"}
		o := EncodeOptions{Options: ntcb.Options{Codec: "ntc", Prefix: -1, GridH: 6, GridW: 5, Workers: 1, Tool: "ntc golden"}, ShardSamples: 3}
		o.CodecOptions.Ratio = 6
		if _, err := Encode(context.Background(), goldenDir, src, o); err != nil {
			t.Fatal(err)
		}
		r, err := Open(context.Background(), goldenDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		l := r.Layout()
		w, err := tensorio.Create(npy, tensorio.Float32, r.Len(), l.Tokens, l.Dim)
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.Len() {
			v, err := r.ReadSample(i, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteSample(v); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	r, err := Open(context.Background(), goldenDir, nil)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/dataset -run TestGoldenDataset -update to create it)", err)
	}
	defer r.Close()
	if _, err := r.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if len(r.Index().Shards) != 3 || len(r.Index().Models) != 1 {
		t.Fatalf("golden dataset: %d shards, %d models", len(r.Index().Shards), len(r.Index().Models))
	}
	want, shape, _, err := tensorio.ReadAll(npy)
	if err != nil {
		t.Fatal(err)
	}
	l := r.Layout()
	if !slices.Equal(shape, []int{r.Len(), l.Tokens, l.Dim}) {
		t.Fatalf("%s: shape %v", npy, shape)
	}
	// Exact at every x86 vector level; below AVX2 the learned codec's
	// products round one by one (see pkg/ntcb checkGolden).
	exact := cpufeat.Active() >= cpufeat.AVX2
	got, err := r.ReadSamples(seq(r.Len()), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if exact && math.Float32bits(got[i]) != math.Float32bits(want[i]) ||
			!exact && math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("the golden dataset decodes to %g at value %d, %s holds %g", got[i], i, npy, want[i])
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
