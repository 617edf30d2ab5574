package ntcb

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/codec"
)

// The golden file of a model held by reference: testdata/golden/byref/
// holds data.ntcb (the learned codec's golden input, its model recorded by
// SHA-256 only), clip.ntcm (that model, by the name data.ntcb's metadata
// records) and data.decoded.npy (what this package decodes it to, float32).
// Other readers (python/ntcb) must find the model by its hash and decode
// the file to the .npy. Run go test ./pkg/ntcb -run TestGoldenByReference
// -update to rewrite them after a deliberate format change.
const goldenByRefDir = "../../testdata/golden/byref"

func writeGoldenByRef(t *testing.T) {
	t.Helper()
	spec, err := codec.Lookup("ntc")
	if err != nil {
		t.Fatal(err)
	}
	in := goldenInputFor(spec)
	m := goldenTokens(t, in)
	opts := Options{
		Codec: "ntc", CodecOptions: in.opts, ChunkBytes: in.chunkSamples * 2 * m.Tokens * m.Dim,
		GridH: in.gridH, GridW: in.gridW, Prefix: -1, Workers: 1, Tool: "ntc golden",
		Meta: map[string]string{"source": "internal/sample " + sample.Name}, SharedModel: true, ModelRef: true,
	}
	model, err := Fit(context.Background(), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(goldenByRefDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteModelFile(filepath.Join(goldenByRefDir, "clip.ntcm"), model, "ntc golden"); err != nil {
		t.Fatal(err)
	}
	opts.Model, opts.ModelFile = model, "clip.ntcm"
	if _, err := EncodeFile(context.Background(), filepath.Join(goldenByRefDir, "data.ntcb"), m, opts); err != nil {
		t.Fatal(err)
	}
	writeDecoded(t, filepath.Join(goldenByRefDir, "data.ntcb"), filepath.Join(goldenByRefDir, "data.decoded.npy"))
}

// TestGoldenByReference checks that the golden file by reference holds no
// model, finds clip.ntcm next to it by hash, and decodes to the values
// stored beside it.
func TestGoldenByReference(t *testing.T) {
	if *update {
		writeGoldenByRef(t)
	}
	r := checkGolden(t, filepath.Join(goldenByRefDir, "data.ntcb"), filepath.Join(goldenByRefDir, "data.decoded.npy"))
	info := r.Info()
	if info.ModelBytes != 0 || len(info.ModelRefs) != 1 || info.ModelRefs[0].File != "clip.ntcm" {
		t.Fatalf("%s: %+v, want its model by reference to clip.ntcm", goldenByRefDir, info.ModelRefs)
	}
	rep, err := VerifyFile(context.Background(), filepath.Join(goldenByRefDir, "data.ntcb"), nil)
	if err != nil || filepath.Base(rep.ModelFile) != "clip.ntcm" {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
