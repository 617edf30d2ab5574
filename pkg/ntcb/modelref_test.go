package ntcb

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/pkg/codec"
)

// byRefFile fits a model on m, writes it to dir/name.ntcm, and encodes m
// with it by reference to dir/data.ntcb.
func byRefFile(t *testing.T, dir, name string, m *Memory) (*Model, string) {
	t.Helper()
	model, err := Fit(context.Background(), m, Options{Codec: "ntc", Prefix: -1, SharedModel: true, ModelRef: true})
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, name+".ntcm")
	if err := WriteModelFile(mpath, model, "test"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data.ntcb")
	res, err := EncodeFile(context.Background(), path, m, Options{Model: model, ModelRef: true, ModelFile: name + ".ntcm", Prefix: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.ModelBytes != 0 || res.ModelSHA256 == "" {
		t.Fatalf("result %+v: want a model by reference", res)
	}
	return model, path
}

func TestModelByReference(t *testing.T) {
	dir := t.TempDir()
	m := &Memory{Data: tokens(21, 6, 17, 16), N: 6, Tokens: 17, Dim: 16, KeyPrefix: "r"}
	model, path := byRefFile(t, dir, "clip", m)
	embedded := filepath.Join(dir, "embedded.ntcb")
	if _, err := EncodeFile(context.Background(), embedded, m, Options{Model: model, Prefix: -1}); err != nil {
		t.Fatal(err)
	}
	want, err := readFile(t, embedded)
	if err != nil {
		t.Fatal(err)
	}
	// Next to the file: found, by the name in its metadata or any .ntcm.
	for _, rename := range []string{"", "other.ntcm"} {
		if rename != "" {
			if err := os.Rename(filepath.Join(dir, "clip.ntcm"), filepath.Join(dir, rename)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := readFile(t, path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatal("the file by reference decodes differently from the one with the model stored")
		}
		rep, err := VerifyFile(context.Background(), path, nil)
		if err != nil || !strings.HasSuffix(rep.ModelFile, ".ntcm") {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	}
	info := func() Info {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return f.Info()
	}()
	if info.ModelBytes != 0 || len(info.ModelRefs) != 1 || info.ModelRefs[0].File != "clip.ntcm" || info.ModelRefs[0].Bytes != len(model.Blob) {
		t.Fatalf("info %+v", info)
	}
	// Moved away from its model: a clear error naming the hash, from the
	// first decode and from verify.
	alone := filepath.Join(t.TempDir(), "data.ntcb")
	if err := os.Rename(path, alone); err != nil {
		t.Fatal(err)
	}
	f, err := Open(alone)
	if err != nil {
		t.Fatal(err) // opening reads no model
	}
	_, err = f.ReadSample(0, nil)
	f.Close()
	if !errors.Is(err, ErrModelNotFound) || !strings.Contains(err.Error(), info.ModelRefs[0].SHA256) {
		t.Fatalf("read without the model: %v", err)
	}
	if _, err := VerifyFile(context.Background(), alone, nil); !errors.Is(err, ErrModelNotFound) {
		t.Fatalf("verify without the model: %v", err)
	}
	// Another model next to it is not taken for it.
	other, err := Fit(context.Background(), &Memory{Data: tokens(22, 6, 17, 16), N: 6, Tokens: 17, Dim: 16}, Options{Codec: "ntc", Prefix: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteModelFile(filepath.Join(filepath.Dir(alone), "clip.ntcm"), other, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := readFile(t, alone); !errors.Is(err, ErrModelNotFound) || !strings.Contains(err.Error(), "clip.ntcm (model ") {
		t.Fatalf("read with another model beside: %v", err)
	}
	// Named explicitly, it is found wherever it is.
	models := NewModels()
	models.AddFile(filepath.Join(dir, "other.ntcm"))
	got, err := readFile(t, alone, WithModels(models))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("with the model named: %v", err)
	}
	// Through NewReader, nothing is looked for unless asked.
	b, _ := os.ReadFile(alone)
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadSample(0, nil); !errors.Is(err, ErrModelNotFound) || !strings.Contains(err.Error(), "no model file given") {
		t.Fatalf("NewReader without models: %v", err)
	}
}

// readFile decodes every sample of the file at path.
func readFile(t *testing.T, path string, opts ...ReadOption) ([]float32, error) {
	t.Helper()
	f, err := Open(path, opts...)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var all []float32
	for i := range f.Len() {
		v, err := f.ReadSample(i, nil)
		if err != nil {
			return nil, err
		}
		all = append(all, v...)
	}
	return all, nil
}

// TestSharedModelRatio checks the rate of a model fitted for sharing: a
// file that holds it by reference reaches the target ratio on its own
// (within 2%), where one that stores it falls far short.
func TestSharedModelRatio(t *testing.T) {
	dir := t.TempDir()
	m := &Memory{Data: tokens(23, 4, 65, 96), N: 4, Tokens: 65, Dim: 96, KeyPrefix: "s"}
	model, err := Fit(context.Background(), m, Options{Codec: "ntc", Prefix: -1, SharedModel: true, ModelRef: true,
		CodecOptions: ratioOpts(8)})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := EncodeFile(context.Background(), filepath.Join(dir, "ref.ntcb"), m, Options{Model: model, ModelRef: true, Prefix: -1})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Ratio < 0.98*8 || ref.Ratio > 1.02*8 {
		t.Fatalf("by reference: ratio %.3f, want 8 within 2%%", ref.Ratio)
	}
	stored, err := EncodeFile(context.Background(), filepath.Join(dir, "stored.ntcb"), m, Options{Model: model, Prefix: -1})
	if err != nil {
		t.Fatal(err)
	}
	if stored.Ratio > 0.9*8 {
		t.Fatalf("with the model stored: ratio %.3f; the model should weigh", stored.Ratio)
	}
	// Rate control of files of 2 samples takes out twice the framing.
	half, err := Fit(context.Background(), m, Options{Codec: "ntc", Prefix: -1, SharedModel: true, ModelRef: true,
		ShardSamples: 2, CodecOptions: ratioOpts(8)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		sub := &Memory{Data: m.Data[i*2*65*96 : (i+1)*2*65*96], N: 2, Tokens: 65, Dim: 96, KeyPrefix: "s"}
		res, err := EncodeFile(context.Background(), filepath.Join(dir, "half.ntcb"), sub, Options{Model: half, ModelRef: true, Prefix: -1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Ratio < 0.98*8 {
			t.Fatalf("shard %d of 2 samples: ratio %.3f, want at least 7.84", i, res.Ratio)
		}
	}
}

func ratioOpts(r float64) codec.Options { return codec.Options{Ratio: r} }
